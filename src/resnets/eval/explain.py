"""Why a model predicted what it did: Grad-CAM and integrated gradients, through captum.

* **Grad-CAM** (Selvaraju et al. 2017): the last stage's feature maps weighted by the
  spatially averaged gradient of the class score, summed over channels, ReLU'd, and upsampled
  to the input (captum's ``LayerGradCam`` on the last stage, ``LayerAttribution.interpolate``).
  Coarse (one cell per 1/8 or 1/32 of the image) but class-specific.
* **Integrated gradients** (Sundararajan et al. 2017): the input gradient averaged along the
  straight path from a baseline (the all-zero normalised input, i.e. the training mean image)
  to the image, times the difference; summed over colour channels as magnitudes. Pixel-sharp,
  and its attributions sum to the score difference (captum reports that error as the
  convergence delta).

Both need the PyTorch model (gradients): an exported ONNX/OpenVINO model cannot be explained.
captum is an optional dependency (``pip install "resnets[explain]"``).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib import colormaps
from PIL import Image

from ..data.images import decode_image
from ..errors import ConfigError
from ..io import atomic_write_bytes, atomic_write_text, claim_output_name
from ..plots import plot_explanation
from .predict import LoadedModel, top_classes

METHODS = ("gradcam", "ig")
METHOD_TITLES = {"gradcam": "Grad-CAM (last stage)", "ig": "integrated gradients"}


@dataclass
class Explanation:
    """One image explained: the view the model saw, the top classes, and one heat map in
    0..1 per method, each of the view's height and width."""

    view: np.ndarray  # (H, W, C) uint8
    top: list[dict[str, Any]]
    target: int
    maps: dict[str, np.ndarray] = field(default_factory=dict)
    ig_delta: float | None = None  # |sum of attributions - score difference| (IG's check)

    def peak(self, method: str = "gradcam") -> tuple[int, int]:
        """(row, column) of a map's maximum."""
        m = self.maps[method]
        r, c = np.unravel_index(int(np.argmax(m)), m.shape)
        return int(r), int(c)


def _torch_model(lm: LoadedModel) -> torch.nn.Module:
    net = lm.model
    if not hasattr(net, "stages"):
        raise ConfigError(
            f"{lm.meta.model or 'this model'}: explanations need the PyTorch weights "
            "(an exported ONNX/OpenVINO model has no gradients); use --backend torch"
        )
    return net


def _captum():
    try:
        from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam
    except ImportError:
        raise ConfigError("explanations need captum: pip install 'resnets[explain]'") from None
    return IntegratedGradients, LayerAttribution, LayerGradCam


def _unit(a: np.ndarray, q: float = 100.0) -> np.ndarray:
    """Scale a non-negative map to 0..1 (by its ``q``-th percentile, then clipped)."""
    a = np.maximum(a, 0.0)
    hi = float(np.percentile(a, q)) if a.size else 0.0
    return np.clip(a / hi, 0.0, 1.0).astype(np.float32) if hi > 0 else np.zeros_like(a, np.float32)


def explain_tensor(
    lm: LoadedModel,
    view: np.ndarray,
    x: torch.Tensor,
    *,
    methods: tuple[str, ...] = METHODS,
    target: int | None = None,
    topk: int = 5,
    ig_steps: int = 32,
) -> Explanation:
    """Explain one preprocessed image ``x`` ``(1, C, H, W)`` (``view``: what it shows) for
    ``target`` (default: the predicted class)."""
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise ConfigError(f"--method {','.join(methods)}: each of {', '.join(METHODS)}")
    IntegratedGradients, LayerAttribution, LayerGradCam = _captum()
    net = _torch_model(lm)
    net.eval()
    dev = next(net.parameters()).device
    x = x.to(dev).float()
    with torch.no_grad():
        logits = net(x)[0]
    tgt = int(logits.argmax()) if target is None else int(target)
    if not 0 <= tgt < logits.numel():
        raise ConfigError(f"--target {tgt}: the model has classes 0..{logits.numel() - 1}")
    out = Explanation(view=view, top=top_classes(lm, logits, topk), target=tgt)
    h, w = x.shape[-2:]
    if "gradcam" in methods:
        cam = LayerGradCam(net, net.stages()[-1])
        a = cam.attribute(x, target=tgt, relu_attributions=True)
        a = LayerAttribution.interpolate(a, (h, w), interpolate_mode="bilinear")
        out.maps["gradcam"] = _unit(a[0, 0].detach().cpu().numpy())
    if "ig" in methods:
        ig = IntegratedGradients(net)
        a, delta = ig.attribute(
            x,
            baselines=torch.zeros_like(x),
            target=tgt,
            n_steps=ig_steps,
            internal_batch_size=ig_steps,
            return_convergence_delta=True,
        )
        # magnitudes summed over channels; the 99th percentile keeps one pixel from
        # washing out the rest of the map
        out.maps["ig"] = _unit(a[0].abs().sum(0).detach().cpu().numpy(), 99.0)
        out.ig_delta = float(delta.abs().max())
    return out


