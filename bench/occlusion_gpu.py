"""Occlusion on a GPU: Picasso's dense occlusion (batches built on the device) against
Captum's, on the same network, image and settings, in one run.

    python bench/occlusion_gpu.py [--archs resnet18 resnet50 vgg16] [--window 16]
        [--stride 8] [--size 224] [--batch 64] [--device cuda]

Random weights (nothing is downloaded), fp32 with TF32 off (equal maps), logit of class
0, zero baseline. Each engine runs once to warm up, then ``--repeats`` times (median).
Also printed: a bare forward pass of as many images as there are windows, the floor
for any dense occlusion. With ``--device cpu`` it runs (slowly) anywhere, as a check of
the script itself; the numbers that matter come from a GPU machine.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def timed(run, device, repeats: int):
    import torch

    run()  # warm-up (cuDNN autotuning, allocations)
    times, result = [], None
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        result = run()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    import torch

    from picasso.visualizations.occlusion import window_starts

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=["resnet18", "resnet50", "vgg16"])
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--stride", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here; pass --device cpu to check the script")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    windows = len(window_starts(args.size, args.window, args.stride)) ** 2
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"{name}, torch {torch.__version__}, fp32 (TF32 off), {args.size}px, window "
        f"{args.window}, stride {args.stride} ({windows} windows), batch {args.batch}"
    )
    for arch in args.archs:
        compare(arch, args, device, windows)


def compare(arch: str, args: argparse.Namespace, device, windows: int) -> None:
    import torch
    import torchvision
    from captum.attr import Occlusion as CaptumOcclusion

    import picasso
    from picasso.core.progress import Progress
    from picasso.visualizations.occlusion import Occlusion

    torch.manual_seed(0)
    net = getattr(torchvision.models, arch)(weights=None).eval().to(device)
    image = torch.rand(1, 3, args.size, args.size, device=device) * 2 - 1
    model = picasso.from_torch(net, input_size=(args.size, args.size))
    settings = Occlusion.parse_settings(
        {
            "window": args.window,
            "stride": args.stride,
            "score": "logit",
            "batch_size": args.batch,
        }
    )
    batch = image.cpu().numpy()

    def ours():
        return Occlusion().explain(model, batch, [0], settings, Progress()).maps[0]

    def captum():
        with torch.no_grad():
            return (
                CaptumOcclusion(net)
                .attribute(
                    image,
                    sliding_window_shapes=(3, args.window, args.window),
                    strides=(3, args.stride, args.stride),
                    baselines=0.0,
                    target=0,
                    perturbations_per_eval=args.batch,
                )[0, 0]
                .cpu()
                .numpy()
            )

    def bare():
        with torch.no_grad():
            x = image.expand(args.batch, -1, -1, -1).contiguous()
            for _ in range(0, windows + 1, args.batch):
                net(x)

    t_ours, ours_map = timed(ours, device, args.repeats)
    t_captum, captum_map = timed(captum, device, args.repeats)
    t_bare, _ = timed(bare, device, args.repeats)
    diff = float(np.abs(ours_map - captum_map).max())
    print(
        f"{arch}: Captum {t_captum:.3f} s, Picasso {t_ours:.3f} s "
        f"({t_captum / t_ours:.2f}x), bare forward {t_bare:.3f} s; max |diff| {diff:.1e} "
        f"(of {float(np.abs(captum_map).max()):.1e})"
    )


if __name__ == "__main__":
    main()
