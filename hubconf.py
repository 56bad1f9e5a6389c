"""torch.hub entry points for resnets: every registered model and every named set of weights.

    model = torch.hub.load("path/to/resnets", "resnet56", source="local")  # untrained
    model = torch.hub.load("path/to/resnets", "resnet20", pretrained=True, source="local")
    model = torch.hub.load("path/to/resnets", "resnet20.cifar10", source="local")
    model = torch.hub.load("path/to/resnets", "resnet50.tv2_in1k", source="local")

A detector's weights name (``fasterrcnn_BACKBONE_fpn.TAG``, packaged from a detection run)
loads its Faster R-CNN, which takes a list of ``(3, H, W)`` images in [0, 1] and normalises them
itself, as torchvision's detectors do.

A model name takes ``pretrained=True`` for its default weights (`resnets weights list` shows
them) and otherwise the builder's keyword arguments (``num_classes=100``, ...). A weights name
(``MODEL.TAG``) always loads those weights; ImageNet sets are downloaded once into the weights
cache, SHA-256 checked. Each returned module is in eval mode with its weights record as
``model.weights_meta`` (classes, mean and std in 0..255 units, the crop).
"""

import os
import sys

# a checkout that torch.hub downloaded is not installed: import the package from its src/
_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "src")
if os.path.isdir(os.path.join(_SRC, "resnets")) and _SRC not in sys.path:
    sys.path.insert(0, _SRC)

dependencies = ["torch", "numpy", "safetensors", "PIL", "tqdm"]

from resnets.inference.loader import model_from_weights  # noqa: E402
from resnets.models import create_model, list_models, list_pretrained  # noqa: E402
from resnets.models.catalogue import default_tag  # noqa: E402


def _load(name):
    net, meta = model_from_weights(name, task=None)  # a classifier or a detector
    net.weights_meta = meta
    return net.eval()


def _model_entry(model):
    def entry(pretrained=False, weights=None, progress=True, **kwargs):
        # torchvision's keywords: weights=None | "DEFAULT" | a tag | a weights name, and
        # progress (downloads show a bar either way here); pretrained=True means "DEFAULT"
        if weights is None and not pretrained:
            return create_model(model, **kwargs)
        if weights in (None, "DEFAULT", True):
            tag = default_tag(model)
            if tag is None:
                raise ValueError(f"{model}: no named weights; see `resnets weights list`")
            name = f"{model}.{tag}"
        else:
            name = weights if "." in str(weights) else f"{model}.{weights}"
            if not name.startswith(f"{model}."):
                raise ValueError(f"{model}: weights {weights!r} are for another model")
        if kwargs:
            raise ValueError(
                f"{model}: pretrained weights load {name} as trained; "
                f"{', '.join(kwargs)} would change the network"
            )
        return _load(name)

    entry.__name__ = model
    entry.__doc__ = (
        f"{model}: untrained, or with pretrained=True (or weights='DEFAULT', a tag or a "
        "weights name) its named weights."
    )
    return entry


def _weights_entry(name):
    def entry(pretrained=True, progress=True, **kwargs):
        # a weights name always means its weights: pretrained=True is accepted (torch.hub
        # users pass it out of habit), pretrained=False or builder options are refused
        if not pretrained:
            model = name.split(".")[0]
            raise ValueError(f"{name}: a weights name loads its weights; use {model!r} untrained")
        if kwargs:
            raise ValueError(
                f"{name}: loads the weights as trained; {', '.join(kwargs)} would change the network"
            )
        return _load(name)

    entry.__name__ = name
    entry.__doc__ = f"{name}: the named weights (`resnets weights info {name}`)."
    return entry


for _model in list_models():
    globals()[_model] = _model_entry(_model)
for _name in list_pretrained():
    globals()[_name] = _weights_entry(_name)
