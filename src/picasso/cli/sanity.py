"""``picasso sanity``: does a method's map depend on the model's learned weights?"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..core.errors import PicassoError
from ..plugins import MethodRegistry
from .common import expand_images, fail, method_option, model_option
from .settings_options import add_setting_options, given_settings


def sanity_command(registry: MethodRegistry) -> click.Command:
    @click.command("sanity")
    @click.argument("image")
    @model_option("demo:tanks-fair")
    @method_option(registry, "saliency")
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
    @click.option(
        "--out",
        "-o",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Also write <stem>.sanity.json and <stem>.sanity.png (the map after each "
        "stage) into this folder.",
    )
    def sanity_cmd(
        image: str,
        model_ref: str,
        method: str,
        target: int | None,
        stages: int,
        threshold: float,
        out: Path | None,
        **raw_settings: Any,
    ) -> None:
        """Cascading randomisation check (Adebayo et al. 2018) of a method on IMAGE, with
        the method's settings as for `picasso explain`."""
        from ..models import load_model
        from ..requests import SanityRequest, check
        from ..sanity import sanity_check

        try:
            request = SanityRequest(
                method=method,
                settings=given_settings(raw_settings),
                target=target,
                stages=stages,
                threshold=threshold,
            )
            paths = expand_images((image,))
            model = load_model(model_ref)
            result = sanity_check(model, paths[0], check(request, model, registry))
        except PicassoError as exc:
            fail(str(exc))
        click.echo(f"{result.method} on {model.info.name}, class {result.label} ({result.target}):")
        for step in result.steps:
            rho = (
                "map became constant"
                if step["spearman"] is None
                else (f"Spearman {step['spearman']:+.3f} ({step['note']} the trained map)")
            )
            click.echo(
                f"  {step['layers_randomized']:3d} layers randomised (down to "
                f"{step['down_to']}): {rho}"
            )
        click.echo(
            f"verdict: {result.verdict} (threshold {result.threshold}): {result.explanation}"
        )
        if out is not None:
            written = result.save(out, stem=paths[0].stem)
            click.echo(f"-> {written['png']}")

    add_setting_options(sanity_cmd, registry)

    return sanity_cmd
