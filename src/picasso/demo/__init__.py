"""Bundled demo content: the tank models (biased and fair), the digits model and
sample images. ``demo:NAME`` in :func:`picasso.load_model` and the CLI refers here."""

from __future__ import annotations

from pathlib import Path

from ..core.errors import InvalidImageError, ModelLoadError

ROOT = Path(__file__).parent
MODELS_DIR = ROOT / "models"
IMAGES_DIR = ROOT / "images"


def demo_model_names() -> list[str]:
    """The bundled models with a card (``demo:imagenet`` is separate: see
    :mod:`picasso.demo.imagenet`)."""
    return sorted(p.name for p in MODELS_DIR.iterdir() if (p / "model.toml").is_file())


def demo_card_path(name: str) -> Path:
    path = MODELS_DIR / name / "model.toml"
    if not name or "/" in name or "\\" in name or not path.is_file():
        raise ModelLoadError(
            f"unknown demo model {name!r}; available: "
            + ", ".join(f"demo:{n}" for n in [*demo_model_names(), "imagenet"])
        )
    return path


def demo_images(pattern: str = "*") -> list[Path]:
    """Bundled sample images whose file stem matches ``pattern`` (a glob)."""
    found = sorted(IMAGES_DIR.glob(f"{pattern}.png"))
    if not found:
        names = ", ".join(p.stem for p in sorted(IMAGES_DIR.glob("*.png")))
        raise InvalidImageError(f"no demo image matches {pattern!r}; available: {names}")
    return found
