"""Train the demo models and write their weights and sample images.

    python -m tools.demo.train            # all models, into the package folder
    python -m tools.demo.train --only tanks-fair --out /tmp/demo

Seeded (data, initialisation, batch order), though not bitwise reproducible on a
multi-threaded CPU: reruns give other weights with the same behaviour (the accuracies
and recalls printed). Takes one to two minutes per model on a 2-core CPU.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

from picasso.core.preprocessing import Preprocessing
from picasso.demo import IMAGES_DIR, MODELS_DIR
from picasso.demo.nets import digits_net, tank_detector, tank_net, tank_segmenter
from picasso.demo.tanks import WEATHERS, make_dataset

TANK_PRE = Preprocessing(input_size=(64, 64), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
DIGITS_PRE = Preprocessing(input_size=(32, 32), mean=(0.25,), std=(0.35,), grayscale=True)
#: Training-set bias: the probability that a tank is overcast and a forest sunny.
TANK_BIAS = {"tanks-biased": 1.0, "tanks-fair": 0.5}
TRAIN_SEED, TEST_SEED = 1, 2
#: The detectors see the same scenes (weather independent of the label); the biased
#: one's annotations miss every tank photographed in the sun (an annotation bias: the
#: sunny photos were never labelled), the fair one's are complete.
DETECTOR_LABELLED = {"tank-detector-biased": ("overcast",), "tank-detector-fair": WEATHERS}


def digit_image(pixels: np.ndarray) -> Image.Image:
    """A scikit-learn 8x8 digit (0..16) as a 64x64 grayscale image, ink bright."""
    small = Image.fromarray((pixels * (255 / 16)).astype(np.uint8), mode="L")
    return small.resize((64, 64), Image.Resampling.NEAREST)


def _train(
    model: torch.nn.Module,
    count: int,
    epochs: int,
    loss_of: Callable[[torch.Tensor], torch.Tensor],
    seed: int = 0,
) -> None:
    """AdamW with a one-cycle schedule over ``count`` examples in shuffled batches of
    64; ``loss_of(indices)`` is a batch's loss. Seeded (initialisation, batch order)."""
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=3e-3, total_steps=epochs * ((count + 63) // 64)
    )
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(count, generator=gen)
        total = 0.0
        for i in range(0, count, 64):
            idx = order[i : i + 64]
            opt.zero_grad()
            loss = loss_of(idx)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        print(f"  epoch {epoch + 1}/{epochs}: loss {total / count:.4f}")
    model.eval()


def _fit(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, seed: int) -> None:
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).long()
    _train(
        model,
        len(x),
        epochs,
        lambda idx: torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx]),
        seed,
    )


