"""The API is what its OpenAPI document says: Schemathesis, against `picasso serve` on
the served schema, every check (the unsupported-method check excluded: Starlette's 405
carries no Allow header), a bounded number of examples, seeded. Rejections the schema
cannot express (an upload that is not an image, settings that depend on the method) are
declared per operation in schemathesis.toml."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from web.live import start_server, stop_server

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_schemathesis_finds_nothing(tmp_path):
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    assert st, "schemathesis is part of the dev extra"
    process, url = start_server(tmp_path / "data", "--model", "demo:digits")
    try:
        result = subprocess.run(
            [
                st,
                "run",
                f"{url}/openapi.json",
                "--checks",
                "all",
                "--exclude-checks",
                "unsupported_method",
                "--max-examples",
                "25",
                "--seed",
                "1",
                "--no-color",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        stop_server(process)
    summary = result.stdout[-3000:]
    assert result.returncode == 0, summary
    assert " passed" in summary and "failed" not in summary.split("SUMMARY")[-1]
