"""Tiny seeded detectors built in code: a torchvision Faster R-CNN on a two-layer
backbone, and a detector with a known answer."""

from __future__ import annotations

import torch
from torch import nn

LABELS = ["background", "tank", "car"]
#: The box the known-answer detector reports (x0, y0, x1, y1), and its class.
BOX, CLASS = (16.0, 24.0, 40.0, 48.0), 1


def faster_rcnn(size: int = 64, seed: int = 0) -> nn.Module:
    """A random Faster R-CNN that reports every box it scores (scores about 1/3)."""
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.ops import MultiScaleRoIAlign

    torch.manual_seed(seed)
    backbone = nn.Sequential(
        nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU()
    )
    backbone.out_channels = 16
    return FasterRCNN(
        backbone,
        num_classes=len(LABELS),
        rpn_anchor_generator=AnchorGenerator(
            sizes=((8, 16, 32),), aspect_ratios=((0.5, 1.0, 2.0),)
        ),
        box_roi_pool=MultiScaleRoIAlign(featmap_names=["0"], output_size=7, sampling_ratio=2),
        min_size=size,
        max_size=size,
        box_score_thresh=0.0,
    ).eval()


class BrightBox(nn.Module):
    """Finds one object, always at :data:`BOX`; its score is how bright the red channel
    is inside the box (a sigmoid), a second, fainter one a fixed box elsewhere. Its
    explanations should light up :data:`BOX` and nothing else."""

    def forward(self, x: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        x0, y0, x1, y1 = (int(v) for v in BOX)
        answers = []
        for image in x:
            inside = image[0, y0:y1, x0:x1].mean()
            score = torch.sigmoid(8 * (inside - 0.5))
            answers.append(
                {
                    "boxes": torch.tensor([BOX, (0.0, 0.0, 12.0, 12.0)]),
                    "labels": torch.tensor([CLASS, 2]),
                    "scores": torch.stack([score, score * 0 + 0.1]),
                }
            )
        return answers
