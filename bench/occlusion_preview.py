"""When does the first occlusion preview arrive? ResNet-18 (random weights) at 224,
window 16, stride 8 (729 windows), one class, on this machine.

    .venv/bin/python bench/occlusion_preview.py

Prints the time to the first preview (a whole coarse map), the number of previews and
the total time, and the agreement (Pearson) of each level's map with the result.
"""

from __future__ import annotations

import time

import numpy as np


def main() -> None:
    import torch
    import torchvision

    import picasso

    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=1000).eval()
    model = picasso.from_torch(
        net, input_size=(224, 224), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)
    )
    image = (np.random.default_rng(0).random((224, 224, 3)) * 255).astype(np.uint8)
    picasso.explain(model, image, "occlusion", window=16, stride=16, target=0)  # warm up
    seen: list[tuple[float, np.ndarray]] = []
    start = time.perf_counter()
    exp = picasso.explain(
        model,
        image,
        "occlusion",
        window=16,
        stride=8,
        target=0,
        preview=lambda maps: seen.append((time.perf_counter() - start, maps[0])),
    )
    total = time.perf_counter() - start
    print(
        f"ResNet-18 224, occlusion 16/8, {exp.extras['windows']} windows, engine "
        f"{exp.extras['engine']}, {torch.get_num_threads()} threads"
    )
    print(f"first preview after {seen[0][0]:.2f} s; {len(seen)} previews; total {total:.1f} s")
    for at, values in seen[:6]:
        r = np.corrcoef(values.ravel(), exp.attribution.ravel())[0, 1]
        print(f"  preview at {at:5.2f} s: correlation with the result {r:.2f}")


if __name__ == "__main__":
    main()
