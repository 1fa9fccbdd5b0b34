"""``harness``: serve the API, run workers, manage the schema, tenants and keys, verify the audit log.

Exit codes: 0 ok, 1 the checked thing is bad (e.g. audit verification failed), 2 usage or input error.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click

from harness.cli_errors import OneLineErrorGroup


class HarnessGroup(OneLineErrorGroup):
    """Turn a HarnessError, a usage error or a bad setting into one line on stderr and exit 2."""


def _runtime() -> Any:
    from harness.runtime import build_runtime
    from harness.settings import Settings

    return build_runtime(Settings())


@click.group(cls=HarnessGroup)
@click.version_option(package_name="harness-replay")
def main() -> None:
    """The AI harness service.

    Settings come from HARNESS_* environment variables (see README). Exit codes: 0 ok,
    1 the checked thing is bad, 2 usage or input error (one line on stderr).
    """
    import logging

    from harness.observability import configure_logging

    configure_logging(stream=sys.stderr)
    # Reading the migration scripts logs alembic's plugin set-up at INFO on every start.
    logging.getLogger("alembic").setLevel(logging.WARNING)


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the schema at HARNESS_DATABASE_URL (default: SQLite under .harness/)."""
    from harness.database.migrate import head_revision, upgrade
    from harness.settings import Settings  # lazy: `--help` and `--version` stay instant

    settings = Settings()
    upgrade(settings.resolved_database_url)
    click.echo(f"database at revision {head_revision()}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="TCP port to listen on."
)
def serve(host: str, port: int) -> None:
    """Serve the HTTP API with uvicorn."""
    import uvicorn

    from harness.app import create_app
    from harness.settings import Settings

    app = create_app(Settings())
    click.echo(f"serving the API on http://{host}:{port} (docs at /docs; Ctrl-C stops)", err=True)
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)


@main.command()
@click.option(
    "--poll",
    default=0.5,
    show_default=True,
    type=click.FloatRange(min=0.01),
    help="Seconds between empty polls (at least 0.01).",
)
@click.option("--once", is_flag=True, help="Drain due jobs, then exit.")
def worker(poll: float, once: bool) -> None:
    """Claim and run jobs until SIGINT/SIGTERM."""
    from harness.database.connect import assert_migrated
    from harness.jobs.worker import Worker, drain

    rt = _runtime()
    assert_migrated(rt.engine)
    if once:
        click.echo(f"ran {drain(rt)} job(s)")
        return
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    click.echo("worker ready", err=True)
    Worker(rt).serve(stop, poll_seconds=poll)


@main.group()
def tenants() -> None:
    """Tenants and their API keys."""


KEY_SPEC_HELP = "PRINCIPAL[/LABEL]:ROLE[,ROLE]"


@tenants.command("create")
@click.argument("tenant_id")
@click.option("--name", help="Display name (default: the id).")
@click.option(
    "--key",
    "keys",
    multiple=True,
    metavar=KEY_SPEC_HELP,
    help="Issue a key to a principal (the person or service holding it), e.g. --key alice:submitter"
    " --key bob:approver --key alice/ci:submitter. Four-eyes compares principals. Repeatable.",
)
@click.option(
    "--files",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Directory copied into every run's workspace (regular files and folders only; no symlinks).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["json", "env"]),
    default="json",
    show_default=True,
    help='env: one `export NAME=token` line per key, for `eval "$(harness tenants create ...)"`.',
)
def tenants_create(
    tenant_id: str, name: str | None, keys: tuple[str, ...], files: Path | None, output_format: str
) -> None:
    """Create a tenant (and its keys and files, all or nothing); print the new keys as JSON once."""
    from harness.accounts import create_tenant_with_keys
    from harness.tenant_files import install_tenant_files, stage_tenant_files

    rt = _runtime()
    specs = [_parse_key_spec(k) for k in keys]
    staged = stage_tenant_files(files, rt.settings.tenant_files_dir, tenant_id) if files else None
    try:
        issued = create_tenant_with_keys(rt, tenant_id=tenant_id, name=name or tenant_id, keys=specs)
        if staged is not None:
            install_tenant_files(staged, rt.settings.tenant_files_dir / tenant_id)
    except BaseException:
        if staged is not None:
            import shutil

            shutil.rmtree(staged, ignore_errors=True)
        raise
    if output_format == "env":
        for spec, k in zip(specs, issued, strict=True):
            click.echo(f"export {_env_name(spec.name)}={k.token}")
        return
    click.echo(
        json.dumps(
            {
                "tenant": tenant_id,
                "keys": [
                    {
                        "name": s.name,
                        "principal": k.principal,
                        "id": k.key_id,
                        "roles": list(k.roles),
                        "token": k.token,
                    }
                    for s, k in zip(specs, issued, strict=True)
                ],
            },
            indent=2,
        )
    )


@tenants.command("add-key")
@click.argument("tenant_id")
@click.argument("spec", metavar=KEY_SPEC_HELP)
def tenants_add_key(tenant_id: str, spec: str) -> None:
    """Issue one more key to a principal, e.g. alice/laptop:approver (alice still cannot approve
    her own runs with it)."""
    from harness.accounts import issue_key

    key = _parse_key_spec(spec)
    issued = issue_key(
        _runtime(), tenant_id=tenant_id, name=key.name, roles=key.roles, principal=key.principal
    )
    click.echo(
        json.dumps(
            {
                "name": key.name,
                "principal": issued.principal,
                "id": issued.key_id,
                "roles": list(issued.roles),
                "token": issued.token,
            }
        )
    )


