"""``picasso sanity``: does a method's map depend on the model's learned weights?"""

from __future__ import annotations

import click

from ..core.errors import PicassoError
from ..plugins import MethodRegistry
from .common import expand_images, fail, method_option, model_option


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
    def sanity_cmd(
        image: str,
        model_ref: str,
        method: str,
        target: int | None,
        stages: int,
        threshold: float,
    ) -> None:
        """Cascading randomisation check (Adebayo et al. 2018) of a method on IMAGE."""
        from ..models import load_model
        from ..requests import SanityRequest, check
        from ..sanity import sanity_check

        try:
            request = SanityRequest(
                method=method, target=target, stages=stages, threshold=threshold
            )
            paths = expand_images((image,))
            model = load_model(model_ref)
            result = sanity_check(model, paths[0], check(request, model, registry))
        except PicassoError as exc:
            fail(str(exc))
        click.echo(f"{result.method} on {model.info.name}, target {result.target}:")
        for step in result.steps:
            click.echo(
                f"  {step['layers_randomized']:3d} layers randomised (down to "
                f"{step['down_to']}): Spearman {step['spearman']:+.3f}"
            )
        click.echo(f"verdict: {result.verdict} (threshold {result.threshold})")

    return sanity_cmd
