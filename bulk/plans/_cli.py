"""``--plan-out PLAN`` on the pipeline commands: a dry run that writes its plan."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bulk._errors import ConfigError
from bulk._journal import Change
from bulk._report import check_folder
from bulk.engine import Engine, Plan
from bulk.plans._format import check_plan_path, summary_path
from bulk.plans._sight import PlanSight
from bulk.plans._write import write_plan

if TYPE_CHECKING:
    from bulk._jobvalues import JobSpec


def plan_out_option() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--plan-out",
        type=click.Path(dir_okay=False, path_type=Path),
        metavar="PLAN",
        help="Validate and plan (reads only, as --dry-run), write the plan to PLAN (JSON, with "
        "a digest) and its summary beside it (PLAN's suffix replaced by .md), send nothing. "
        "'bulk execute PLAN' later sends exactly that plan.",
    )


def plan_out_hooks(spec: JobSpec, plan_out: Path | None) -> dict[str, Any] | None:
    """With ``--plan-out``: the run becomes a dry run whose planning writes the plan."""
    if plan_out is None:
        return None
    check_plan_path(plan_out)
    check_folder(plan_out, "--plan-out")
    for other in (spec.input, spec.campaigns, spec.accounts):
        if other is not None and plan_out.absolute() == other.absolute():
            raise ConfigError(f"--plan-out {plan_out} is the run's input {other}: give another")
    spec.dry_run = True

    def written(sight: PlanSight) -> None:
        document = write_plan(plan_out, sight)
        click.echo(
            f"Plan written: {plan_out} ({len(document['rows'])} rows, "
            f"{document['digest']}); summary: {summary_path(plan_out)}. Nothing was sent.",
            err=True,
        )

    def observe(engine: Engine, plan: Plan, changes: list[Change]) -> list[Change]:
        return changes  # a review that changes nothing: planning keeps what it observed

    return {"on_planned": written, "on_review": observe}
