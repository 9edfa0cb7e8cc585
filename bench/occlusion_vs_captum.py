"""Occlusion: Picasso vs captum.attr.Occlusion on the same network, image and settings.

    .venv/bin/python bench/occlusion_vs_captum.py [--archs resnet18 vgg16] [--window 32]
        [--stride 16] [--size 224] [--threads N] [--repeats 3] [--ours-batch 32 [8 ...]]
        [--onnx] [--keras]

Random weights (nothing is downloaded); occlusion of the logit of class 0 with a zero
baseline. Each engine runs in a fresh subprocess, so its peak memory (the kernel's
high-water mark, reset after the model is built and warmed up) is its own. Captum gets
its best ``perturbations_per_eval`` (calibrated first: the batch size with the best
throughput of the plain model); Picasso runs with its default batch size. Each engine
runs ``--repeats`` times, alternating; times are medians. Printed, in one run: time
ratio, max |difference| of the maps, peak extra memory of each, and GFLOP/s against
the measured float32 matmul peak: for Captum and Picasso's "effective" rate the dense
work (FLOPs of one forward pass x passes) over time; "done" scales Picasso's by the
share of convolution work its incremental engine actually performed.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# tools/ (the demo exporters) lives beside the package, at the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def reset_peak() -> None:
    """Reset the kernel's peak-RSS mark (VmHWM), so model construction does not count."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def peak_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def build(arch: str):
    import torch
    import torchvision

    torch.manual_seed(0)
    return getattr(torchvision.models, arch)(weights=None).eval()


def matmul_peak_gflops(threads: int) -> float:
    import torch

    torch.set_num_threads(threads)
    n = 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(10):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def forward_gflop(arch: str, size: int) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model = build(arch)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    return counter.get_total_flops() / 1e9


def calibrate_batch(arch: str, size: int, threads: int, candidates=(8, 16, 32, 64)) -> int:
    """The batch size with the best plain-model throughput (Captum's best ppe)."""
    import torch

    torch.set_num_threads(threads)
    model = build(arch)
    best, best_rate = candidates[0], 0.0
    with torch.no_grad():
        for n in candidates:
            x = torch.randn(n, 3, size, size)
            model(x)
            t = time.perf_counter()
            model(x)
            rate = n / (time.perf_counter() - t)
            if rate > best_rate:
                best, best_rate = n, rate
    return best


