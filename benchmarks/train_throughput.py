"""(b) ResNet-20 training throughput on the shared CIFAR JPEGs: the resnets trainer's step
(decoded uint8 cache, batched augmentation, bf16 autocast where the CPU has it, channels_last)
beside a plain fp32 eager loop over the same images (per-sample PIL augmentation, NCHW fp32),
in the same process, alternating rounds. Prints one JSON line.

    python benchmarks/train_throughput.py [--data DIR] [--steps 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from resnets import create_model
from resnets.data import AugmentSpec, BatchStream, channel_stats, load_dataset, stratified_split
from resnets.runtime import use_bf16


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/cifar10-jpeg/train")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=128)
    a = ap.parse_args()

    d = load_dataset(a.data, progress=False)
    tr, _ = stratified_split(d.labels, 5000, 0)
    mean, std = channel_stats(d.images, tr)
    images = torch.from_numpy(np.array(d.images))
    bs = a.batch_size
    cpu = torch.device("cpu")
    bf16 = use_bf16("auto", cpu)

    # --- the resnets path: what `resnets train` runs per step
    torch.manual_seed(0)
    fast = create_model("resnet20").to(memory_format=torch.channels_last)
    opt_f = torch.optim.SGD(fast.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    stream = BatchStream(images, d.labels, tr, bs, 0, mean, std, AugmentSpec("cifar"))
    it = stream.epoch(0)

    def fast_step():
        x, y = next(it)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(fast(x), y)
        opt_f.zero_grad(set_to_none=True)
        loss.backward()
        opt_f.step()

    # --- the reference: a plain fp32 eager loop, per-sample PIL pad/crop/flip like a
    # torchvision-style Dataset, NCHW float32
    torch.manual_seed(0)
    ref = create_model("resnet20")
    opt_r = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    rng = np.random.default_rng(0)
    m = np.array(mean, np.float32) / 255
    s = np.array(std, np.float32) / 255
    src = np.asarray(d.images)

    def ref_batch():
        idx = rng.choice(tr, bs, replace=False)
        xs = []
        for i in idx:
            img = Image.fromarray(src[i])
            padded = Image.new("RGB", (40, 40))
            padded.paste(img, (4, 4))
            ox, oy = rng.integers(0, 9, 2)
            img = padded.crop((ox, oy, ox + 32, oy + 32))
            if rng.random() < 0.5:
                img = img.transpose(Image.FLIP_LEFT_RIGHT)
            xs.append(((np.asarray(img, np.float32) / 255 - m) / s).transpose(2, 0, 1))
        return torch.from_numpy(np.stack(xs)), torch.from_numpy(d.labels[idx])

    def ref_step():
        x, y = ref_batch()
        loss = F.cross_entropy(ref(x), y)
        opt_r.zero_grad(set_to_none=True)
        loss.backward()
        opt_r.step()

    for fn in (fast_step, ref_step):
        fn()
        fn()
    times = {"resnets": [], "fp32-eager": []}
    for _ in range(a.rounds):
        for name, fn in (("fp32-eager", ref_step), ("resnets", fast_step)):
            t0 = time.perf_counter()
            for _ in range(a.steps):
                fn()
            times[name].append((time.perf_counter() - t0) / a.steps)
    ips = {k: bs / statistics.median(v) for k, v in times.items()}
    print(
        json.dumps(
            {
                "images_per_sec": ips["resnets"],
                "reference_images_per_sec": ips["fp32-eager"],
                "speedup": ips["resnets"] / ips["fp32-eager"],
                "bf16": bf16,
                "threads": torch.get_num_threads(),
                "batch_size": bs,
            }
        )
    )


if __name__ == "__main__":
    main()
