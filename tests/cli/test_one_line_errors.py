"""Bad input through the real CLIs: exit 2, exactly one line on stderr, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytestmark = [pytest.mark.tier1]

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]
CLOSED_PORT_URL = "postgresql://postgres@127.0.0.1:1/harness"


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    says: str  # a fragment the one line must contain
    env: dict[str, str] = field(default_factory=dict)
    must_not_say: str | None = None


HARNESS_SUBCOMMANDS = [
    ("db", "upgrade"),
    ("serve", "--port", "1"),
    ("worker",),
    ("worker", "--once"),
    ("tenants", "create", "acme", "--key", "alice:submitter"),
    ("tenants", "add-key", "acme", "bob:approver"),
    ("tenants", "revoke-key", "k_1"),
    ("audit", "verify"),
    ("audit", "seal"),
    ("audit", "checkpoints"),
]

CASES = [
    *[
        Case(f"closed-port-db:{' '.join(cmd[:2])}", ("harness", *cmd), "HARNESS_DATABASE_URL",
             env={"HARNESS_DATABASE_URL": CLOSED_PORT_URL})
        for cmd in HARNESS_SUBCOMMANDS
    ],
    Case("unparsable-db-url", ("harness", "db", "upgrade"), "is not a database URL",
         env={"HARNESS_DATABASE_URL": "not a url"}),
    Case("missing-pg-database", ("harness", "tenants", "create", "acme"),
         'database "no_such_db_fh" does not exist',
         env={"HARNESS_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/no_such_db_fh"}),
    Case("unsupported-driver", ("harness", "db", "upgrade"), "database driver",
         env={"HARNESS_DATABASE_URL": "mysql://user@127.0.0.1/db"}),
    Case("max-steps-not-int", ("harness", "db", "upgrade"), "HARNESS_MAX_STEPS='abc'",
         env={"HARNESS_MAX_STEPS": "abc"}),
    Case("rate-limit-unparsable", ("harness", "worker", "--once"), "HARNESS_RATE_LIMIT_PER_KEY",
         env={"HARNESS_RATE_LIMIT_PER_KEY": "lots"}),
    Case("short-signing-secret", ("harness", "db", "upgrade"), "at least 32 characters",
         env={"HARNESS_REQUEST_SIGNING_SECRETS": '["tooshort-but-secret"]'}, must_not_say="tooshort"),
    Case("non-json-signing-secret", ("harness", "db", "upgrade"), "is not valid JSON",
         env={"HARNESS_REQUEST_SIGNING_SECRETS": "plain-secret-value"}, must_not_say="plain-secret-value"),
    Case("require-signed-without-secret", ("harness", "serve", "--port", "1"),
         "HARNESS_REQUEST_SIGNING_SECRETS",
         env={"HARNESS_REQUIRE_SIGNED_REQUESTS": "true"}),
    Case("tenants-create-unmigrated", ("harness", "tenants", "create", "acme", "--key", "alice:submitter"),
         "run `harness db upgrade`"),
    Case("serve-port-out-of-range", ("harness", "serve", "--port", "99999"), "'--port'"),
    Case("worker-negative-poll", ("harness", "worker", "--poll", "-1"), "'--poll'"),
    Case("require-sealed-alone", ("harness", "audit", "verify", "--require-sealed"), "--require-sealed needs",
         must_not_say="--from-checkpoint"),
    Case("harness-unknown-option", ("harness", "--bogus"), "--bogus"),
    Case("replay-unknown-option", ("harness-replay", "--bogus"), "--bogus"),
    Case("replay-bad-value", ("harness-replay", "check", "--repeat", "0", "--root", str(ROOT)), "'--repeat'"),
    Case("junit-into-missing-folder",
         ("harness-replay", "check", "--root", str(ROOT), "--junit-xml", "no/such/dir/report.xml"),
         "no/such/dir does not exist"),
    # Plain `record` only proposes .new files for review (no key needed); `--accept` signs right
    # away, so the key is checked before anything is recorded.
    Case("record-accept-without-signing-key",
         ("harness-replay", "record", "rejection", "--accept", "--root", "PROJECT"),
         "harness-replay keygen", must_not_say="harness keys generate"),
    Case("accept-without-signing-key", ("harness-replay", "accept", "rejection", "--root", "PROJECT"),
         "harness-replay keygen"),
    Case("record-endpoint-without-key",
         ("harness-replay", "record", "rejection", "--root", "PROJECT", "--endpoint", "http://127.0.0.1:1/v1",
          "--api-key-env", "FH_NO_SUCH_KEY_VAR"), "set FH_NO_SUCH_KEY_VAR"),
]  # fmt: skip


def clean_env(**extra: str) -> dict[str, str]:
    drop = ("HARNESS_", "OPENAI_", "CI")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(extra)
    return env


def run_cli(argv: tuple[str, ...], *, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / argv[0]), *argv[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=90,
        check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch copy of the goldens, so a CLI that wrongly writes cannot touch the repository."""
    import shutil

    root = tmp_path_factory.mktemp("project")
    for folder in ("goldens", "cassettes"):
        shutil.copytree(ROOT / folder, root / folder)
    return root


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_is_one_line_and_exit_2(case: Case, tmp_path: Path, project: Path) -> None:
    argv = tuple(str(project) if a == "PROJECT" else a for a in case.argv)
    result = run_cli(argv, cwd=tmp_path, env=clean_env(HARNESS_DATA_DIR=str(tmp_path / "data"), **case.env))
    lines = result.stderr.splitlines()
    assert "Traceback" not in result.stderr + result.stdout
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert case.says in lines[0], lines[0]
    if case.must_not_say:
        assert case.must_not_say not in lines[0]


