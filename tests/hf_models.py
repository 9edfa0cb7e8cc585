"""Tiny random Hugging Face models saved as folders (``save_pretrained``), as a user's
would be: no download, a few kilobytes, seeded."""

from __future__ import annotations

from pathlib import Path

import torch

TANK_CLASSES = ["ground", "tank", "sky"]


def save_segformer(folder: Path, labels: list[str] | None = None, size: int = 64) -> Path:
    """A SegFormer semantic segmentation folder with its image processor."""
    import transformers

    labels = labels or TANK_CLASSES
    torch.manual_seed(0)
    config = transformers.SegformerConfig(
        num_channels=3,
        depths=[1, 1, 1, 1],
        hidden_sizes=[8, 8, 8, 8],
        decoder_hidden_size=8,
        num_attention_heads=[1, 1, 1, 1],
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={v: k for k, v in enumerate(labels)},
    )
    transformers.SegformerForSemanticSegmentation(config).save_pretrained(folder)
    processor = transformers.SegformerImageProcessor(size={"height": size, "width": size})
    processor.save_pretrained(folder)
    return folder


def save_vit(folder: Path, labels: list[str], processor: dict | None = None, seed: int = 0) -> Path:
    """A 2-layer ViT on 32x32 inputs (4x4 patches of 8 pixels) with its processor."""
    import transformers

    torch.manual_seed(seed)
    config = transformers.ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={v: k for k, v in enumerate(labels)},
    )
    transformers.ViTForImageClassification(config).eval().save_pretrained(folder)
    settings = processor or {"size": {"height": 32, "width": 32}}
    transformers.ViTImageProcessor(
        image_mean=[0.5, 0.4, 0.3], image_std=[0.2, 0.25, 0.3], **settings
    ).save_pretrained(folder)
    return folder


def save_yolos(folder: Path, labels: list[str] | None = None, size: int = 64) -> Path:
    """A 2-layer YOLOS object detector on ``size`` x ``size`` inputs, five detection
    tokens, with its image processor."""
    import transformers

    labels = labels or TANK_CLASSES
    torch.manual_seed(0)
    config = transformers.YolosConfig(
        image_size=[size, size],
        patch_size=16,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        num_detection_tokens=5,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={v: k for k, v in enumerate(labels)},
    )
    model = transformers.YolosForObjectDetection(config).eval()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():  # initialised near zero: five alike detections otherwise
        tokens = model.vit.embeddings.detection_tokens
        tokens.copy_(torch.randn(tokens.shape, generator=generator))
        for head in (model.bbox_predictor, model.class_labels_classifier):
            for weight in head.parameters():
                weight.copy_(torch.randn(weight.shape, generator=generator) * 0.2)
    model.save_pretrained(folder)
    processor = transformers.YolosImageProcessor(
        size={"shortest_edge": size, "longest_edge": size}, do_pad=False
    )
    processor.save_pretrained(folder)
    return folder
