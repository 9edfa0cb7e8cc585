"""Time every built-in visualization on one network and image (default: a randomly
initialised torchvision ResNet-18 at 224x224), with each method's default settings.

    .venv/bin/python bench/method_times.py [--arch resnet18] [--size 224]

One target (top-1), one run each after a warm-up forward pass; prints a Markdown table.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    import torch
    import torchvision

    import picasso

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()
    torch.manual_seed(0)
    module = getattr(torchvision.models, args.arch)(weights=None).eval()
    model = picasso.from_torch(
        module,
        input_size=(args.size, args.size),
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
    )
    image = np.random.default_rng(0).integers(0, 256, (args.size, args.size, 3), np.uint8)
    model.probabilities(model.preprocess([picasso_image(image)]))  # warm-up
    print(
        f"| method ({args.arch}, {args.size}x{args.size}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads) | seconds | notes |"
    )
    print("|---|---|---|")
    for name in sorted(picasso.methods()):
        start = time.perf_counter()
        exp = picasso.explain(model, image, method=name)
        seconds = time.perf_counter() - start
        notes = ", ".join(f"{k}={v}" for k, v in exp.settings.items())
        if "engine" in exp.extras:
            notes += f"; engine {exp.extras['engine']}"
        print(f"| {name} | {seconds:.1f} | {notes} |", flush=True)


def picasso_image(array):
    from PIL import Image

    return Image.fromarray(array)


if __name__ == "__main__":
    main()
