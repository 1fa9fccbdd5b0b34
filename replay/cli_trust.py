"""``harness-replay`` commands of the trust model (approve, trust sign, evidence) and ``show``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from replay.store import GoldenStore

root_option = click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Project root holding goldens/ and cassettes/.",
)


@click.command()
@root_option
@click.argument("names", nargs=-1, required=True)
@click.option(
    "--reason", default="co-approved", show_default=True, help="Why (kept in approvals.jsonl)."
)
@click.option("--approver", help="Who (default: HARNESS_APPROVER, git user.name, OS user).")
def approve(root: Path, names: tuple[str, ...], reason: str, approver: str | None) -> None:
    """Add your signed approval of a golden's current state (for policies needing several approvers)."""
    from harness.canonical import sha256_hex
    from replay.errors import GoldenMissing
    from replay.signing import append_approval, resolve_approver, signer_from_env, utc_now

    store = GoldenStore(root)
    signer, who = signer_from_env(), resolve_approver(approver)
    for name in names:
        current = store.read_trace_bytes(name)
        if current is None:
            raise GoldenMissing(f"scenario {name!r} has no trace.json to approve; record it first")
        entry = append_approval(
            store,
            name,
            signer=signer,
            approver=who,
            reason=reason,
            old_trace_sha256=sha256_hex(current),
            at=utc_now(),
        )
        click.echo(f"approved {name}: approval #{entry['counter']} by {who} ({signer.keyid})")


@click.group()
def trust() -> None:
    """The trust policy (goldens/TRUST.yaml) and its signatures."""


@trust.command("sign")
@root_option
def trust_sign(root: Path) -> None:
    """Sign goldens/TRUST.yaml with HARNESS_SIGNING_KEY (each required approver signs once)."""
    from replay.signing import signer_from_env
    from replay.trust import sign_policy

    count = sign_policy(GoldenStore(root), signer=signer_from_env())
    click.echo(f"signed goldens/TRUST.yaml: {count} signature(s)")


@click.command("export-evidence")
@root_option
@click.argument("name")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the evidence bundle (JSON).",
)
def export_evidence(root: Path, name: str, output: Path) -> None:
    """Write one self-contained, signed evidence bundle (DSSE + in-toto Statement v1) for NAME."""
    from replay.evidence import build_bundle, write_bundle
    from replay.signing import signer_from_env

    bundle = build_bundle(GoldenStore(root), name, signer=signer_from_env())
    write_bundle(output, bundle)
    click.echo(
        f"wrote {output}: {len(bundle['approvals'])} approval(s), {len(bundle['public_keys'])} key(s)"
    )


@click.command("verify-evidence")
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--trusted-keys",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Only accept signers whose *.pub.json is in this directory (default: keys in the bundle).",
)
def verify_evidence(bundle: Path, trusted_keys: Path | None) -> None:
    """Check an evidence bundle offline: envelope signature, subjects, approvals chain."""
    from replay.evidence import verify_bundle_file

    report = verify_bundle_file(bundle, trusted_keys=trusted_keys)
    for line in report.lines:
        click.echo(line)
    if report.problems:
        for problem in report.problems:
            click.echo(f"problem: {problem}", err=True)
        sys.exit(1)


@click.command()
@root_option
@click.argument("name")
@click.option(
    "--html", "html_out", type=click.Path(dir_okay=False, path_type=Path), help="Write a page instead."
)
@click.option("--color/--no-color", default=None, help="Colour (default: when a TTY).")
def show(root: Path, name: str, html_out: Path | None, color: bool | None) -> None:
    """One golden as a timeline: API calls, transitions, model calls, tool calls, approvals, artifacts."""
    from replay.show import render_show_html, render_show_terminal

    store = GoldenStore(root)
    if name not in store.scenario_names():
        from replay.errors import GoldenMissing

        raise GoldenMissing(f"no scenario named {name} (known: {', '.join(store.scenario_names())})")
    if html_out is not None:
        html_out.write_text(render_show_html(store, name), encoding="utf-8")
        click.echo(f"wrote {html_out}")
        return
    click.echo(
        render_show_terminal(store, name, color=sys.stdout.isatty() if color is None else color),
        nl=False,
    )


@click.command()
@root_option
@click.argument("run_id")
@click.option("--name", required=True, help="Name of the new golden (a folder under goldens/).")
@click.option(
    "--database-url",
    help="The harness database holding the run (default: the harness settings, HARNESS_DATABASE_URL).",
)
@click.option(
    "--files-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Tenant files folder of that harness (default: the harness settings).",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def capture(
    root: Path, run_id: str, name: str, database_url: str | None, files_dir: Path | None, quiet: bool
) -> None:
    """Turn a finished run into a scenario, record it and propose it for review."""
    from replay.capture import capture_scenario, write_captured
    from replay.cli_review import record_command

    if database_url is None or files_dir is None:
        from harness.settings import Settings

        settings = Settings()
        database_url = database_url or settings.resolved_database_url
        files_dir = files_dir or settings.tenant_files_dir
    store = GoldenStore(root)
    scenario = capture_scenario(database_url, run_id, files_dir=files_dir)
    written = write_captured(store, name, scenario)
    click.echo(f"captured run {run_id} as {store.display(written)}")
    record_command(
        store, [name], all_=False, reason="captured", approver=None, accept_now=False, quiet=quiet
    )


def register(group: click.Group) -> None:
    """Add these commands to ``harness-replay``."""
    for command in (approve, trust, export_evidence, verify_evidence, show, capture):
        group.add_command(command)
