"""Discovering visualizations: the ``picasso.methods`` entry-point group and plugin
folders of drop-in ``.py`` files.

Built-in methods are declared as entry points in Picasso's own ``pyproject.toml``, so
they travel the same road as third-party ones. A registry is built by
:func:`discover` and passed to whoever needs it; there is no global registry.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import TypeVar, cast, overload

from .core.errors import UnknownMethodError, quoted
from .core.method import Method, MethodSettings
from .core.pyfiles import import_file

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "picasso.methods"
#: Environment variable listing plugin folders (separated like PATH).
PLUGINS_ENV = "PICASSO_PLUGINS"
T = TypeVar("T")


class MethodRegistry(Mapping[str, type[Method]]):
    """Read-only mapping of method names to method classes, plus load problems."""

    def __init__(self, methods: dict[str, type[Method]], problems: list[str]) -> None:
        self._methods = dict(methods)
        self.problems = list(problems)

    def __getitem__(self, name: str) -> type[Method]:
        try:
            return self._methods[name]
        except KeyError:
            raise UnknownMethodError(
                f"unknown method {quoted(name)}; available: {', '.join(sorted(self._methods))}"
            ) from None

    @overload
    def get(self, name: str, /) -> type[Method] | None: ...
    @overload
    def get(self, name: str, default: type[Method] | T, /) -> type[Method] | T: ...
    def get(self, name: str, default: object = None, /) -> object:
        # Mapping.get catches KeyError only; unknown names raise UnknownMethodError here.
        return self._methods.get(name, default)

    def __contains__(self, name: object) -> bool:
        return name in self._methods

    def __iter__(self) -> Iterator[str]:
        return iter(self._methods)

    def __len__(self) -> int:
        return len(self._methods)


def _check_method(obj: object, origin: str) -> str | None:
    """Why ``obj`` is not a usable method class, or None if it is."""
    if not (inspect.isclass(obj) and issubclass(obj, Method)):
        return f"{origin}: not a subclass of picasso.core.method.Method"
    for attr in ("name", "description"):
        if not isinstance(getattr(obj, attr, None), str) or not getattr(obj, attr):
            return f"{origin}: method class {obj.__name__} has no {attr}"
    if not (inspect.isclass(obj.Settings) and issubclass(obj.Settings, MethodSettings)):
        return f"{origin}: {obj.__name__}.Settings must subclass MethodSettings"
    return None


def _methods_in_file(path: Path) -> list[type[Method]]:
    module_name = f"picasso_plugin_{path.stem}"
    module = import_file(module_name, path, register=True)
    return [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, Method)
        and obj.__module__ == module_name
        and isinstance(obj.__dict__.get("name"), str)
    ]


def plugin_dirs_from_env() -> list[Path]:
    value = os.environ.get(PLUGINS_ENV, "")
    return [Path(p) for p in value.split(os.pathsep) if p]


def discover(
    plugin_dirs: Iterable[str | Path] | None = None, use_entry_points: bool = True
) -> MethodRegistry:
    """Build a registry from entry points and plugin folders.

    Args:
        plugin_dirs: folders whose ``*.py`` files are imported and searched for
            :class:`Method` subclasses; ``None`` reads ``$PICASSO_PLUGINS``.
        use_entry_points: also load the ``picasso.methods`` entry-point group.
    A plugin that fails to load is skipped with a warning (kept in
    ``registry.problems``); it never takes the others down. The first method to
    claim a name keeps it.
    """
    found: dict[str, type[Method]] = {}
    problems: list[str] = []

    def add(obj: object, origin: str) -> None:
        problem = _check_method(obj, origin)
        if problem is None:
            cls = cast(type[Method], obj)
            if cls.name in found and found[cls.name] is not cls:
                problem = f"{origin}: method name {cls.name!r} is already taken; skipped"
            else:
                found[cls.name] = cls
                return
        problems.append(problem)
        log.warning(problem)

    if use_entry_points:
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            try:
                add(ep.load(), f"entry point {ep.name} ({ep.value})")
            except Exception as exc:  # a broken plugin must not break Picasso
                problems.append(f"entry point {ep.name}: {exc}")
                log.warning("cannot load method plugin %s: %s", ep.name, exc)
    dirs = plugin_dirs_from_env() if plugin_dirs is None else [Path(d) for d in plugin_dirs]
    for folder in dirs:
        if not folder.is_dir():
            problems.append(f"plugin folder {folder} does not exist")
            continue
        for path in sorted(folder.glob("*.py")):
            if path.name.startswith("_"):
                continue
            try:
                for cls in _methods_in_file(path):
                    add(cls, str(path))
            except Exception as exc:
                problems.append(f"{path}: {exc.__class__.__name__}: {exc}")
                log.warning("cannot load plugin file %s: %s", path, exc)
    return MethodRegistry(found, problems)
