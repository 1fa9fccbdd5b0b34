"""``harness-replay``: record, check (the PR gate), review, verify, keygen, provider-sim.

Exit codes: 0 all good; 1 a regression, nondeterminism, bad signature or stray golden;
2 usage or input error (one line on stderr).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from harness.cli_errors import OneLineErrorGroup
from replay.errors import ReplayError
from replay.store import GoldenStore, ci_mode

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class ReplayGroup(OneLineErrorGroup):
    """Every error becomes one line on stderr and exit 2, the same style as ``harness``."""

    def deliberate_message(self, exc: Exception) -> str | None:
        if isinstance(exc, ReplayError):
            return str(exc)
        return super().deliberate_message(exc)


root_option = click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Project root holding goldens/ and cassettes/.",
)


@click.group(cls=ReplayGroup)
@click.version_option(package_name="harness-replay")
def main() -> None:
    """Record, replay and review golden traces of the AI harness.

    Exit codes: 0 all good; 1 a regression, nondeterminism, bad signature or stray golden;
    2 usage or input error (one line on stderr).
    """
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
    default=None,
    help="Strays and pending .new files: reject (default), warn or delete; an explicit "
    "`reject` also fails on cassette interactions replay never used (a warning otherwise).",
)
@click.option("--junit-xml", type=click.Path(dir_okay=False, path_type=Path), help="Write a JUnit report.")
@click.option("--markdown", type=click.Path(dir_okay=False, path_type=Path), help="Write a PR comment.")
@click.option("--json", "as_json", is_flag=True, help="Print the machine-readable report instead of text.")
@click.option("--color/--no-color", default=None, help="Colour the text report (default: when a TTY).")
@click.option(
    "--html",
    "html_out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write one self-contained review page (offline; j/k jump between differences).",
)
@click.option(
    "--allow-demo-key",
    is_flag=True,
    help="Accept signatures by a key whose private half is in the repository (the demo only).",
)
@click.option("--quiet", is_flag=True, help="No progress; print only failing scenarios and the summary.")
@click.option("--shard", help="Replay only shard K of N (e.g. 2/4), for a CI matrix; see merge-reports.")
@click.option("-j", "--jobs", default=1, show_default=True, type=click.IntRange(min=1), help="Processes.")
def check(
    root: Path,
    names: tuple[str, ...],
    repeat: int,
    unreferenced: str | None,
    junit_xml: Path | None,
    markdown: Path | None,
    as_json: bool,
    color: bool | None,
    html_out: Path | None,
    allow_demo_key: bool,
    quiet: bool,
    shard: str | None,
    jobs: int,
) -> None:
    """Replay goldens offline and diff them (the PR gate). Writes trace.json.new on mismatch (never in CI)."""
    from replay.gate import Unreferenced
    from replay.gate import check as run_check
    from replay.progress import progress
    from replay.report import render_json, render_junit_xml, render_markdown, render_text

    for option, path in (("--junit-xml", junit_xml), ("--markdown", markdown)):
        if path is not None and not path.resolve().parent.is_dir():
            # Checked before replaying: a typo must not cost a full run and then lose the report.
            raise click.BadParameter(
                f"folder {path.parent} does not exist; create it first", param_hint=option
            )
    store = GoldenStore(root)
    names = _select_shard(store, names, shard)
    with progress(len(names) or len(store.scenario_names()), "replaying", quiet=quiet) as advance:
        outcome = run_check(
            store,
            names,
            repeat=repeat,
            ci=ci_mode(),
            unreferenced=Unreferenced(unreferenced) if unreferenced else None,
            allow_demo_key=allow_demo_key,
            on_scenario=advance,
            jobs=jobs,
        )
    results = list(outcome.results)
    if junit_xml:
        junit_xml.write_text(render_junit_xml(results), encoding="utf-8")
    if markdown:
        from replay.pr_summary import cap_markdown

        markdown.write_text(cap_markdown(render_markdown(results), results), encoding="utf-8")
    if html_out:
        from replay.html_report import render_html

        html_out.write_text(render_html(results, store), encoding="utf-8")
    for warning in outcome.warnings:
        click.echo(f"warning: {warning}", err=True)
    if allow_demo_key:
        from replay.trust import demo_key_warning

        demo = demo_key_warning(store)
        if demo:
            click.echo(f"warning: {demo}", err=True)
    if as_json:
        click.echo(render_json(results))
    elif quiet:
        from replay.report import summary_line

        failing = [r for r in results if r.status.failed]
        paint = sys.stdout.isatty() if color is None else color
        # Each failing block without render_text's own summary line; one summary of everything last.
        blocks = render_text(failing, color=paint).split("\n", 2)[2] if failing else ""
        click.echo(blocks + summary_line(results))
    else:
        click.echo(render_text(results, color=sys.stdout.isatty() if color is None else color))
        click.echo(_signature_line(results))
    sys.exit(EXIT_OK if outcome.ok else EXIT_FAILED)


class _Progress:
    """``[3/13] scenario`` on one rewritten stderr line, on a terminal only (quiet in CI and pipes)."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled, self._width = enabled, 0

    def show(self, index: int, total: int, name: str, *, verb: str = "replaying") -> None:
        if self.enabled:
            text = f"[{index}/{total}] {verb} {name}"
            click.echo("\r" + text.ljust(self._width), err=True, nl=False)
            self._width = len(text)

    def clear(self) -> None:
        if self.enabled and self._width:
            click.echo("\r" + " " * self._width + "\r", err=True, nl=False)
            self._width = 0


