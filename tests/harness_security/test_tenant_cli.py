"""`harness tenants`: keys belong to explicit principals; `create --files` refuses symlinks and is atomic.

Real subprocesses on a SQLite file (the CLI is a thin layer; the database rules are tested on both
backends elsewhere).
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from tests.support.procs import base_env, harness

pytestmark = [pytest.mark.tier1, pytest.mark.security]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    data = tmp_path / "data"
    env = base_env(data, f"sqlite:///{(data / 'harness.db').as_posix()}")
    harness(["db", "upgrade"], env)
    return env


def _rows(env: dict[str, str], sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(env["HARNESS_DATABASE_URL"].removeprefix("sqlite:///")) as conn:
        return list(conn.execute(sql))


def _one_line_error(result: object) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)  # type: ignore[attr-defined]
    lines = result.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in result.stderr  # type: ignore[attr-defined]
    return str(lines[0])


def test_keys_are_issued_to_explicit_principals(env: dict[str, str]) -> None:
    created = harness(["tenants", "create", "acme", "--key", "alice:submitter", "--key", "bob:approver"], env)
    listed = json.loads(created.stdout)["keys"]
    assert [(k["name"], k["principal"]) for k in listed] == [("alice", "alice"), ("bob", "bob")]
    added = json.loads(harness(["tenants", "add-key", "acme", "alice/laptop:approver"], env).stdout)
    assert (added["name"], added["principal"], added["roles"]) == ("laptop", "alice", ["approver"])
    assert sorted(_rows(env, "SELECT name, principal FROM api_keys")) == [
        ("alice", "alice"),
        ("bob", "bob"),
        ("laptop", "alice"),
    ]
    bad = harness(["tenants", "add-key", "acme", "al ice:approver"], env, check=False)
    assert "principal" in _one_line_error(bad)


def test_files_with_a_symlink_to_outside_are_refused_and_nothing_is_created(
    env: dict[str, str], tmp_path: Path
) -> None:
    outside = tmp_path / "outside-secret.txt"
    outside.write_text("not tenant data")
    source = tmp_path / "seed"
    (source / "docs").mkdir(parents=True)
    (source / "docs" / "ok.txt").write_text("fine")
    (source / "docs" / "leak.txt").symlink_to(outside)

    result = harness(
        ["tenants", "create", "acme", "--key", "alice:submitter", "--files", str(source)], env, check=False
    )
    line = _one_line_error(result)
    assert "docs/leak.txt is a symlink" in line
    assert _rows(env, "SELECT id FROM tenants") == []
    assert _rows(env, "SELECT id FROM api_keys") == []
    files_root = Path(env["HARNESS_DATA_DIR"]) / "tenant-files"
    assert not files_root.exists() or list(files_root.iterdir()) == []


def test_a_symlink_loop_is_a_one_line_error_not_a_traceback(env: dict[str, str], tmp_path: Path) -> None:
    source = tmp_path / "seed"
    source.mkdir()
    os.symlink(source, source / "loop")
    result = harness(["tenants", "create", "acme", "--files", str(source)], env, check=False)
    assert "loop is a symlink" in _one_line_error(result)
    assert _rows(env, "SELECT id FROM tenants") == []


def test_a_bad_key_spec_after_good_ones_leaves_no_half_created_tenant(
    env: dict[str, str], tmp_path: Path
) -> None:
    source = tmp_path / "seed"
    source.mkdir()
    (source / "a.txt").write_text("a")
    result = harness(
        [
            "tenants",
            "create",
            "acme",
            "--key",
            "alice:submitter",
            "--key",
            "bob:wizard",
            "--files",
            str(source),
        ],
        env,
        check=False,
    )
    assert "roles must be" in _one_line_error(result)
    assert _rows(env, "SELECT id FROM tenants") == []
    assert _rows(env, "SELECT id FROM api_keys") == []
    assert _rows(env, "SELECT action FROM audit_entries") == []
    files_root = Path(env["HARNESS_DATA_DIR"]) / "tenant-files"
    assert not files_root.exists() or list(files_root.iterdir()) == []

    ok = harness(["tenants", "create", "acme", "--key", "alice:submitter", "--files", str(source)], env)
    assert json.loads(ok.stdout)["tenant"] == "acme"
    assert (files_root / "acme" / "a.txt").read_text() == "a"
    assert [p.name for p in files_root.iterdir()] == ["acme"], "the staging folder was left behind"
