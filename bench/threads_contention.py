"""Two jobs at once on this machine's cores: every framework call using all the cores
(the frameworks' default) against each job using its share (what the server sets).

    .venv/bin/python bench/threads_contention.py [--model demo:imagenet] [--repeat 2]

Runs the same pair of occlusion jobs through a two-worker JobRunner twice per setting,
interleaved, and prints the wall time of each setting and their ratio, from one run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    import torch

    import picasso
    from picasso.core.threads import cores, per_job, set_threads
    from picasso.demo import demo_images
    from picasso.jobs import JobRunner, JobStore
    from picasso.plugins import discover
    from picasso.requests import ExplainRequest

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo:imagenet")
    parser.add_argument("--image", default="cat")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--window", type=int, default=32)
    parser.add_argument("--stride", type=int, default=16)
    args = parser.parse_args()
    model = picasso.load_model(args.model)
    image = demo_images(args.image)[0]
    registry = discover()
    settings = {"window": args.window, "stride": args.stride, "batch_size": 16}

    def pair(threads: int, seed: int) -> float:
        set_threads(threads)
        with tempfile.TemporaryDirectory() as folder:
            runner = JobRunner(JobStore(Path(folder)), {"m": model}, registry, workers=2)
            try:
                start = time.perf_counter()
                jobs = [
                    runner.submit(
                        "m",
                        image,
                        ExplainRequest(
                            method="occlusion", settings={**settings, "baseline": b}, target=seed
                        ),
                    )
                    for b in (0.0, 0.5)  # two different jobs (no cache hit)
                ]
                for job in jobs:
                    assert runner.wait(job.id, timeout=3600).status == "done"
                return time.perf_counter() - start
            finally:
                runner.shutdown()
                runner.store.close()

    default, shared = cores(), per_job(2)
    times: dict[int, list[float]] = {default: [], shared: []}
    for i in range(args.repeat):
        for count in (default, shared):
            times[count].append(pair(count, i))
    best = {k: min(v) for k, v in times.items()}
    print(
        f"{args.model}, two occlusion jobs at once ({args.window}/{args.stride}), "
        f"{cores()} cores, torch {torch.__version__}"
    )
    print(f"threads per job = {default} (all cores each): {best[default]:.1f} s", end="")
    print(f" (best of {args.repeat})")
    print(f"threads per job = {shared} (cores / workers): {best[shared]:.1f} s")
    print(f"ratio: {best[default] / best[shared]:.2f}x")


if __name__ == "__main__":
    main()
