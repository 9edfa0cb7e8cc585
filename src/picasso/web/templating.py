"""The pages' Jinja2 environment (autoescaped, plugins' result templates included) and
the helpers that render a page or an error page."""

from __future__ import annotations

import datetime as dt
import inspect
from http import HTTPStatus
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from .._version import __version__
from ..core.model import Model
from ..plugins import MethodRegistry

TEMPLATES = Path(__file__).parent / "templates"


def make_templates(registry: MethodRegistry) -> Jinja2Templates:
    """The app's templates, plus ``method/<name>.html`` for every method that ships its
    own result template (read from next to the file that defines the method)."""

    def method_template(name: str) -> tuple[str, str, Any] | None:
        if not name.startswith("method/") or not name.endswith(".html"):
            return None
        cls = registry.get(name.removeprefix("method/").removesuffix(".html"))
        if cls is None or not cls.template:
            return None
        path = Path(inspect.getfile(cls)).parent / cls.template
        if not path.is_file():
            return None
        mtime = path.stat().st_mtime
        return path.read_text(encoding="utf-8"), str(path), lambda: path.stat().st_mtime == mtime

    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [jinja2.FileSystemLoader(TEMPLATES), jinja2.FunctionLoader(method_template)]
        ),
        autoescape=True,  # every template, plugins' included
        undefined=jinja2.ChainableUndefined,
    )
    env.filters["when"] = lambda t: dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S")
    env.globals["version"] = __version__
    return Jinja2Templates(env=env)


def checkpoint(model: Model) -> dict[str, str] | None:
    """The model's file name and modification time, for the header."""
    if not model.info.path:
        return None
    path = Path(model.info.path)
    try:
        mtime = dt.datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
    except OSError:
        mtime = "unknown"
    return {"name": path.name, "mtime": mtime}  # never the server's path


def render(
    request: Request, template: str, status: int = 200, model: str | None = None, **context: Any
) -> HTMLResponse:
    """A page, with the header's model switcher and the current model's checkpoint."""
    services = request.app.state.services
    models = services.models
    current = models.get(model) if model else None
    if current is None and models and model is None:
        current = next(iter(models.values()))
    context.update(
        models=list(models),
        current=current,
        checkpoint=checkpoint(current) if current else None,
    )
    response: HTMLResponse = services.templates.TemplateResponse(
        request, template, context, status_code=status
    )
    return response


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    return render(request, "error.html", status, error=message, code=status, reason=reason)
