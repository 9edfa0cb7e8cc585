"""The core and the package root import no framework (checked in a clean subprocess)."""

import subprocess
import sys

import pytest

FRAMEWORKS = ["torch", "tensorflow", "keras", "onnxruntime", "fastapi", "jinja2", "jax"]


def loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return {name.split(".")[0] for name in out.split()}


@pytest.mark.parametrize(
    "statement",
    [
        "import picasso",
        "import picasso.core.model, picasso.core.method, picasso.core.explanation, "
        "picasso.core.images, picasso.core.preprocessing, picasso.core.progress",
        "import picasso.plugins, picasso.service, picasso.render, picasso.cli; picasso.methods()",
    ],
)
def test_no_framework_imported(statement):
    assert not (loaded_after(statement) & set(FRAMEWORKS))


def test_torch_is_imported_once_a_torch_model_loads():
    assert "torch" in loaded_after("import picasso; picasso.load_model('demo:digits')")
