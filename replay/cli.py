"""``harness-replay``: record, check (the PR gate), review, verify, keygen, provider-sim.

Exit codes: 0 all good; 1 a regression, nondeterminism, bad signature or stray golden;
2 usage or input error (one line on stderr).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from replay.errors import ReplayError
from replay.store import GoldenStore, ci_mode

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class ReplayGroup(click.Group):
    """Every deliberate error becomes one line and exit 2; never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        from harness.errors import HarnessError

        try:
            return super().invoke(ctx)
        except (ReplayError, HarnessError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_USAGE)


root_option = click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Project root holding goldens/ and cassettes/.",
)


@click.group(cls=ReplayGroup)
def main() -> None:
    """Record, replay and review golden traces of the AI harness."""
    from harness.observability import configure_logging

    configure_logging(stream=sys.stderr, level="ERROR")  # the report is the output; logs only on errors


@main.command()
@root_option
@click.argument("names", nargs=-1)
@click.option(
    "--repeat",
    type=click.IntRange(1, 50),
    default=1,
    show_default=True,
    help="Replay each scenario N times in fresh DBs; differences are nondeterminism.",
)
@click.option(
    "--unreferenced",
    type=click.Choice(["reject", "warn", "delete"]),
    default="reject",
    show_default=True,
    help="What to do with stray goldens/cassettes and pending .new files.",
)
@click.option("--junit-xml", type=click.Path(dir_okay=False, path_type=Path), help="Write a JUnit report.")
@click.option("--markdown", type=click.Path(dir_okay=False, path_type=Path), help="Write a PR comment.")
@click.option("--json", "as_json", is_flag=True, help="Print the machine-readable report instead of text.")
@click.option("--color/--no-color", default=None, help="Colour the text report (default: when a TTY).")
def check(
    root: Path,
    names: tuple[str, ...],
    repeat: int,
    unreferenced: str,
    junit_xml: Path | None,
    markdown: Path | None,
    as_json: bool,
    color: bool | None,
) -> None:
    """Replay goldens offline and diff them (the PR gate). Writes trace.json.new on mismatch (never in CI)."""
    from replay.gate import Unreferenced
    from replay.gate import check as run_check
    from replay.report import render_json, render_junit_xml, render_markdown, render_text

    outcome = run_check(
        GoldenStore(root), names, repeat=repeat, ci=ci_mode(), unreferenced=Unreferenced(unreferenced)
    )
    results = list(outcome.results)
    if junit_xml:
        junit_xml.write_text(render_junit_xml(results), encoding="utf-8")
    if markdown:
        markdown.write_text(render_markdown(results), encoding="utf-8")
    for warning in outcome.warnings:
        click.echo(f"warning: {warning}", err=True)
    if as_json:
        click.echo(render_json(results))
    else:
        click.echo(render_text(results, color=sys.stdout.isatty() if color is None else color))
    sys.exit(EXIT_OK if outcome.ok else EXIT_FAILED)


@main.command()
@root_option
@click.argument("names", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Re-record every scenario.")
@click.option("--reason", default="recorded", show_default=True, help="Why (kept in approvals.jsonl).")
@click.option("--approver", help="Who (default: HARNESS_APPROVER, git user.name, OS user).")
def record(root: Path, names: tuple[str, ...], all_: bool, reason: str, approver: str | None) -> None:
    """Re-golden: re-record cassette, trace.json and audit.jsonl together, then sign (HARNESS_SIGNING_KEY)."""
    from harness.canonical import sha256_hex
    from replay.gate import record as record_one
    from replay.signing import append_approval, resolve_approver, sign_golden, signer_from_env, utc_now

    store = GoldenStore(root)
    if ci_mode():
        raise ReplayError("CI=true: recording writes goldens, which CI never does")
    selected = list(names) or (store.scenario_names() if all_ else [])
    if not selected:
        raise click.UsageError("name at least one scenario, or pass --all")
    signer, who = signer_from_env(), resolve_approver(approver)
    with tempfile.TemporaryDirectory(prefix="harness-record-") as tmp:
        for name in selected:
            old = store.read_trace_bytes(name)
            result = record_one(store, name, workroot=Path(tmp))
            sign_golden(store, name, signer=signer)
            append_approval(
                store,
                name,
                signer=signer,
                approver=who,
                reason=reason,
                old_trace_sha256=sha256_hex(old) if old is not None else None,
                at=utc_now(),
            )
            click.echo(
                f"recorded {name}: {len(result.trace['prompts'])} model call(s), "
                f"{len(result.audit)} audit entries, final {result.trace['final']['runs']}"
            )


@main.command()
@root_option
@click.option("--approver", help="Who is reviewing (default: HARNESS_APPROVER, git user.name, OS user).")
@click.option("--reason", help="Use this reason for every accept instead of asking.")
def review(root: Path, approver: str | None, reason: str | None) -> None:
    """Review pending updates like `cargo insta review`: a accept, r reject, s skip, A/R/S for all."""
    from replay.review import REASON_PROMPT, interactive_review
    from replay.signing import DEFAULT_REASON, resolve_approver, signer_from_env

    summary = interactive_review(
        GoldenStore(root),
        signer=signer_from_env(),
        approver=resolve_approver(approver),
        isatty=sys.stdin.isatty(),
        reason_prompt=None if reason else REASON_PROMPT,
        default_reason=reason or DEFAULT_REASON,
    )
    # interactive_review already printed each decision and the summary line.
    sys.exit(EXIT_FAILED if summary.failed else EXIT_OK)


@main.command()
@root_option
@click.option("--json", "as_json", is_flag=True)
def pending(root: Path, as_json: bool) -> None:
    """List scenarios with pending (.new) updates."""
    import json

    from replay.review import list_pending

    items = list_pending(GoldenStore(root))
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "name": p.name,
                        "structural": len(p.diff.structural),
                        "content": len(p.diff.content),
                        "sections": list(p.diff.sections),
                        "cassette": p.has_cassette_update,
                    }
                    for p in items
                ],
                indent=2,
            )
        )
    else:
        for p in items:
            click.echo(f"{p.name}: {len(p.diff.differences)} difference(s) in {', '.join(p.diff.sections)}")
        if not items:
            click.echo("no pending updates")


