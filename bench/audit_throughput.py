"""Audit throughput against the hardware: images/s of ``picasso.audit`` (Grad-CAM and
saliency) next to a bare batched forward + backward of the same network on the same
device, measured in one run.

    .venv/bin/python bench/audit_throughput.py                  # ResNet-18, CPU
    .venv/bin/python bench/audit_throughput.py --device cuda --images 512 --archs resnet18 resnet50

Each figure is the best of ``--repeats`` runs, bare and audit interleaved (shared
machines are noisy). The bare loop is what a hand-written audit does at best: the batch
already on the device, one forward and one backward per batch, nothing else. The
audit's figure is its explain phase (``audit.timings["images_per_s"]``): decoding and
preprocessing the images, the prediction, the method's batch path, the metrics and
writing the results (clustering and the report come after and are not counted). Random
weights, 224 x 224.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np


def bare(module, batch, steps: int, layer=None) -> float:
    """Images/s of forward + backward: to the input (saliency) or to a layer (CAM)."""
    import torch

    captured = []
    handle = (
        layer.register_forward_hook(lambda _m, _i, out: captured.append(out)) if layer else None
    )
    x = batch.clone().requires_grad_(layer is None)
    started = time.perf_counter()
    for _ in range(steps):
        captured.clear()
        out = module(x)
        score = out[:, 0].sum()
        (grad,) = torch.autograd.grad(score, captured[-1] if layer else x)
        grad.sum().item()  # wait for the device
    elapsed = time.perf_counter() - started
    if handle:
        handle.remove()
    return steps * len(batch) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--archs", nargs="+", default=["resnet18"])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each, best taken")
    args = parser.parse_args()

    import torch
    import torchvision

    import picasso

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for _ in range(args.images)]
    print(f"device {args.device}, {args.images} images of 224 x 224, batch {args.batch}")
    print(f"{'network':10} {'method':10} {'bare img/s':>11} {'audit img/s':>12} {'ratio':>6}")
    for arch in args.archs:
        torch.manual_seed(0)
        module = getattr(torchvision.models, arch)(num_classes=1000).eval().to(args.device)
        module = module.to(memory_format=torch.channels_last)
        model = picasso.from_torch(
            module, input_size=(224, 224), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)
        )
        batch = torch.randn(args.batch, 3, 224, 224, device=args.device).contiguous(
            memory_format=torch.channels_last
        )
        steps = max(1, args.images // args.batch)
        last_block = dict(module.named_modules())["layer4"]
        for method, layer in (("saliency", None), ("grad-cam", last_block)):
            bare(module, batch, 3, layer)  # warm-up: kernels, allocator
            settings = {"layer": "layer4"} if method == "grad-cam" else {}
            with tempfile.TemporaryDirectory() as out:
                picasso.audit(
                    model,
                    images[: args.batch],
                    method=method,
                    out=f"{out}/warm",
                    batch_size=args.batch,
                    **settings,
                )
                # Shared machines are noisy: the best of a few runs each, interleaved.
                references, measured_runs = [], []
                for repeat in range(args.repeats):
                    references.append(bare(module, batch, steps, layer))
                    audit = picasso.audit(
                        model,
                        images,
                        method=method,
                        out=f"{out}/run{repeat}",
                        batch_size=args.batch,
                        **settings,
                    )
                    measured_runs.append(audit.timings["images_per_s"])
            reference, measured = max(references), max(measured_runs)
            print(
                f"{arch:10} {method:10} {reference:11.1f} {measured:12.1f} "
                f"{measured / reference:6.2f}"
            )


if __name__ == "__main__":
    main()