@tenants.command("revoke-key")
@click.argument("key_id")
def tenants_revoke_key(key_id: str) -> None:
    """Revoke a key; it is refused from the next request on."""
    from harness.accounts import revoke_key

    revoke_key(_runtime(), key_id=key_id)
    click.echo(f"revoked {key_id}")


def _env_name(key_name: str) -> str:
    """``alice`` -> ``ALICE``; anything but letters, digits and ``_`` becomes ``_``."""
    import re

    name = re.sub(r"[^A-Za-z0-9_]", "_", key_name).upper()
    return name if not name[:1].isdigit() else f"KEY_{name}"


def _parse_key_spec(spec: str) -> Any:
    """``PRINCIPAL[/LABEL]:ROLES``: the principal is explicit; the label defaults to it."""
    from harness.accounts import KeySpec, validate_principal

    who, sep, roles = spec.partition(":")
    principal, _, label = who.partition("/")
    if not sep or not principal or not roles:
        raise click.BadParameter(
            f"{spec!r}: expected {KEY_SPEC_HELP}, e.g. alice:submitter or alice/ci:submitter"
        )
    return KeySpec(
        name=label or principal,
        principal=validate_principal(principal),
        roles=[r.strip() for r in roles.split(",") if r.strip()],
    )


@main.group()
def audit() -> None:
    """The tamper-evident audit log."""


@audit.command("verify")
@click.option(
    "--trusted-keys",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Directory of *.pub.json keys that may sign checkpoints.",
)
@click.option(
    "--from-checkpoint",
    type=click.IntRange(min=1),
    metavar="N",
    help="Trust the signed checkpoint with tree_size N as the base; check from seq N on.",
)
@click.option("--require-sealed", is_flag=True, help="Fail unless signed checkpoints cover every entry.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def audit_verify(
    trusted_keys: Path | None, from_checkpoint: int | None, require_sealed: bool, as_json: bool
) -> None:
    """Recompute the hash chain (and checkpoints); name the first bad seq.

    Problems: modified, missing, reordered, truncated, inserted, bad_signature,
    inconsistent_checkpoint, root_mismatch. Exit codes: 0 ok, 1 the log is bad, 2 usage or
    input error.
    """
    from harness.audit import verify_log

    passed = [
        o for o, v in (("--from-checkpoint", from_checkpoint), ("--require-sealed", require_sealed)) if v
    ]
    if passed and trusted_keys is None:
        raise click.UsageError(
            f"{' and '.join(passed)} needs --trusted-keys DIR (the keys that sign checkpoints)"
        )
    rt = _migrated_runtime()
    report = verify_log(
        rt, trusted_dir=trusted_keys, require_sealed=require_sealed, from_checkpoint=from_checkpoint
    )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "ok": report.ok,
                    "entries": report.entries,
                    "first_bad_seq": report.first_bad_seq,
                    "problem": report.problem,
                    "message": report.message,
                    "checkpoints_verified": report.checkpoints_verified,
                    "signatures_checked": trusted_keys is not None,
                },
                indent=2,
            )
        )
    elif report.ok:
        unsigned = "" if trusted_keys else " (chain only: pass --trusted-keys to check signed checkpoints)"
        click.echo(f"ok: {report.message}{unsigned}")
    else:
        where = "" if report.first_bad_seq is None else f" at seq {report.first_bad_seq}"
        click.echo(f"FAILED{where} ({report.problem}): {report.message}")
    sys.exit(0 if report.ok else 1)


@audit.command("seal")
def audit_seal() -> None:
    """Sign a checkpoint covering the whole log with HARNESS_AUDIT_SIGNING_KEY."""
    from harness.audit import seal
    from harness.database.connect import unit_of_work

    rt = _migrated_runtime()
    with unit_of_work(rt.sessions) as session:
        row = seal(session, rt)
    if row is None:
        click.echo("the audit log is empty; nothing to seal")
    else:
        click.echo(f"sealed: signed checkpoint at tree_size {row.tree_size}, root {row.root_hash}")


@audit.command("checkpoints")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def audit_checkpoints(as_json: bool) -> None:
    """List the stored checkpoints (unverified; `harness audit verify --trusted-keys` checks them)."""
    from harness.audit import list_checkpoints
    from harness.database.connect import unit_of_work

    rt = _migrated_runtime()
    with unit_of_work(rt.sessions) as session:
        listed = list_checkpoints(session)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "tree_size": c.tree_size,
                        "root_hash": c.root_hash,
                        "created_at": c.created_at,
                        "keyids": list(c.keyids),
                    }
                    for c in listed
                ],
                indent=2,
            )
        )
        return
    if not listed:
        click.echo("no checkpoints (set HARNESS_AUDIT_SIGNING_KEY, or run `harness audit seal`)")
    for c in listed:
        click.echo(f"{c.tree_size:>10}  {c.root_hash}  {c.created_at}  {','.join(c.keyids)}")


def _migrated_runtime() -> Any:
    import logging

    from harness.database.connect import assert_migrated

    # Reading the migration scripts logs alembic's plugin set-up at INFO; an audit command
    # changes no schema, so that would only bury the one line that matters.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    rt = _runtime()
    assert_migrated(rt.engine)
    return rt


if __name__ == "__main__":  # pragma: no cover
    main()