def test_version_on_both_clis(tmp_path: Path) -> None:
    for tool in ("harness", "harness-replay"):
        result = run_cli((tool, "--version"), cwd=tmp_path, env=clean_env())
        assert result.returncode == 0, result.stderr
        assert "version" in result.stdout


def test_every_option_has_help() -> None:
    import click

    from harness.cli import main as harness_main
    from replay.cli import main as replay_main

    missing = []
    for group in (harness_main, replay_main):
        stack: list[tuple[str, click.Command]] = [(group.name or "", group)]
        while stack:
            path, command = stack.pop()
            if isinstance(command, click.Group):
                stack += [(f"{path} {n}", c) for n, c in command.commands.items()]
            missing += [
                f"{path} {p.opts[0]}"
                for p in command.params
                if isinstance(p, click.Option) and not p.help and p.name not in {"version", "help"}
            ]
    assert missing == []


def test_keygen_creates_a_private_folder(tmp_path: Path) -> None:
    key = tmp_path / "new" / "keys" / "me.pem"
    result = run_cli(("harness-replay", "keygen", str(key), "--name", "Me"), cwd=tmp_path, env=clean_env())
    assert result.returncode == 0, result.stderr
    assert (key.parent.stat().st_mode & 0o777) == 0o700
    assert (key.stat().st_mode & 0o777) == 0o600
    assert key.with_suffix(".pub.json").is_file()
    again = run_cli(("harness-replay", "keygen", str(key), "--name", "Me"), cwd=tmp_path, env=clean_env())
    assert again.returncode == 2 and len(again.stderr.splitlines()) == 1
    assert "already exists" in again.stderr


def test_command_lists_are_never_cut_short() -> None:
    import click
    from click.testing import CliRunner

    from harness.cli import main as harness_main
    from replay.cli import main as replay_main

    runner = CliRunner()
    for group, paths in ((harness_main, [[], ["db"], ["audit"], ["tenants"]]), (replay_main, [[]])):
        for path in paths:
            result = runner.invoke(group, [*path, "--help"])
            assert result.exit_code == 0, result.output
            assert "..." not in result.output.split("Commands:", 1)[1], result.output
            assert isinstance(group, click.Group)
