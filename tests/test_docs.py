"""The documentation's examples run, and every method and CLI command is documented."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import numpy as np

import picasso
from picasso.demo import MODELS_DIR, demo_images
from picasso.plugins import discover

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def code_blocks(path: Path, language: str) -> list[str]:
    pattern = rf"```{re.escape(language)}\n(.*?)```"
    return re.findall(pattern, path.read_text(encoding="utf-8"), re.S)


def test_plugin_tutorial_example_runs(tmp_path):
    source = next(
        b
        for b in code_blocks(DOCS / "writing-a-visualization.md", "python")
        if "class BlurSensitivity" in b
    )
    (tmp_path / "blur_sensitivity.py").write_text(source)
    registry = discover([tmp_path])
    assert "blur-sensitivity" in registry, registry.problems
    exp = picasso.explain(
        "demo:tanks-fair",
        demo_images("tank-overcast")[0],
        method="blur-sensitivity",
        plugin_dirs=[tmp_path],
        patch=8,
        strength=3,
    )
    assert exp.attribution.shape == (64, 64)
    assert exp.extras["patches"] == 64
    assert np.abs(exp.attribution).max() > 0


def test_plugin_tutorial_results_template_renders(tmp_path):
    from fastapi.testclient import TestClient

    from picasso.web import WebSettings, create_app

    tutorial = DOCS / "writing-a-visualization.md"
    source = next(b for b in code_blocks(tutorial, "python") if "class BlurSensitivity" in b)
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "blur_sensitivity.py").write_text(source)
    (tmp_path / "plugins" / "blur_sensitivity.html").write_text(
        code_blocks(tutorial, "html+jinja")[0]
    )
    settings = WebSettings(
        models=("demo:tanks-fair",), data_dir=tmp_path / "data", plugin_dirs=(tmp_path / "plugins",)
    )
    with TestClient(create_app(settings)) as client:
        form = client.get("/").text
        assert 'name="blur-sensitivity.strength"' in form  # the form comes from BlurSettings
        response = client.post(
            "/run",
            data={
                "model": "tanks-fair",
                "method": "blur-sensitivity",
                "samples": "tank-overcast",
                "blur-sensitivity.patch": "8",
            },
        )
        for _ in range(200):
            if 'data-status="done"' in response.text:
                break
            time.sleep(0.05)
            response = client.get(response.url.path)
        assert response.status_code == 200
        assert "Blurred 64 patches of 8 px" in response.text  # the plugin's own template
        assert 'class="heat' in response.text  # ... including the generic viewer


def test_model_card_example_loads(tmp_path):
    card = next(b for b in code_blocks(DOCS / "model-card.md", "toml") if "[preprocessing]" in b)
    shutil.copy(MODELS_DIR / "tanks-fair" / "model.safetensors", tmp_path / "model.safetensors")
    (tmp_path / "model.toml").write_text(card)
    model = picasso.load_model(tmp_path)
    assert model.info.name == "tank-detector"
    exp = picasso.explain(model, demo_images("tank-overcast")[0], method="class-probabilities")
    assert exp.top[0].label == "tank"


def test_every_method_and_command_is_documented():
    methods_doc = "\n".join(
        page.read_text(encoding="utf-8") for page in sorted((DOCS / "methods").glob("*.md"))
    )
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name, cls in discover(plugin_dirs=[]).items():
        headings = [line for line in methods_doc.splitlines() if line.startswith("# ")]
        assert any(f"`{name}`" in h for h in headings), name
        assert f"`{name}`" in readme, name
        for setting in cls.Settings.model_fields:
            assert f"`{setting}`" in methods_doc, (name, setting)
    for command in ("picasso explain", "picasso methods", "picasso models"):
        assert command in readme


def test_readme_links_resolve():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for target in re.findall(r"\]\(((?:docs/|CHANGES|LICENSE)[^)#]*)\)", readme):
        assert (ROOT / target).exists(), target


def test_own_model_guide_runs(tmp_path, monkeypatch):
    """Every Python block of docs/own-model.md, in order, in a fresh folder."""
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in code_blocks(DOCS / "own-model.md", "python"):
        exec(compile(block, "own-model.md", "exec"), namespace)
    assert namespace["model"].info.name == "my-tanks"  # the hooks example, last
    assert namespace["exp"].attribution.shape == (64, 64)


def test_docs_links_resolve():
    for page in DOCS.rglob("*.md"):
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", text):
            assert (page.parent / target).exists(), (page, target)


def test_the_notebook_tutorial_runs(tmp_path, monkeypatch):
    """docs/notebook.md's blocks, in order, in one namespace (as a notebook runs them);
    the rich displays they end with render."""
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in code_blocks(DOCS / "notebook.md", "python"):
        exec(compile(block, "notebook.md", "exec"), namespace)
    assert (tmp_path / "tank-maps.png").is_file()
    assert namespace["exp_fair"]._repr_png_().startswith(b"\x89PNG")
    assert "tank" in namespace["exp_fair"]._repr_html_()
    assert namespace["check"]._repr_png_().startswith(b"\x89PNG")
    assert "Look here first" in namespace["audit"]._repr_html_()


def test_results_of_different_images_never_overwrite_each_other(tmp_path):
    model = picasso.load_model("demo:tanks-fair")
    first = picasso.explain(model, np.zeros((64, 64, 3), np.uint8), method="saliency")
    second = picasso.explain(model, np.full((64, 64, 3), 200, np.uint8), method="saliency")
    a, b = first.save(tmp_path), second.save(tmp_path)
    assert a["png"] != b["png"] and a["png"].name.startswith("image-")
    again = first.save(tmp_path)  # the same image again: its own files, replaced
    assert again["png"] == a["png"]
    tank, sunny = demo_images("tank-overcast")[0], demo_images("tank-sunny")[0]
    x = picasso.explain(model, tank, method="saliency").save(tmp_path, stem="photo")
    y = picasso.explain(model, sunny, method="saliency").save(tmp_path, stem="photo")
    assert x["json"] != y["json"] and x["json"].is_file() and y["json"].is_file()