def explain_image(lm: LoadedModel, arr: np.ndarray, label: str = "<image>", **kw) -> Explanation:
    """Explain a decoded ``(H, W, 3)`` uint8 image (resized/cropped as the model expects)."""
    view, x = lm.views.image(arr, label)
    return explain_tensor(lm, view, x, **kw)


def overlay(
    view: np.ndarray, heat: np.ndarray, alpha: float = 0.5, min_side: int = 224
) -> np.ndarray:
    """A heat map (0..1) blended over the image in the 'jet' colours, as ``(H, W, 3)`` uint8,
    enlarged (image: nearest, heat: bilinear) so that its shorter side is at least
    ``min_side`` pixels: a 32x32 CIFAR image is otherwise too small to look at."""
    rgb = np.repeat(view, 3, axis=2) if view.shape[2] == 1 else view
    h, w = rgb.shape[:2]
    k = max(1, -(-min_side // min(h, w)))
    img = Image.fromarray(rgb).resize((w * k, h * k), Image.NEAREST)
    hm = Image.fromarray(heat.astype(np.float32)).resize((w * k, h * k), Image.BILINEAR)
    colours = colormaps["jet"](np.clip(np.asarray(hm), 0, 1))[..., :3]
    mixed = (1 - alpha) * np.asarray(img, np.float32) / 255 + alpha * colours
    return np.clip(np.rint(mixed * 255), 0, 255).astype(np.uint8)


def overlay_png(e: Explanation, method: str = "gradcam") -> bytes:
    """The overlay of one method as PNG bytes (what ``POST /v1/explain`` returns)."""
    buf = io.BytesIO()
    Image.fromarray(overlay(e.view, e.maps[method])).save(buf, format="PNG")
    return buf.getvalue()


def _suffixes(methods: tuple[str, ...]) -> list[str]:
    return [".png", *(f".{m}.png" for m in methods)]


def explain_files(
    lm: LoadedModel,
    paths: list[str],
    out: str | Path,
    *,
    methods: tuple[str, ...] = METHODS,
    topk: int = 5,
    target: int | None = None,
) -> list[dict[str, Any]]:
    """Explain image files into ``out``: per image ``<name>.png`` (the input, one overlay per
    method, the top-k classes as bars) and one ``<name>.<method>.png`` overlay each; returns
    (and writes as ``explain.json``) the predictions, target, peaks and file names."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    # outputs never replace an input, nor each other: every name is checked against the
    # inputs (as resolved paths) and against every file this call has written
    taken = {Path(p).resolve() for p in paths}
    if out.resolve() / "explain.json" in taken:
        raise ConfigError(f"--out {out}: an input is named explain.json there; pick another --out")
    taken.add(out.resolve() / "explain.json")
    rows = []
    for p in paths:
        e = explain_image(lm, decode_image(p), str(p), methods=methods, topk=topk, target=target)
        name = claim_output_name(Path(p).stem or "image", out.resolve(), taken, _suffixes(methods))
        panels = [("input", overlay(e.view, np.zeros(e.view.shape[:2], np.float32), alpha=0))]
        files = {}
        for m in methods:
            ov = overlay(e.view, e.maps[m])
            panels.append((METHOD_TITLES[m], ov))
            files[m] = f"{name}.{m}.png"
            buffer = io.BytesIO()
            Image.fromarray(ov).save(buffer, format="PNG")
            atomic_write_bytes(out / files[m], buffer.getvalue())
        tname = lm.classes[e.target]
        plot_explanation(
            panels,
            [(t["class"], t["prob"]) for t in e.top],
            out / f"{name}.png",
            title=f"{Path(p).name}: explaining '{tname}'",
        )
        rows.append(
            {
                "image": str(p),
                "figure": f"{name}.png",
                "overlays": files,
                "target": tname,
                "top": e.top,
                "peaks": {m: list(e.peak(m)) for m in methods},
                "ig_delta": e.ig_delta,
            }
        )
    atomic_write_text(out / "explain.json", json.dumps(rows, indent=1))
    return rows