def _accuracy(model: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    with torch.inference_mode():
        pred = model(torch.from_numpy(x)).argmax(1).numpy()
    return float((pred == y).mean())


def train_tanks(name: str, out: Path, n: int = 4000, epochs: int = 8) -> dict[str, float]:
    scenes = make_dataset(n, seed=TRAIN_SEED, bias=TANK_BIAS[name])
    x = TANK_PRE([Image.fromarray(s.image) for s in scenes])
    y = np.array([s.label for s in scenes])
    model = tank_net()
    _fit(model, x, y, epochs, seed=0)
    results = {}
    for split, bias in (("same-weather", 1.0), ("independent", 0.5), ("swapped", 0.0)):
        test = make_dataset(400, seed=TEST_SEED, bias=bias)
        xt = TANK_PRE([Image.fromarray(s.image) for s in test])
        results[split] = _accuracy(model, xt, np.array([s.label for s in test]))
    _save(model, out / name / "model.safetensors")
    return results


def _cell_targets(
    scenes: list, labelled: tuple[str, ...], cells: int = 8, size: int = 64
) -> np.ndarray:
    """(N, 5, cells, cells): 1 at the cell holding a labelled tank box's centre (then
    the centre's offset in the cell and the box's log size in cell units), else 0.
    Tanks in weathers not ``labelled`` are left unannotated."""
    stride = size / cells
    targets = np.zeros((len(scenes), 5, cells, cells), np.float32)
    for i, scene in enumerate(scenes):
        if scene.box is None or scene.weather not in labelled:
            continue
        x0, y0, x1, y1 = scene.box
        cx, cy = (x0 + x1) / 2 / stride, (y0 + y1) / 2 / stride
        col, row = min(int(cx), cells - 1), min(int(cy), cells - 1)
        targets[i, :, row, col] = [
            1.0,
            cx - col,
            cy - row,
            np.log((x1 - x0) / (2 * stride)),
            np.log((y1 - y0) / (2 * stride)),
        ]
    return targets


def _fit_detector(model: torch.nn.Module, x: np.ndarray, t: np.ndarray, epochs: int) -> None:
    """Focal-free and simple: BCE on every cell's tank logit (the one positive cell
    weighted as much as the rest), L1 on the positive cell's centre and log size."""
    xt, tt = torch.from_numpy(x), torch.from_numpy(t)

    def loss_of(idx: torch.Tensor) -> torch.Tensor:
        out, target = model.cells(xt[idx]), tt[idx]
        positive = target[:, 0]
        weight = 1 + positive * (positive.numel() / positive.sum().clamp(min=1) - 1) * 0.1
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            out[:, 0], positive, weight=weight
        )
        mask = positive.bool()
        if mask.any():
            offsets = torch.sigmoid(out[:, 1:3].permute(0, 2, 3, 1)[mask])
            sizes = out[:, 3:5].permute(0, 2, 3, 1)[mask]
            wanted = target.permute(0, 2, 3, 1)[mask]
            loss = loss + (offsets - wanted[:, 1:3]).abs().mean()
            loss = loss + (sizes - wanted[:, 3:5]).abs().mean()
        return loss

    _train(model, len(x), epochs, loss_of)


def detector_scores(model: torch.nn.Module, scenes: list) -> dict[str, float]:
    """Recall (a tank's top box has IoU >= 0.5 with the true box and scores >= 0.5) and
    false alarms (a forest's top box scores >= 0.5), per weather."""
    from picasso.core.detection import box_iou

    x = TANK_PRE([Image.fromarray(s.image) for s in scenes])
    with torch.inference_mode():
        answers = model(torch.from_numpy(x))
    results = {}
    for weather in WEATHERS:
        found, alarms, tanks, forests = 0, 0, 0, 0
        for scene, answer in zip(scenes, answers, strict=True):
            if scene.weather != weather:
                continue
            score, box = float(answer["scores"][0]), answer["boxes"][0].numpy()
            if scene.box is None:
                forests += 1
                alarms += score >= 0.5
            else:
                tanks += 1
                iou = box_iou(np.array([scene.box]), box[None])[0, 0]
                found += score >= 0.5 and iou >= 0.5
        results[f"{weather} recall"] = round(found / max(tanks, 1), 3)
        results[f"{weather} false alarms"] = round(alarms / max(forests, 1), 3)
    return results


def train_detector(name: str, out: Path, n: int = 4000, epochs: int = 12) -> dict[str, float]:
    scenes = make_dataset(n, seed=TRAIN_SEED, bias=0.5)
    x = TANK_PRE([Image.fromarray(s.image) for s in scenes])
    model = tank_detector()
    _fit_detector(model, x, _cell_targets(scenes, DETECTOR_LABELLED[name]), epochs)
    _save(model, out / name / "model.safetensors")
    return detector_scores(model, make_dataset(800, seed=TEST_SEED, bias=0.5))


#: The segmenters: the same scenes and annotation bias as the detectors.
SEGMENTER_LABELLED = {"tank-segmenter-biased": ("overcast",), "tank-segmenter-fair": WEATHERS}


def _pixel_targets(scenes: list, labelled: tuple[str, ...]) -> np.ndarray:
    """(N, H, W) classes (ground 0, tank 1, sky 2); tanks in weathers not ``labelled``
    are annotated as ground."""
    masks = np.stack([s.mask for s in scenes]).astype(np.int64)
    for i, scene in enumerate(scenes):
        if scene.weather not in labelled:
            masks[i][masks[i] == 1] = 0
    return masks


def _fit_segmenter(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, epochs: int) -> None:
    """Cross-entropy per pixel, the tank class weighted up (it covers ~3 % of a scene)."""
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    weight = torch.tensor([1.0, 5.0, 1.0])
    _train(
        model,
        len(x),
        epochs,
        lambda idx: torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx], weight=weight),
    )


