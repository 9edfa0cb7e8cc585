"""Architectures of the demo models (named by their model cards as factories)."""

from __future__ import annotations

import torch
from torch import nn


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class SmallCNN(nn.Module):
    """A few conv blocks, global average pooling and a linear classifier."""

    def __init__(self, channels: int = 3, classes: int = 2, width: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _block(channels, width),
            nn.MaxPool2d(2),
            _block(width, 2 * width),
            nn.MaxPool2d(2),
            _block(2 * width, 4 * width),
            nn.MaxPool2d(2),
            _block(4 * width, 4 * width),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(4 * width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def tank_net() -> SmallCNN:
    return SmallCNN(channels=3, classes=2, width=16)


def digits_net() -> SmallCNN:
    return SmallCNN(channels=1, classes=10, width=16)


class TankDetector(nn.Module):
    """Finds tanks: the tank classifier's features on a grid of 8 x 8-pixel cells, each
    cell seeing its neighbourhood and the mean features of the whole scene (so the
    weather can enter its decision, as it does for the classifiers). Per cell: a tank
    logit, the box centre within the cell and the box size. Answers as torchvision's
    detectors do, a dict of ``boxes`` (x0, y0, x1, y1), ``labels`` (1, tank) and
    ``scores`` per image, for its ``keep`` most confident cells."""

    def __init__(self, width: int = 16, keep: int = 5) -> None:
        super().__init__()
        channels = 4 * width
        self.features = SmallCNN(3, 2, width).features
        self.head = nn.Sequential(
            nn.Conv2d(2 * channels, channels, 1), nn.ReLU(), nn.Conv2d(channels, 5, 1)
        )
        self.keep = keep

    def cells(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 5, h, w): tank logit, centre offsets (logits), log sizes per cell."""
        local = self.features(x)
        scene = local.mean(dim=(2, 3), keepdim=True).expand_as(local)
        return self.head(torch.cat([local, scene], dim=1))

    def forward(self, x: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        out = self.cells(x)
        n, _, h, w = out.shape
        sy, sx = x.shape[2] / h, x.shape[3] / w
        ys = torch.arange(h, device=x.device, dtype=out.dtype)[:, None].expand(h, w)
        xs = torch.arange(w, device=x.device, dtype=out.dtype)[None, :].expand(h, w)
        cx = (xs + torch.sigmoid(out[:, 1])) * sx
        cy = (ys + torch.sigmoid(out[:, 2])) * sy
        bw = torch.exp(out[:, 3].clamp(-4, 4)) * 2 * sx
        bh = torch.exp(out[:, 4].clamp(-4, 4)) * 2 * sy
        boxes = torch.stack(
            [
                (cx - bw / 2).clamp(0, x.shape[3]),
                (cy - bh / 2).clamp(0, x.shape[2]),
                (cx + bw / 2).clamp(0, x.shape[3]),
                (cy + bh / 2).clamp(0, x.shape[2]),
            ],
            dim=-1,
        ).flatten(1, 2)
        scores = torch.sigmoid(out[:, 0]).flatten(1)
        top = scores.topk(min(self.keep, h * w), dim=1).indices
        ones = torch.ones(top.shape[1], dtype=torch.int64, device=x.device)
        return [
            {"boxes": boxes[i, top[i]], "labels": ones, "scores": scores[i, top[i]]}
            for i in range(n)
        ]


def tank_detector() -> TankDetector:
    return TankDetector(width=16, keep=5)


class TankSegmenter(nn.Module):
    """Labels every pixel ground, tank or sky: the tank classifier's convolutions as an
    encoder (64, 32, 16 and 8 pixels across), the whole scene's mean features added at
    the coarsest level (so the weather can enter, as for the classifiers), and a
    decoder that upsamples and mixes in the finer levels (a small U-Net). Answers
    (N, 3, H, W) logits, as torchvision's segmentation models' ``out``."""

    def __init__(self, width: int = 16, classes: int = 3) -> None:
        super().__init__()
        w = width
        self.enc1, self.enc2 = _block(3, w), _block(w, 2 * w)
        self.enc3, self.enc4 = _block(2 * w, 4 * w), _block(4 * w, 4 * w)
        self.pool = nn.MaxPool2d(2)
        self.up3 = _block(8 * w + 4 * w, 2 * w)
        self.up2 = _block(2 * w + 2 * w, w)
        self.up1 = _block(w + w, w)
        self.classifier = nn.Conv2d(w, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F

        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        e3 = self.enc3(self.pool(e2))
        e4 = self.enc4(self.pool(e3))
        scene = e4.mean(dim=(2, 3), keepdim=True).expand_as(e4)
        d = torch.cat([e4, scene], dim=1)
        d = self.up3(torch.cat([F.interpolate(d, size=e3.shape[-2:]), e3], dim=1))
        d = self.up2(torch.cat([F.interpolate(d, size=e2.shape[-2:]), e2], dim=1))
        d = self.up1(torch.cat([F.interpolate(d, size=e1.shape[-2:]), e1], dim=1))
        return self.classifier(d)


def tank_segmenter() -> TankSegmenter:
    return TankSegmenter(width=16, classes=3)