def _signature_line(results: list[Any]) -> str:
    """The closing line: how many goldens had their signatures and approvals verified."""
    from replay._report_overview import had_cassette_miss
    from replay.results import ScenarioStatus

    scenarios = [r for r in results if r.name != "(goldens)"]
    bad = [r.name for r in scenarios if "signature check failed" in r.message]
    # gate.check_scenario reads trace.json before the signature check: an ERROR about the trace
    # itself (missing, not JSON, old format) never reached the check.
    verified = [
        r
        for r in scenarios
        if r.status is not ScenarioStatus.ERROR
        or had_cassette_miss(r)
        or ("trace.json" not in r.message and r.name not in bad)
    ]
    unchecked = [r.name for r in scenarios if r not in verified and r.name not in bad]
    line = f"signatures: {len(verified)} of {len(scenarios)} goldens verified against goldens/keys/"
    notes = [f"failed: {', '.join(bad)}"] * bool(bad) + [f"not reached: {', '.join(unchecked)}"] * bool(
        unchecked
    )
    return line + (f" ({'; '.join(notes)})" if notes else "")
@main.command("merge-reports")
@click.argument(
    "reports", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--junit-xml", type=click.Path(dir_okay=False, path_type=Path), help="Write a JUnit report.")
@click.option("--markdown", type=click.Path(dir_okay=False, path_type=Path), help="Write a PR comment.")
@click.option("--json", "as_json", is_flag=True, help="Print the merged JSON report instead of text.")
def merge_reports(
    reports: tuple[Path, ...], junit_xml: Path | None, markdown: Path | None, as_json: bool
) -> None:
    """Combine the shards' `check --json` reports into one verdict (exit 1 if any scenario failed)."""
    from replay.report import render_json, render_junit_xml, render_markdown, render_text
    from replay.shard import merge_reports as merge
    from replay.shard import merged_ok

    results = merge(reports)
    if junit_xml:
        junit_xml.write_text(render_junit_xml(results), encoding="utf-8")
    if markdown:
        markdown.write_text(render_markdown(results), encoding="utf-8")
    click.echo(render_json(results) if as_json else render_text(results, color=False))
    sys.exit(EXIT_OK if merged_ok(results) else EXIT_FAILED)


def _select_shard(store: GoldenStore, names: tuple[str, ...], shard: str | None) -> tuple[str, ...]:
    """The scenarios of shard ``K/N`` (all of ``names`` without ``--shard``); exit 0 on an empty shard."""
    if shard is None:
        return names
    from replay.shard import parse_shard, shard_names

    index, count = parse_shard(shard)
    names = tuple(shard_names(store, names or tuple(store.scenario_names()), index=index, count=count))
    if not names:
        click.echo(f"shard {index}/{count}: no scenarios (fewer scenarios than shards)", err=True)
        sys.exit(EXIT_OK)
    return names


@main.command()
@root_option
@click.argument("names", nargs=-1)
@click.option(
    "--all", "all_", is_flag=True, help="Re-record every scenario (unchanged ones are not re-signed)."
)
@click.option("--reason", default="recorded", show_default=True, help="Why (kept in approvals.jsonl).")
@click.option("--approver", help="Who (default: HARNESS_APPROVER, git user.name, OS user).")
@click.option(
    "--accept",
    "accept_now",
    is_flag=True,
    help="Accept and sign what was recorded right away (the diff is printed first).",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option(
    "--mode",
    type=click.Choice(["once", "new_episodes", "all"]),
    default="all",
    show_default=True,
    help="vcrpy's record modes: once (only without a cassette), new_episodes (keep answers, add new), "
    "all (re-record everything); replay is `check`.",
)
@click.option(
    "--endpoint",
    metavar="URL",
    help="Record against this OpenAI-compatible base URL (key from --api-key-env) instead of the "
    "provider simulator. Never taken from the environment.",
)
@click.option(
    "--api-key-env",
    default="OPENAI_API_KEY",
    show_default=True,
    metavar="VAR",
    help="Environment variable holding the API key for --endpoint.",
)
def record(
    root: Path,
    names: tuple[str, ...],
    all_: bool,
    reason: str,
    approver: str | None,
    accept_now: bool,
    quiet: bool,
    mode: str,
    endpoint: str | None,
    api_key_env: str,
) -> None:
    """Record into trace.json.new + cassette .new for review (`review`/`accept`); never straight in."""
    from replay.cli_review import record_command

    record_command(
        GoldenStore(root),
        names,
        all_=all_,
        reason=reason,
        approver=approver,
        accept_now=accept_now,
        quiet=quiet,
        mode=mode,
        endpoint=_record_endpoint(endpoint, api_key_env),
    )


def _record_endpoint(endpoint: str | None, api_key_env: str) -> tuple[str, str] | None:
    import os

    if endpoint is None:
        return None
    if not endpoint.startswith(("http://", "https://")):
        raise click.BadParameter(f"{endpoint!r} is not an http(s) URL", param_hint="--endpoint")
    key = os.environ.get(api_key_env, "")
    if not key:
        raise click.BadParameter(f"set {api_key_env} to the API key for {endpoint}", param_hint="--endpoint")
    return endpoint, key


@main.command()
@root_option
@click.option(
    "--approver",
    help="Who is reviewing (default: HARNESS_APPROVER, the signing key's name, git user.name, OS user).",
)
@click.option("--reason", help="Use this reason for every accept instead of asking.")
def review(root: Path, approver: str | None, reason: str | None) -> None:
    """Review pending updates like `cargo insta review`: a accept, r reject, s skip, A/R/S for all."""
    from replay._cli_keys import LazySigner, default_approver
    from replay.cli_review import freshness_hook
    from replay.review import REASON_PROMPT, interactive_review
    from replay.signing import DEFAULT_REASON

    store = GoldenStore(root)
    summary = interactive_review(
        store,
        before_accept=freshness_hook(store),
        signer=LazySigner(),
        approver=default_approver(approver, store),
        isatty=sys.stdin.isatty(),
        input_fn=_SingleKeyInput(reason_follows_accept=not reason) if sys.stdin.isatty() else input,
        reason_prompt=None if reason else REASON_PROMPT,
        default_reason=reason or DEFAULT_REASON,
    )
    # interactive_review already printed each decision and the summary line.
    sys.exit(EXIT_FAILED if summary.failed else EXIT_OK)


class _SingleKeyInput:
    """On a terminal, review answers are one key (no Enter); the accept reason is still a line."""

    def __init__(self, *, reason_follows_accept: bool) -> None:
        self._reason_follows_accept = reason_follows_accept
        self._line_next = False

    def __call__(self, prompt: str) -> str:
        if self._line_next:
            self._line_next = False
            return input(prompt)
        key = click.getchar()  # Ctrl-C raises KeyboardInterrupt, Ctrl-D EOFError, as input() does
        click.echo(key if key.isprintable() else "")
        self._line_next = self._reason_follows_accept and key in {"a", "A"}
        return key


@main.command()
@root_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable list (name, counts, sections).")
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
@click.option("--all", "all_", is_flag=True, help="Accept every pending update.")
@click.option("--reason", default="reviewed", show_default=True, help="Why (kept in approvals.jsonl).")
@click.option(
    "--approver", help="Who (default: HARNESS_APPROVER, the signing key's name, git user.name, OS user)."
)
def accept(root: Path, names: tuple[str, ...], all_: bool, reason: str, approver: str | None) -> None:
    """Accept pending updates: promote, re-sign, append a signed approval (needs HARNESS_SIGNING_KEY)."""
    from replay._cli_keys import default_approver
    from replay.review import accept as accept_one
    from replay.review import list_pending
    from replay.signing import signer_from_env, utc_now

    store = GoldenStore(root)
    selected = list(names) or ([p.name for p in list_pending(store)] if all_ else [])
    if not selected:
        raise click.UsageError("name at least one scenario, or pass --all")
    from replay.cli_review import freshness_hook

    signer, who = signer_from_env(), default_approver(approver, store)
    fresh, refused = freshness_hook(store), []
    for name in selected:
        proceed, shown = fresh(name)
        if shown:
            click.echo(shown)
        if not proceed:
            refused.append(name)
            continue
        entry = accept_one(store, name, signer=signer, approver=who, reason=reason, at=utc_now())
        click.echo(f"accepted {name}: {entry['old_trace_sha256']} -> {entry['new_trace_sha256']}")
    if refused:
        sys.exit(EXIT_FAILED)


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
@click.option("--json", "as_json", is_flag=True, help="Machine-readable results instead of the table.")
@click.option(
    "--allow-demo-key",
    is_flag=True,
    help="Accept signatures by a key whose private half is in the repository (the demo only).",
)
@click.option(
    "--since",
    "since",
    multiple=True,
    metavar="REF|SHA256",
    help="Prove every approvals chain only grew since this git ref or approval-line digest.",
)
def verify(
    root: Path, trusted_keys: Path | None, as_json: bool, allow_demo_key: bool, since: tuple[str, ...]
) -> None:
    """The auditor's command: trust policy, signatures, hash chains, approvals; public keys only."""
    from harness.integrity import TrustedKeys
    from replay.signing import render_verify_table, verify_json
    from replay.trust import DEMO_KEY_PROBLEM, demo_key_warning, since_problems, verify_under_policy

    store = GoldenStore(root)
    pinned = TrustedKeys.load_dir(trusted_keys) if trusted_keys else None
    results = verify_under_policy(store, allow_demo_key=allow_demo_key, pinned=pinned)
    rollback = since_problems(store, since)
    ok = bool(results) and all(r.ok for r in results) and not rollback
    problems = [p for r in results for p in r.problems]
    if not as_json and problems and all(DEMO_KEY_PROBLEM in p for p in problems):
        demo = sum(not r.ok for r in results)
        click.echo(
            f"error: {demo} of {len(results)} signed files (goldens and the trust policy) are "
            "signed only by a key whose private half is in the repository (the demo key): anyone "
            "can forge them; re-sign with your own key, or pass --allow-demo-key to run the demo",
            err=True,
        )
        sys.exit(EXIT_FAILED)
    if allow_demo_key and (demo_warning := demo_key_warning(store)):
        click.echo(f"warning: {demo_warning}", err=True)
    click.echo(verify_json(results) if as_json else render_verify_table(results), nl=False)
    for problem in rollback:
        click.echo(f"rollback: {problem}", err=not as_json)
    if since and not rollback:
        click.echo(f"approvals only grew since {', '.join(since)}")
    sys.exit(EXIT_OK if ok else EXIT_FAILED)


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

    for folder in {private_key.parent, (public_out or private_key).parent}:
        # A new folder for a private key is the owner's alone (0700), like ~/.ssh.
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if private_key.exists():
        raise click.BadParameter(
            f"{private_key} already exists; choose another path", param_hint="PRIVATE_KEY"
        )
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


from replay.cli_trust import register as _register_trust_commands  # noqa: E402

_register_trust_commands(main)

if __name__ == "__main__":  # pragma: no cover
    main()


# `coverage` and `mutate` (issue #14) live in their own module; registered here.
from replay._catching_cli import coverage as _coverage_command  # noqa: E402
from replay._catching_cli import mutate as _mutate_command  # noqa: E402

main.add_command(_coverage_command)
main.add_command(_mutate_command)