def segmenter_scores(model: torch.nn.Module, scenes: list) -> dict[str, float]:
    """The tank class's IoU (predicted vs true tank pixels, over all tank scenes of a
    weather) and the share of forest scenes with any pixel called tank, per weather."""
    x = TANK_PRE([Image.fromarray(s.image) for s in scenes])
    with torch.inference_mode():
        predicted = model(torch.from_numpy(x)).argmax(1).numpy()
    results = {}
    for weather in WEATHERS:
        inter = union = alarms = forests = 0
        for scene, labels in zip(scenes, predicted, strict=True):
            if scene.weather != weather:
                continue
            if scene.box is None:
                forests += 1
                alarms += bool((labels == 1).sum() >= 10)
                continue
            truth, guess = scene.mask == 1, labels == 1
            inter += int((truth & guess).sum())
            union += int((truth | guess).sum())
        results[f"{weather} tank IoU"] = round(inter / max(union, 1), 3)
        results[f"{weather} false alarms"] = round(alarms / max(forests, 1), 3)
    return results


def train_segmenter(name: str, out: Path, n: int = 4000, epochs: int = 8) -> dict[str, float]:
    scenes = make_dataset(n, seed=TRAIN_SEED, bias=0.5)
    x = TANK_PRE([Image.fromarray(s.image) for s in scenes])
    model = tank_segmenter()
    _fit_segmenter(model, x, _pixel_targets(scenes, SEGMENTER_LABELLED[name]), epochs)
    _save(model, out / name / "model.safetensors")
    return segmenter_scores(model, make_dataset(800, seed=TEST_SEED, bias=0.5))


def train_digits(out: Path, epochs: int = 12) -> dict[str, float]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x_all = DIGITS_PRE([digit_image(p) for p in digits.images])
    y_all = digits.target
    rng = np.random.default_rng(TRAIN_SEED)
    order = rng.permutation(len(y_all))
    split = int(0.8 * len(order))
    train, test = order[:split], order[split:]
    model = digits_net()
    _fit(model, x_all[train], y_all[train], epochs, seed=0)
    _save(model, out / "digits" / "model.safetensors")
    return {"held-out": _accuracy(model, x_all[test], y_all[test])}


def _save(model: torch.nn.Module, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    print(f"  wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")


def write_samples(out: Path) -> None:
    """Sample images: tanks and forests in both weathers, and a few digits."""
    from sklearn.datasets import load_digits

    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    from picasso.demo.tanks import make_scene

    for label, weather in (
        ("tank", "overcast"),
        ("tank", "sunny"),
        ("forest", "sunny"),
        ("forest", "overcast"),
    ):
        scene = make_scene(rng, 1 if label == "tank" else 0, weather)
        Image.fromarray(scene.image).save(out / f"{label}-{weather}.png")
    digits = load_digits()
    for d in (0, 3, 7):
        index = int(np.flatnonzero(digits.target == d)[0])
        digit_image(digits.images[index]).save(out / f"digit-{d}.png")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=MODELS_DIR, help="models folder")
    parser.add_argument("--images", type=Path, default=IMAGES_DIR, help="sample images folder")
    models = [*TANK_BIAS, *DETECTOR_LABELLED, *SEGMENTER_LABELLED, "digits", "samples"]
    parser.add_argument("--only", choices=models, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    for name in TANK_BIAS:
        if args.only in (None, name):
            print(f"training {name}")
            print(f"  accuracy: {train_tanks(name, args.out)}")
    for name in DETECTOR_LABELLED:
        if args.only in (None, name):
            print(f"training {name}")
            print(f"  recall and false alarms: {train_detector(name, args.out)}")
    for name in SEGMENTER_LABELLED:
        if args.only in (None, name):
            print(f"training {name}")
            print(f"  tank IoU and false alarms: {train_segmenter(name, args.out)}")
    if args.only in (None, "digits"):
        print("training digits")
        print(f"  accuracy: {train_digits(args.out)}")
    if args.only in (None, "samples"):
        write_samples(args.images)
        print(f"  wrote sample images into {args.images}")


if __name__ == "__main__":
    main()