def worker(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    model = build(args.arch)
    batch = np.load(args.input)
    with torch.no_grad():
        model(torch.from_numpy(batch))  # warm-up: one-time kernel setup is not measured
    if args.worker == "onnx":
        import picasso
        from tools.demo.export import to_onnx

        to_onnx(model, Path(args.output).with_suffix(".onnx"), batch.shape)
        onnx_model = picasso.load_model(Path(args.output).with_suffix(".onnx"))
        onnx_model.forward(np.repeat(batch, args.batch, axis=0))  # warm-up, as for torch
    if args.worker == "keras":
        import picasso
        from tools.demo.resnet_keras import resnet_to_keras

        keras_path = Path(args.output).with_suffix(".keras")
        resnet_to_keras(model, (args.size, args.size)).save(keras_path)
        keras_model = picasso.load_model(keras_path)
        keras_model.forward(np.repeat(batch, args.batch, axis=0))  # warm-up, as for torch
    reset_peak()
    base = rss_mb()
    start = time.perf_counter()
    if args.worker == "captum":
        from captum.attr import Occlusion

        with torch.no_grad():
            attr = Occlusion(model).attribute(
                torch.from_numpy(batch),
                sliding_window_shapes=(3, args.window, args.window),
                strides=(3, args.stride, args.stride),
                baselines=0.0,
                target=args.target,
                perturbations_per_eval=args.batch,
            )
        result = attr[0, 0].numpy()
        extras = {"engine": "captum", "work_fraction": 1.0}
    else:
        import picasso
        from picasso.core.progress import Progress
        from picasso.visualizations.occlusion import Occlusion

        if args.worker == "onnx":
            wrapped = onnx_model
        elif args.worker == "keras":
            wrapped = keras_model
        else:
            wrapped = picasso.from_torch(model, input_size=(args.size, args.size))
        settings = Occlusion.parse_settings(
            {
                "window": args.window,
                "stride": args.stride,
                "batch_size": args.batch,
                "score": "logit",
            }
        )
        out = Occlusion().explain(wrapped, batch, [args.target], settings, Progress())
        result = out.maps[0]
        extras = {k: out.extras[k] for k in ("engine", "work_fraction")}
        if args.worker in ("onnx", "keras"):
            extras["engine"] = {"onnx": "onnxruntime", "keras": "keras"}[args.worker]
    elapsed = time.perf_counter() - start
    np.save(args.output, result)
    print(json.dumps({"seconds": elapsed, "peak_extra_mb": peak_rss_mb() - base, **extras}))


def run_worker(which: str, args, arch: str, batch: int, input_path: Path, out: Path) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        which,
        "--arch",
        arch,
        "--input",
        str(input_path),
        "--output",
        str(out),
        "--batch",
        str(batch),
        "--window",
        str(args.window),
        "--stride",
        str(args.stride),
        "--size",
        str(args.size),
        "--threads",
        str(args.threads),
        "--target",
        str(args.target),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    import os

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=["resnet18", "vgg16"])
    parser.add_argument("--window", type=int, default=32)
    parser.add_argument("--stride", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--target", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="runs per engine (median)")
    parser.add_argument(
        "--ours-batch",
        type=int,
        nargs="+",
        default=[32],
        help="Picasso's batch_size (several: one row each)",
    )
    parser.add_argument("--worker", choices=["ours", "captum", "onnx", "keras"])
    parser.add_argument(
        "--onnx",
        action="store_true",
        help="also run Picasso on the network exported to ONNX (onnxruntime)",
    )
    parser.add_argument(
        "--keras",
        action="store_true",
        help="also run Picasso on the network rebuilt in Keras (ResNets only)",
    )
    parser.add_argument("--arch")
    parser.add_argument("--input")
    parser.add_argument("--output")
    parser.add_argument("--batch", type=int)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    import torch

    from picasso.visualizations.occlusion import window_starts

    peak = matmul_peak_gflops(args.threads)
    windows = len(window_starts(args.size, args.window, args.stride)) ** 2
    print(
        f"torch {torch.__version__}, {args.threads} threads, float32 matmul peak "
        f"{peak:.0f} GFLOP/s; {args.size}x{args.size} input, window {args.window}, "
        f"stride {args.stride}: {windows} occluded images + 1"
    )
    header = (
        "| network | batch (Captum ppe / Picasso) | Captum s | Picasso s | speed-up | "
        "max abs diff (of max abs map) | Captum peak MB | Picasso peak MB | "
        "Captum GFLOP/s (of peak) | Picasso effective GFLOP/s | Picasso engine, conv work | "
        "Picasso GFLOP/s done (of peak) |"
    )
    rows = [header, "|" + "---|" * 12]
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        from PIL import Image

        import picasso

        image = Image.fromarray(rng.integers(0, 256, (args.size, args.size, 3), np.uint8))
        batch = picasso.from_torch(
            torch.nn.Identity(),
            input_size=(args.size, args.size),
            mean=(0.485, 0.456, 0.406),
            std=(0.229, 0.224, 0.225),
        ).preprocess([image])
        np.save(tmp / "input.npy", batch)
        for arch in args.archs:
            gflop = forward_gflop(arch, args.size) * (windows + 1)
            ppe = calibrate_batch(arch, args.size, args.threads)
            runs: dict[str, list[dict]] = {}
            for _ in range(args.repeats):  # alternate, so drift in machine load hits both
                engines = [("captum", ppe)]
                for size in args.ours_batch:
                    engines.append(("ours", size))
                    if args.onnx:
                        engines.append(("onnx", size))
                    if args.keras and arch.startswith("resnet"):
                        engines.append(("keras", size))
                for which, size in engines:
                    key = which if which == "captum" else f"{which}@{size}"
                    out = tmp / f"{key}.npy"
                    result = run_worker(which, args, arch, size, tmp / "input.npy", out)
                    runs.setdefault(key, []).append({**result, "batch": size})
            captum_s = float(np.median([r["seconds"] for r in runs["captum"]]))
            captum_mb = max(r["peak_extra_mb"] for r in runs["captum"])
            ref = np.load(tmp / "captum.npy")
            for which in [w for w in runs if w != "captum"]:
                ours_s = float(np.median([r["seconds"] for r in runs[which]]))
                ours_mb = max(r["peak_extra_mb"] for r in runs[which])
                diff = float(np.abs(ref - np.load(tmp / f"{which}.npy")).max())
                engine, work = runs[which][-1]["engine"], runs[which][-1]["work_fraction"]
                rows.append(
                    f"| {arch} | {ppe} / {runs[which][-1]['batch']} | {captum_s:.1f} | "
                    f"{ours_s:.1f} | "
                    f"**{captum_s / ours_s:.2f}x** | {diff:.1e} (of {np.abs(ref).max():.1e}) | "
                    f"{captum_mb:.0f} | {ours_mb:.0f} | "
                    f"{gflop / captum_s:.0f} ({gflop / captum_s / peak:.0%}) | "
                    f"{gflop / ours_s:.0f} | {engine}, {work:.0%} | "
                    f"{gflop * work / ours_s:.0f} ({gflop * work / ours_s / peak:.0%}) |"
                )
                print(rows[-1], flush=True)
    peak_after = matmul_peak_gflops(args.threads)
    print()
    print(f"float32 matmul peak: {peak:.0f} GFLOP/s before, {peak_after:.0f} after the runs")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
