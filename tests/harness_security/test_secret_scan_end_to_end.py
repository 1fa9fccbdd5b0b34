"""Security regression set: after a real end-to-end run seeded with a corpus of synthetic
secrets, no secret is stored verbatim anywhere the harness writes.

Real processes on loopback (provider simulator, ``harness serve``, ``harness worker``), on
SQLite and on PostgreSQL. One synthetic secret of every redactor type (30+ types, plus a bare
high-entropy token) enters by every door: the task, an approval reason, a workspace file the
model reads, the model's own answer and its tool-call arguments. Then everything is scanned
byte for byte: the SQLite file with its WAL and shared-memory files (or every table of the
PostgreSQL schema, row by row), the server and worker logs, and every file the harness wrote
under its data directory. The workspace copy of the tenant's own files is tenant input, not
something the harness wrote, and is the one place not scanned.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml

from tests.support import procs

pytestmark = [pytest.mark.tier1, pytest.mark.security, pytest.mark.e2e]

DATA = Path(__file__).parent / "data"
CORPUS: dict[str, Any] = yaml.safe_load((DATA / "secret_corpus.yaml").read_text(encoding="utf-8"))
BARE = "NBEjE4o24hOSDRET79IqJzQtJZPGSEZ4zBms1rac"  # no prefix, no keyword: found by shape only


def _one_per_type() -> dict[str, tuple[str, str]]:
    """type -> (text, secret): the first positive of every type in the redactor corpus."""
    out = {}
    for type_, spec in CORPUS["types"].items():
        positive = spec["positives"][0]
        out[type_] = (positive["text"], positive.get("secret", positive["text"]))
    return out


SEEDS = _one_per_type()
SECRETS = {type_: secret for type_, (_, secret) in SEEDS.items()} | {"secret_value": BARE}
SEED_TEXT = "\n".join(text.strip() for text, _ in SEEDS.values())


def _model_script(path: Path) -> Path:
    script = {
        "format_version": 1,
        "created": 1767225600,
        "conversations": [
            {
                "name": "leaky",
                "match": {"user_contains": "Review the credentials"},
                "turns": [
                    {
                        "content": f"Reading. For the record:\n{SEED_TEXT}",
                        "tool_calls": [
                            {"name": "read_file", "arguments": {"path": "creds.env"}},
                            {"name": "read_file", "arguments": {"path": BARE}},
                        ],
                    },
                    {
                        "tool_calls": [
                            {
                                "name": "write_artifact",
                                "arguments": {"path": "review.md", "content": f"# Review\n\n{SEED_TEXT}\n"},
                            }
                        ]
                    },
                    {"content": f"Done. Token {BARE}; keys:\n{SEED_TEXT}"},
                ],
            }
        ],
        "default": {"turns": [{"content": "Nothing to do."}]},
    }
    path.write_text(yaml.safe_dump(script, sort_keys=False), encoding="utf-8")
    return path


def _reason_within(limit: int) -> str:
    """An approval reason quoting whole seed texts (never a cut secret) up to ``limit`` characters."""
    reason = "checked; note"
    for text, _ in SEEDS.values():
        if len(reason) + len(text) + 2 > limit:
            break
        reason += "; " + text.strip()
    return reason


def _hits(blob: bytes, where: str) -> list[str]:
    found = []
    for type_, secret in SECRETS.items():
        forms = {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
        if any(form.encode("utf-8") in blob for form in forms):
            found.append(f"{where}: {type_}")
    return found


def _wait_for(client: httpx.Client, run_id: str, statuses: set[str], token: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        view = client.get(f"/api/harness/runs/{run_id}", headers={"Authorization": f"Bearer {token}"})
        body = view.json()
        if view.status_code == 200 and body["status"] in statuses:
            return body
        assert time.monotonic() < deadline, f"waited 60s for run {run_id} to reach {statuses}: {body}"
        # polling must not trip the per-key rate limit: honour Retry-After when it does
        time.sleep(float(view.headers.get("Retry-After", "0.5")) if view.status_code == 429 else 0.5)


def _database_dump(database_url: str, tmp_path: Path) -> dict[str, bytes]:
    if database_url.startswith("sqlite"):
        files = sorted(tmp_path.glob("harness.db*"))
        assert any(f.name == "harness.db-wal" for f in files) or files, "no SQLite files found"
        return {f"sqlite file {f.name}": f.read_bytes() for f in files}
    plain = database_url.replace("postgresql+psycopg://", "postgresql://")
    dumps: dict[str, bytes] = {}
    with psycopg.connect(plain) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
            )
        ]
        assert len(tables) >= 8, tables
        for table in tables:
            rows = conn.execute(f'SELECT t::text FROM "{table}" t').fetchall()  # names from the catalogue
            dumps[f"table {table}"] = "\n".join(r[0] for r in rows).encode("utf-8")
    return dumps


def test_no_secret_of_the_corpus_is_stored_verbatim_anywhere(tmp_path: Path, database_url: str) -> None:
    assert len(SECRETS) >= 25
    files = tmp_path / "acme-files"
    files.mkdir()
    (files / "creds.env").write_text(SEED_TEXT + "\n", encoding="utf-8")
    data_dir = tmp_path / ".harness"
    env = procs.base_env(data_dir, database_url)
    env["HARNESS_LOG_LEVEL"] = "DEBUG"
    task = f"Review the credentials below and write review.md\n{SEED_TEXT}"
    reason = _reason_within(1900)
    with procs.provider_sim(_model_script(tmp_path / "script.yaml"), env, tmp_path / "sim.log") as sim_url:
        env["HARNESS_PROVIDER_BASE_URL"] = sim_url
        procs.harness(["db", "upgrade"], env)
        created = json.loads(
            procs.harness(
                ["tenants", "create", "acme", "--key", "alice:submitter", "--key", "bob:approver",
                 "--files", str(files)],
                env,
            ).stdout
        )
        alice, bob = (k["token"] for k in created["keys"])
        with (
            procs.api_server(env, tmp_path / "api.log") as base,
            procs.worker(env, tmp_path / "worker.log"),
            httpx.Client(base_url=base, timeout=10) as client,
        ):
            submitted = client.post(
                "/api/harness/run", json={"task": task}, headers={"Authorization": f"Bearer {alice}"}
            )
            assert submitted.status_code == 202, submitted.text
            run_id = submitted.json()["run_id"]
            waiting = _wait_for(client, run_id, {"AWAITING_APPROVAL"}, alice)
            decided = client.post(
                "/api/harness/approve",
                json={
                    "run_id": run_id,
                    "decision": "approve",
                    "reason": reason,
                    "approval_id": waiting["pending_approval"]["id"],
                    "args_sha256": waiting["pending_approval"]["args_sha256"],
                },
                headers={"Authorization": f"Bearer {bob}"},
            )
            assert decided.status_code == 200, decided.text
            done = _wait_for(client, run_id, {"SUCCEEDED", "FAILED"}, alice)
            artifact = client.get(
                f"/api/harness/runs/{run_id}/artifacts/review.md",
                headers={"Authorization": f"Bearer {alice}"},
            )
    assert done["status"] == "SUCCEEDED", done
    responses = {
        "response 202": submitted.content,
        "response awaiting": json.dumps(waiting).encode(),
        "response approve": decided.content,
        "response done": json.dumps(done).encode(),
        "response artifact": artifact.content,
    }
    surfaces = {
        **responses,
        **_database_dump(database_url, tmp_path),
        "api.log": (tmp_path / "api.log").read_bytes(),
        "worker.log": (tmp_path / "worker.log").read_bytes(),
    }
    tenant_input = {"workspaces", "tenant-files"}  # copies of the tenant's own files
    written = [
        p
        for p in sorted(data_dir.rglob("*"))
        if p.is_file() and not tenant_input & set(p.relative_to(data_dir).parts)
    ]
    surfaces |= {f"file {p.relative_to(data_dir)}": p.read_bytes() for p in written}
    assert any("review.md" in name for name in surfaces), f"no artifact file among {sorted(surfaces)}"

    hits = [hit for name, blob in surfaces.items() for hit in _hits(blob, name)]
    assert hits == [], "secrets stored verbatim:\n  " + "\n  ".join(hits)
    # and they were there to be found: the redaction markers stand where the secrets went
    assert b"[REDACTED:" in surfaces["response done"]
    database = b"".join(v for k, v in surfaces.items() if k.startswith(("sqlite", "table")))
    assert b"[REDACTED:secret_value]" in database


def test_the_scan_finds_what_it_looks_for() -> None:
    # a scan that cannot see the secrets proves nothing: every form it checks is found
    for type_, secret in SECRETS.items():
        assert _hits(f"x {secret} y".encode(), "raw") == [f"raw: {type_}"]
        assert _hits(json.dumps({"v": secret}).encode(), "json") == [f"json: {type_}"]
