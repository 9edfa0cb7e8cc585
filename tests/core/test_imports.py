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
        "import picasso.core.model, picasso.core.method, picasso.core.targets, "
        "picasso.core.images, picasso.core.preprocessing, picasso.core.progress",
        "import picasso.plugins, picasso.service, picasso.render, picasso.cli; picasso.methods()",
    ],
)
def test_no_framework_imported(statement):
    assert not (loaded_after(statement) & set(FRAMEWORKS))


def test_torch_is_imported_once_a_torch_model_loads():
    assert "torch" in loaded_after("import picasso; picasso.load_model('demo:digits')")


BLOCK_TORCH = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("No module named 'torch'", name="torch")
sys.meta_path.insert(0, Block())
"""


def test_works_without_torch_and_names_the_extra():
    code = BLOCK_TORCH + (
        "import picasso\n"
        "print(sorted(picasso.methods()))\n"
        "try:\n"
        "    picasso.load_model('demo:digits')\n"
        "except picasso.PicassoError as exc:\n"
        "    print('ERROR', exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "'occlusion'" in out
    assert "ERROR" in out and "pip install 'picasso-vision[torch]'" in out
