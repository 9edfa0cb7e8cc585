"""Approximate occlusion: time against Captum's exact occlusion, and agreement with
Picasso's exact map, in one run.

    .venv/bin/python bench/occlusion_approximate.py [--archs resnet18 vgg16]
        [--budgets 0.1 0.2 0.3] [--window 16] [--stride 8] [--size 224]

Speed: random-weight torchvision networks (nothing is downloaded), logit of class 0,
zero baseline, one image: Captum's `Occlusion` (perturbations_per_eval 32), Picasso's
exact occlusion and its approximate mode per budget, all in this process on the same
threads, each timed once after a warm-up forward pass. Agreement (Spearman's rho over
pixels, overlap (IoU) of the top 10 % of pixels, the estimated and the actual RMS error
of the window values) needs maps with structure, which random weights do not give:
it is measured on trained networks, the demo tank classifiers on their sample scenes
(window 8, stride 2: 841 windows) and, with the `imagenet` extra, EfficientNet-Lite0 on
the sample photos (window 16, stride 8: 729 windows). The actual window RMS is measured
on the same models with stride = window, where the map's pixels are the window values.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def iou_top(a: np.ndarray, b: np.ndarray, share: float = 0.1) -> float:
    top_a, top_b = a >= np.quantile(a, 1 - share), b >= np.quantile(b, 1 - share)
    return float((top_a & top_b).sum() / (top_a | top_b).sum())


def speed(arch: str, budgets: list[float], window: int, stride: int, size: int) -> None:
    import torch
    import torchvision
    from captum.attr import Occlusion as CaptumOcclusion
    from scipy.stats import spearmanr

    import picasso

    torch.manual_seed(0)
    net = getattr(torchvision.models, arch)(weights=None).eval()
    image = torch.rand(1, 3, size, size) * 2 - 1
    model = picasso.from_torch(net, input_size=(size, size))
    with torch.no_grad():
        net(image)
    start = time.perf_counter()
    with torch.no_grad():
        CaptumOcclusion(net).attribute(
            image,
            sliding_window_shapes=(3, window, window),
            strides=(3, stride, stride),
            baselines=0.0,
            target=0,
            perturbations_per_eval=32,
        )
    captum_s = time.perf_counter() - start
    batch = image.numpy()

    def ours(**settings):
        from picasso.core.progress import Progress
        from picasso.visualizations.occlusion import Occlusion

        parsed = Occlusion.parse_settings(
            {"window": window, "stride": stride, "score": "logit", **settings}
        )
        start = time.perf_counter()
        out = Occlusion().explain(model, batch, [0], parsed, Progress())
        return out, time.perf_counter() - start

    exact, exact_s = ours()
    print(
        f"{arch} {size}px window {window} stride {stride} ({exact.extras['windows']} windows): "
        f"Captum {captum_s:.1f} s, exact {exact_s:.1f} s ({captum_s / exact_s:.1f}x Captum)"
    )
    for budget in budgets:
        approx, approx_s = ours(mode="approximate", budget=budget)
        a, b = exact.maps[0].ravel(), approx.maps[0].ravel()
        print(
            f"  approximate budget {budget}: {approx_s:.2f} s = {captum_s / approx_s:.1f}x "
            f"Captum, {exact_s / approx_s:.1f}x exact; random weights: rho "
            f"{spearmanr(a, b)[0]:.3f}, top-10% IoU {iou_top(a, b):.3f}"
        )


def agreement(budgets: list[float]) -> None:
    from scipy.stats import spearmanr

    import picasso
    from picasso.demo import demo_images, imagenet

    cases = [
        (name, image, {"window": 8, "stride": 2}, {"window": 4, "stride": 4})
        for name in ("tanks-fair", "tanks-biased")
        for image in ("tank-overcast", "tank-sunny", "forest-sunny", "forest-overcast")
    ]
    if imagenet.available():
        cases += [
            ("imagenet", image, {"window": 16, "stride": 8}, {"window": 16, "stride": 16})
            for image in ("cat", "coffee")
        ]
    else:
        print("(EfficientNet-Lite0 skipped: install the 'imagenet' extra)")
    for budget in budgets:
        print(f"budget {budget}:")
        for name, image, settings, tiles in cases:
            model = picasso.load_model(f"demo:{name}")
            path = demo_images(image)[0]
            exact = picasso.explain(model, path, "occlusion", **settings).attribution.ravel()
            approx = picasso.explain(
                model, path, "occlusion", mode="approximate", budget=budget, **settings
            )
            b = approx.attribution.ravel()
            # windows that tile the image: the map's pixels are the window values
            tiled = picasso.explain(model, path, "occlusion", **tiles).attribution
            guess = picasso.explain(
                model, path, "occlusion", mode="approximate", budget=budget, **tiles
            )
            actual = float(np.sqrt(((tiled - guess.attribution) ** 2).mean()))
            estimated = guess.extras["error_rms"][0]
            print(
                f"  {name:13s} {image:16s} rho {spearmanr(exact, b)[0]:.3f}  top-10% IoU "
                f"{iou_top(exact, b):.3f}  | tiles: RMS estimated {estimated:.4f}"
                f" actual {actual:.4f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=["resnet18", "vgg16"])
    parser.add_argument("--budgets", nargs="+", type=float, default=[0.1, 0.2, 0.3])
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--stride", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-agreement", action="store_true")
    args = parser.parse_args()
    if not args.skip_speed:
        for arch in args.archs:
            speed(arch, args.budgets, args.window, args.stride, args.size)
    if not args.skip_agreement:
        agreement(args.budgets)


if __name__ == "__main__":
    main()
