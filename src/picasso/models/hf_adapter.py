"""Hugging Face ``transformers`` folders: ``config.json`` + weights (+
``preprocessor_config.json``), as ``save_pretrained`` writes them, loaded offline.

Labels come from the config's ``id2label``; the input size, resizing and cropping, the
rescale factor and the normalisation from the image processor's config, so that a
folder needs no model card. A card (or keyword overrides) still wins where it says
something. Image-classification heads are explained as classifiers; a folder whose
head is for segmentation or detection is refused with what it is.

transformers is imported here only, and only when such a folder is loaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..core.errors import MissingDependencyError, ModelLoadError
from .card import ModelCard, hook_kwargs
from .protocols import BuildInfo

WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
#: Architecture name endings and the task they serve.
TASKS = {
    "ForImageClassification": "classification",
    "ForImageClassificationWithTeacher": "classification",
    "ForSemanticSegmentation": "segmentation",
    "ForObjectDetection": "detection",
    "ForInstanceSegmentation": "segmentation",
    "ForUniversalSegmentation": "segmentation",
}
#: PIL resampling codes (``resample`` in the processor config) by name.
RESAMPLE = {0: "nearest", 2: "bilinear", 3: "bicubic"}


def _config(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def detect(path: Path) -> bool:
    """A folder with a ``config.json`` naming architectures, and weights."""
    if not path.is_dir():
        return False
    config = _config(path)
    return bool(config and config.get("architectures")) and any(
        (path / w).is_file() for w in WEIGHTS
    )


def task_of(architectures: list[str]) -> str | None:
    """The task an architecture name serves (None: not an image head we know)."""
    for arch in architectures:
        for ending, task in TASKS.items():
            if arch.endswith(ending):
                return task
    return None


def preprocessing_from(path: Path, config: dict[str, Any]) -> dict[str, Any]:
    """Card ``[preprocessing]`` values from the image processor's config (and the
    model config's ``image_size`` where the processor says nothing)."""
    found: dict[str, Any] = {}
    processor_file = path / "preprocessor_config.json"
    processor: dict[str, Any] = {}
    if processor_file.is_file():
        try:
            processor = json.loads(processor_file.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ModelLoadError(f"{processor_file}: not valid JSON ({exc})") from None
    size = processor.get("size") if processor.get("do_resize", True) else None
    crop = processor.get("crop_size") if processor.get("do_center_crop") else None
    if isinstance(size, int):  # old configs: one number = a square
        size = {"height": size, "width": size}
    if isinstance(crop, int):
        crop = {"height": crop, "width": crop}
    if isinstance(crop, dict) and "height" in crop:
        found["input_size"] = [crop["height"], crop["width"]]
        found["resize"] = "center-crop"
        if isinstance(size, dict) and "shortest_edge" in size:
            found["shorter_side"] = int(size["shortest_edge"])
    elif isinstance(size, dict) and "height" in size:
        found["input_size"] = [size["height"], size["width"]]
    elif isinstance(size, dict) and "shortest_edge" in size:
        side = int(size["shortest_edge"])
        found.update(input_size=[side, side], resize="center-crop", shorter_side=side)
    elif isinstance(config.get("image_size"), int):
        found["input_size"] = [config["image_size"], config["image_size"]]
    if "resample" in processor:
        found["interpolation"] = RESAMPLE.get(int(processor["resample"]), "bilinear")
    # HF: (pixel * r - mean) / std; Picasso: (pixel / 255 - mean') / std'.
    rescale = (
        float(processor.get("rescale_factor", 1 / 255))
        if processor.get("do_rescale", True)
        else 1.0
    )
    factor = rescale * 255.0
    mean, std = [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]
    if processor.get("do_normalize", bool(processor)):
        mean = [float(v) for v in processor.get("image_mean", mean)]
        std = [float(v) for v in processor.get("image_std", std)]
    found["mean"] = [m / factor for m in mean]
    found["std"] = [s / factor for s in std]
    if int(config.get("num_channels", 3)) == 1:
        found["grayscale"] = True
    return found


def _attention(auto: Any) -> dict[str, Any]:
    """Eager attention (which returns attention weights) for classifiers; segmentation
    heads take the default."""
    return {"attn_implementation": "eager"} if "Classification" in auto.__name__ else {}


def load(path: Path, card: ModelCard, overrides: dict[str, Any], build_info: BuildInfo) -> Any:
    """Load an image-classification folder as a PyTorch model."""
    from .torch_adapter import TorchModel, _torch

    _torch()
    try:
        import transformers
    except ImportError:
        raise MissingDependencyError(
            "transformers", "hf", "Loading a Hugging Face model folder"
        ) from None
    config = _config(path)
    if config is None:
        raise ModelLoadError(f"{path}: config.json is missing or not valid JSON")
    architectures = list(config.get("architectures") or [])
    task = task_of(architectures)
    semantic = any(a.endswith("ForSemanticSegmentation") for a in architectures)
    if task is None or (task == "segmentation" and not semantic):
        what = f"a {task} model" if task else "not an image model Picasso knows"
        raise ModelLoadError(
            f"{path}: {', '.join(architectures) or 'no architecture'} is {what}; Picasso "
            "explains image classifiers (...ForImageClassification), semantic "
            "segmentation models (...ForSemanticSegmentation) and object detectors "
            "(...ForObjectDetection)"
        )
    given = card.preprocessing.model_fields_set
    derived = preprocessing_from(path, config)
    if task == "detection" and derived.get("resize") == "center-crop":
        # Detectors see the whole image (their processors keep the aspect ratio within
        # shortest/longest edges; a fixed input size stretches it instead of cropping).
        derived.pop("shorter_side", None)
        derived["resize"] = "stretch"
    derived = {k: v for k, v in derived.items() if k not in given}
    update: dict[str, Any] = {
        "preprocessing": card.preprocessing.model_copy(update=derived),
        "name": card.name or path.name,
        "output": card.output,
        "task": task,
    }
    if card.labels is None and isinstance(config.get("id2label"), dict):
        by_index = {int(k): str(v) for k, v in config["id2label"].items()}
        update["labels"] = [by_index.get(i, f"class {i}") for i in range(max(by_index) + 1)]
    card = card.model_copy(update=update)
    card.preprocessing_spec()  # cheap checks before the weights load
    try:
        auto = {
            "segmentation": transformers.AutoModelForSemanticSegmentation,
            "detection": transformers.AutoModelForObjectDetection,
        }.get(task, transformers.AutoModelForImageClassification)
        transformers.utils.logging.disable_progress_bar()  # no bars in the CLI or logs
        module = auto.from_pretrained(str(path), local_files_only=True, **_attention(auto))
    except Exception as exc:  # transformers and safetensors raise many kinds
        detail = " ".join(str(exc).split())[:300]
        raise ModelLoadError(f"{path}: transformers could not load it ({detail})") from None
    module.eval()
    extras = {"format": "folder", "architecture": architectures[0], "task": task}
    return TorchModel(
        module, build_info(card, path, "transformers", extras), **hook_kwargs(card, overrides)
    )
