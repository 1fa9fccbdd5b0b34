"""The ``coverage`` and ``mutate`` commands of ``harness-replay``: how much the goldens catch.

Kept apart from :mod:`replay.cli` so that module only registers them (one small hunk).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from replay.errors import ReplayError

_root = click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Project root holding harness/, goldens/ and cassettes/.",
)


@click.command("coverage")
@_root
@click.argument("names", nargs=-1)
@click.option(
    "--html", type=click.Path(file_okay=False, path_type=Path), help="Write a browsable HTML report here."
)
@click.option(
    "--diff", "ref", metavar="REF", help="Only changed lines of harness/ since the merge base with REF."
)
@click.option("--guardrails", is_flag=True, help="Show only the guardrail modules (and their figure).")
@click.option("--summary", is_flag=True, help="Print only the guardrail figure line (for `make replay`).")
def coverage(
    root: Path, names: tuple[str, ...], html: Path | None, ref: str | None, guardrails: bool, summary: bool
) -> None:
    """Branch coverage of harness/ by the goldens alone; --diff REF gates changed guardrail lines.

    Exit 1 with --diff when a changed guardrail line (policy, redaction, guard, routing, sandbox,
    state machine, approval gate, audit) is exercised by no golden.
    """
    from replay.golden_coverage import changed_lines, diff_gaps, render_table, run_coverage

    changed = changed_lines(root, ref) if ref else None
    if changed is not None and not any(changed.values()) and not (summary or html):
        click.echo(f"no line of harness/ changed since {ref}: nothing for the goldens to cover")
        return
    report = run_coverage(root, names, html=html)
    if summary:
        branch, combined = report.totals(guardrail_only=True)
        click.echo(
            f"golden coverage of guardrail modules: {branch:.1f}% branches ({combined:.1f}% lines+branches)"
        )
    elif changed is None:
        click.echo(render_table(report, guardrail_only=guardrails))
    if html:
        click.echo(f"HTML report: {html / 'index.html'}")
    if changed is None:
        return
    gaps = diff_gaps(report, changed)
    if not gaps:
        click.echo(f"every changed line of harness/ since {ref} is exercised by a golden")
        return
    for gap in gaps:
        kind = "GUARDRAIL" if gap.guardrail else "note"
        click.echo(
            f"{kind}: {gap.path}: lines {', '.join(map(str, gap.lines))} changed and no golden exercises them"
        )
    if any(g.guardrail for g in gaps):
        click.echo(
            "add or extend a scenario under goldens/ that takes these paths (harness-replay record NAME)"
        )
        sys.exit(1)


@click.command("mutate")
@_root
@click.argument("modules", nargs=-1)
@click.option(
    "--jobs", "-j", type=click.IntRange(1, 16), default=2, show_default=True, help="Worker processes."
)
@click.option("--limit", type=click.IntRange(1), help="At most N mutants per module (sampled evenly).")
@click.option(
    "--json",
    "as_json",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the results as JSON.",
)
def mutate(root: Path, modules: tuple[str, ...], jobs: int, limit: int | None, as_json: Path | None) -> None:
    """Mutation score of the goldens over the guardrail modules (default) or the MODULEs given."""
    from replay.mutate import render_mutation_report, run_mutation

    try:
        result = run_mutation(root, modules, jobs=jobs, limit=limit)
    except ValueError as exc:
        raise ReplayError(str(exc)) from None
    click.echo(render_mutation_report(result))
    if as_json:
        as_json.write_text(result.to_json_text(), encoding="utf-8")
