"""Importing a trusted Python file by path (model-card hooks, plugin folders)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def import_file(module_name: str, path: Path, register: bool = False) -> ModuleType:
    """Execute ``path`` as module ``module_name``. ``register`` puts it in
    ``sys.modules`` first (pydantic and pickling resolve names through it)."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    if register:
        sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
