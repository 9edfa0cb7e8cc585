"""Jobs sharing this machine's cores: the frameworks' default (every call uses every
core) against the server's policy (cores / jobs running at the moment), for one job
alone and for two at once.

    .venv/bin/python bench/threads_contention.py [--model demo:imagenet] [--repeat 2]

Runs occlusion jobs through a two-worker JobRunner, the settings interleaved, and
prints the best wall time of each case and the ratios, from one run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    import torch

    import picasso
    from picasso.core.threads import cores, set_threads
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

    def run(jobs: int, share: bool) -> float:
        set_threads(None if share else cores())
        with tempfile.TemporaryDirectory() as folder:
            runner = JobRunner(
                JobStore(Path(folder)), {"m": model}, registry, workers=2, share_cores=share
            )
            try:
                start = time.perf_counter()
                submitted = [
                    runner.submit(
                        "m",
                        image,
                        ExplainRequest(method="occlusion", settings={**settings, "baseline": b}),
                    )
                    for b in (0.0, 0.5)[:jobs]  # different jobs (no cache hit)
                ]
                for job in submitted:
                    assert runner.wait(job.id, timeout=3600).status == "done"
                return time.perf_counter() - start
            finally:
                runner.shutdown()
                runner.store.close()

    cases = [(jobs, share) for jobs in (1, 2) for share in (False, True)]
    times: dict[tuple[int, bool], list[float]] = {case: [] for case in cases}
    for _ in range(args.repeat):
        for case in cases:
            times[case].append(run(*case))
    best = {case: min(values) for case, values in times.items()}
    print(
        f"{args.model}, occlusion {args.window}/{args.stride}, {cores()} cores, "
        f"torch {torch.__version__}, best of {args.repeat}"
    )
    for jobs in (1, 2):
        default, shared = best[(jobs, False)], best[(jobs, True)]
        print(
            f"{jobs} job(s): every call on all cores {default:.1f} s; cores shared among "
            f"running jobs {shared:.1f} s; ratio {default / shared:.2f}x"
        )


if __name__ == "__main__":
    main()
