"""The ONNX graph of a model, with the resnets record, classes and preprocessing inside."""

from __future__ import annotations

import io
import json
import warnings

import torch
from torch import nn

from ..models.weights import WeightsMeta

OPSET = 17


def _metadata(meta: WeightsMeta) -> dict[str, str]:
    pre = {
        "mean": meta.mean,
        "std": meta.std,
        "units": "0..255",
        "channel_order": "RGB",
        "layout": "NCHW",
        "resize_short_side": meta.image_size,
        "center_crop": meta.eval_size,
        "interpolation": meta.interpolation,
    }
    return {
        "resnets": json.dumps(meta.to_dict(), sort_keys=True),
        "classes": json.dumps(meta.classes or []),
        "preprocessing": json.dumps(pre),
    }


def onnx_bytes(model: nn.Module, meta: WeightsMeta, size: int) -> bytes:
    """The model as an ONNX file (bytes) with a dynamic batch axis and the metadata inside."""
    import onnx

    model = model.eval()
    x = torch.zeros(1, int(getattr(model, "in_chans", 3)), size, size)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notes
        torch.onnx.export(
            model,
            (x,),
            buf,
            dynamo=False,
            opset_version=OPSET,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        )
    proto = onnx.load_from_string(buf.getvalue())
    proto.producer_name = "resnets"
    return with_metadata(proto.SerializeToString(), meta)


def with_metadata(data: bytes, meta: WeightsMeta) -> bytes:
    """An ONNX file (bytes) with the resnets record, classes and preprocessing set in its
    ``metadata_props`` (replacing any earlier ones of those keys)."""
    import onnx

    proto = onnx.load_from_string(data)
    new = _metadata(meta)
    keep = [(p.key, p.value) for p in proto.metadata_props if p.key not in new]
    del proto.metadata_props[:]
    for k, v in [*keep, *new.items()]:
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    return proto.SerializeToString()