@main.command()
@root_option
@click.argument("names", nargs=-1)
@click.option("--all", "all_", is_flag=True)
@click.option("--reason", default="reviewed", show_default=True)
@click.option("--approver")
def accept(root: Path, names: tuple[str, ...], all_: bool, reason: str, approver: str | None) -> None:
    """Accept pending updates: promote, re-sign, append a signed approval."""
    from replay.review import accept as accept_one
    from replay.review import list_pending
    from replay.signing import resolve_approver, signer_from_env, utc_now

    store = GoldenStore(root)
    selected = list(names) or ([p.name for p in list_pending(store)] if all_ else [])
    if not selected:
        raise click.UsageError("name at least one scenario, or pass --all")
    signer, who = signer_from_env(), resolve_approver(approver)
    for name in selected:
        entry = accept_one(store, name, signer=signer, approver=who, reason=reason, at=utc_now())
        click.echo(f"accepted {name}: {entry['old_trace_sha256']} -> {entry['new_trace_sha256']}")


@main.command()
@root_option
@click.argument("names", nargs=-1, required=True)
def reject(root: Path, names: tuple[str, ...]) -> None:
    """Reject pending updates (delete the .new files)."""
    from replay.review import reject as reject_one

    store = GoldenStore(root)
    for name in names:
        reject_one(store, name)
        click.echo(f"rejected {name}")


@main.command()
@root_option
@click.option(
    "--trusted-keys",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Directory of *.pub.json keys to trust (default: goldens/keys).",
)
@click.option("--json", "as_json", is_flag=True)
def verify(root: Path, trusted_keys: Path | None, as_json: bool) -> None:
    """The auditor's command: signatures, hash chains, approvals; public keys only."""
    from harness.integrity import TrustedKeys
    from replay.signing import load_trusted_keys, render_verify_table, verify_all, verify_json

    store = GoldenStore(root)
    trusted = TrustedKeys.load_dir(trusted_keys) if trusted_keys else load_trusted_keys(store)
    results = verify_all(store, trusted)
    click.echo(verify_json(results) if as_json else render_verify_table(results))
    sys.exit(EXIT_OK if results and all(r.ok for r in results) else EXIT_FAILED)


@main.command()
@click.argument("private_key", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="Whose key this is (shown to auditors).")
@click.option(
    "--public-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the public key (default: next to the private key, .pub.json).",
)
def keygen(private_key: Path, name: str, public_out: Path | None) -> None:
    """Make an Ed25519 signing key (0600) and its public key file for goldens/keys/."""
    from harness.integrity import Ed25519Signer, write_private_key_pem, write_public_key

    signer = Ed25519Signer.generate()
    write_private_key_pem(private_key, signer.private_key)
    out = public_out or private_key.with_suffix(".pub.json")
    write_public_key(out, signer.public_record(name))
    click.echo(
        f"private key: {private_key} (keep it out of the repo; export HARNESS_SIGNING_KEY={private_key})"
    )
    click.echo(f"public key:  {out} (commit it to goldens/keys/ to be trusted), keyid {signer.keyid}")


@main.command("provider-sim", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def provider_sim(args: tuple[str, ...]) -> None:
    """Run the OpenAI-compatible provider simulator (see `python -m replay.provider_sim --help`)."""
    from replay.provider_sim import main as sim_main

    sys.exit(sim_main(list(args)))


if __name__ == "__main__":  # pragma: no cover
    main()


# `coverage` and `mutate` (issue #14) live in their own module; registered here.
from replay._catching_cli import coverage as _coverage_command  # noqa: E402
from replay._catching_cli import mutate as _mutate_command  # noqa: E402

main.add_command(_coverage_command)
main.add_command(_mutate_command)
