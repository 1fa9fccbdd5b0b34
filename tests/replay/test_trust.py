"""The trust model: policy, burnt (committed) keys, quorum, owners, counters, rollback, inputs bound."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.canonical import jcs_bytes, sha256_hex
from harness.integrity import Ed25519Signer, TrustedKeys, write_private_key_pem, write_public_key
from replay.signing import append_approval, sign_golden
from replay.store import GoldenStore
from replay.trust import (
    DEMO_KEY_PROBLEM,
    find_exposed_keys,
    sign_policy,
    since_problems,
    verify_scenario,
    verify_under_policy,
)
from tests.support.goldens import scratch_project

pytestmark = [pytest.mark.tier1, pytest.mark.security]

ROOT = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).parent / "harness-replay"
DEMO_KEY = ROOT / "goldens" / "keys" / "DEMO-ONLY-signing-key.pem"
NAME = "rejection"
AT = "2026-02-01T09:00:00Z"


@pytest.fixture
def project(tmp_path: Path) -> GoldenStore:
    """One shipped golden, its cassette, the keys and the policy (verify needs no replay)."""
    return GoldenStore(scratch_project(tmp_path, NAME))


def cli(store: GoldenStore, *args: str, key: Path = DEMO_KEY) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update({"HARNESS_SIGNING_KEY": str(key), "HARNESS_APPROVER": "Mallory"})
    return subprocess.run(
        [str(CLI), *args, "--root", str(store.root)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def forge_succeeded(store: GoldenStore) -> None:
    """The issue's forgery: flip the final status in trace.json.new, then accept it."""
    paths = store.paths(NAME)
    trace = json.loads(paths.trace.read_text())
    trace["final"]["runs"] = {run: "SUCCEEDED" for run in trace["final"]["runs"]}
    paths.trace_new.write_text(json.dumps(trace, indent=2, sort_keys=True) + "\n")


def keypair(store: GoldenStore, name: str, *, in_repo: bool = False) -> Ed25519Signer:
    signer = Ed25519Signer.generate()
    write_public_key(store.keys_dir / f"{name}.pub.json", signer.public_record(name))
    if in_repo:
        write_private_key_pem(store.root / "notes" / f"{name}.txt", signer.private_key)
    return signer


def set_policy(
    store: GoldenStore, approvers: list[Ed25519Signer], *, required: int = 1, owners: str = "{}"
) -> None:
    lines = "\n".join(f'  - {{keyid: "{s.keyid}", name: k{i}}}' for i, s in enumerate(approvers))
    text = f"format_version: 1\nrequired_approvals: {required}\napprovers:\n{lines}\nowners: {owners}\n"
    (store.goldens_dir / "TRUST.yaml").write_text(text)
    (store.goldens_dir / "TRUST.dsse.json").unlink(missing_ok=True)
    for signer in approvers[:required]:
        sign_policy(store, signer=signer)


def approve(store: GoldenStore, signer: Ed25519Signer, who: str = "alice") -> None:
    sign_golden(store, NAME, signer=signer)
    append_approval(store, NAME, signer=signer, approver=who, reason="ok", old_trace_sha256=None, at=AT)


def commit_all(store: GoldenStore) -> None:
    git = shutil.which("git")
    assert git is not None, "git is needed for --since REF"
    ident = ["-c", "user.name=t", "-c", "user.email=t@t"]
    for args in (["init", "-q"], ["add", "-A"], [*ident, "commit", "-qm", "known good"]):
        subprocess.run([git, "-C", str(store.root), *args], check=True, capture_output=True)


# --- the demo key ------------------------------------------------------------------------------


def test_the_committed_demo_key_is_detected(project: GoldenStore) -> None:
    exposed = find_exposed_keys(project.root)
    assert list(exposed) == ["ed25519:223ea49f6fe73338"]
    assert exposed["ed25519:223ea49f6fe73338"].name == "DEMO-ONLY-signing-key.pem"


def test_forged_golden_accepted_with_the_demo_key_is_refused_by_plain_verify(project: GoldenStore) -> None:
    forge_succeeded(project)
    # `accept` replays the update first and refuses to sign a trace the scenario does not produce ...
    accepted = cli(project, "accept", NAME)
    assert accepted.returncode == 1
    assert "edited by hand?" in accepted.stdout and "not signing" in accepted.stdout
    # ... so the forger signs it with the library and the committed demo key.
    from harness.integrity import load_signer
    from replay.review import accept

    forge_succeeded(project)
    accept(project, NAME, signer=load_signer(DEMO_KEY), approver="Mallory", reason="trust me", at=AT)
    refused = cli(project, "verify")
    assert refused.returncode == 1
    assert refused.stdout == ""
    [line] = refused.stderr.splitlines()
    assert line.startswith("error: 2 of 2 signed files")
    assert "private half is in the repository" in line and "--allow-demo-key" in line
    # The demo still runs, but says what it is doing.
    demo = cli(project, "verify", "--allow-demo-key")
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "warning: --allow-demo-key: trusting ed25519:223ea49f6fe73338" in demo.stderr


def test_check_refuses_the_demo_key_without_the_flag(project: GoldenStore) -> None:
    result = verify_scenario(project, NAME, allow_demo_key=False)
    assert not result.ok
    assert any(DEMO_KEY_PROBLEM in p for p in result.problems)
    assert verify_scenario(project, NAME, allow_demo_key=True).ok


def test_any_committed_private_key_is_burnt_not_just_the_demo_one(project: GoldenStore) -> None:
    (project.root / "notes").mkdir()
    carol = keypair(project, "carol", in_repo=True)
    set_policy(project, [carol])
    approve(project, carol, "carol")
    assert carol.keyid in find_exposed_keys(project.root)
    result = verify_scenario(project, NAME, allow_demo_key=False)
    assert not result.ok and any(carol.keyid in p and DEMO_KEY_PROBLEM in p for p in result.problems)


# --- the policy -----------------------------------------------------------------------------


def test_a_key_outside_the_policy_cannot_approve(project: GoldenStore) -> None:
    alice = keypair(project, "alice")
    set_policy(project, [alice])
    approve(project, alice)
    assert verify_scenario(project, NAME, allow_demo_key=False).ok
    mallory = keypair(project, "mallory")  # in goldens/keys, but not an approver
    forge_succeeded(project)
    from replay.review import accept

    accept(project, NAME, signer=mallory, approver="mallory", reason="trust me", at=AT)
    result = verify_scenario(project, NAME, allow_demo_key=False)
    assert not result.ok
    assert any("which is not an approver in goldens/TRUST.yaml" in p for p in result.problems)
    assert any("0 distinct approver(s) named in goldens/TRUST.yaml" in p for p in result.problems)


def test_editing_the_policy_without_signatures_fails(project: GoldenStore) -> None:
    alice = keypair(project, "alice")
    set_policy(project, [alice])
    approve(project, alice)
    mallory = keypair(project, "mallory")
    policy = project.goldens_dir / "TRUST.yaml"
    added = f'approvers:\n  - {{keyid: "{mallory.keyid}", name: m}}\n'
    policy.write_text(policy.read_text().replace("approvers:\n", added))
    [policy_result, _] = verify_under_policy(project, [NAME], allow_demo_key=False)
    assert not policy_result.ok
    assert "was edited after it was signed" in policy_result.problems[0]


def test_a_policy_change_must_be_signed_by_the_previous_approvers(project: GoldenStore) -> None:
    alice = keypair(project, "alice")
    set_policy(project, [alice])
    approve(project, alice)
    commit_all(project)
    # Mallory rewrites the policy to trust only herself and signs it with her own key.
    mallory = keypair(project, "mallory")
    set_policy(project, [mallory])
    approve(project, mallory, "mallory")
    assert verify_scenario(project, NAME, allow_demo_key=False).ok  # self-consistent ...
    problems = since_problems(project, ["HEAD"])
    assert any("keys cannot vouch for themselves" in p for p in problems)  # ... but not since HEAD
    # An auditor pinning their own key directory refuses it as well.
    pinned = TrustedKeys([alice.public_record("alice")])
    assert not verify_scenario(project, NAME, allow_demo_key=False, pinned=pinned).ok


def test_distinct_approvers_are_required(project: GoldenStore) -> None:
    alice, bob = keypair(project, "alice"), keypair(project, "bob")
    set_policy(project, [alice, bob], required=2)
    approve(project, alice)
    result = verify_scenario(project, NAME, allow_demo_key=False)
    needs = "1 distinct approver(s) named in goldens/TRUST.yaml, the policy requires 2"
    assert any(needs in p for p in result.problems)
    approve(project, alice)  # the same key twice is still one approver
    assert not verify_scenario(project, NAME, allow_demo_key=False).ok
    append_approval(project, NAME, signer=bob, approver="bob", reason="ok", old_trace_sha256=None, at=AT)
    assert verify_scenario(project, NAME, allow_demo_key=False).ok


def test_owners_must_be_among_the_approvers(project: GoldenStore) -> None:
    alice, bob = keypair(project, "alice"), keypair(project, "bob")
    set_policy(project, [alice, bob], owners=f'{{{NAME}: ["{bob.keyid}"]}}')
    approve(project, alice)
    result = verify_scenario(project, NAME, allow_demo_key=False)
    assert any("owns 'rejection'" in p for p in result.problems)
    append_approval(project, NAME, signer=bob, approver="bob", reason="ok", old_trace_sha256=None, at=AT)
    assert verify_scenario(project, NAME, allow_demo_key=False).ok


# --- counters, rollback, inputs ---------------------------------------------------------------


def test_a_replayed_counter_is_reported(project: GoldenStore) -> None:
    alice = keypair(project, "alice")
    set_policy(project, [alice])
    approve(project, alice)
    approvals = project.paths(NAME).approvals
    lines = approvals.read_bytes().splitlines()
    last = json.loads(lines[-1])
    last["counter"] = 1  # a validly signed line that pretends to be the first again
    del last["sig"]
    import base64

    last["sig"] = base64.b64encode(alice.sign(jcs_bytes(last))).decode()
    approvals.write_bytes(b"".join(line + b"\n" for line in [*lines[:-1], jcs_bytes(last)]))
    result = verify_scenario(project, NAME, allow_demo_key=True)
    expected = len(lines)  # the counter of the last line is its line number in the golden's history
    assert expected >= 2
    assert any(f"has counter 1, expected {expected}" in p for p in result.problems)


def test_a_revert_to_an_older_signed_state_is_reported(project: GoldenStore) -> None:
    alice = keypair(project, "alice")
    set_policy(project, [alice])
    folder = project.paths(NAME).folder
    old = {p.name: p.read_bytes() for p in folder.iterdir()}
    approve(project, alice)
    head = sha256_hex(project.paths(NAME).approvals.read_bytes().splitlines()[-1])
    assert since_problems(project, [f"sha256:{head}"]) == []
    for name, data in old.items():  # roll the whole golden back to its earlier, validly signed state
        (folder / name).write_bytes(data)
    [problem] = since_problems(project, [head])
    assert "reverted or rewritten" in problem
    # A git ref works the same way.
    approve(project, alice)
    commit_all(project)
    for name, data in old.items():
        (folder / name).write_bytes(data)
    out = cli(project, "verify", "--allow-demo-key", "--since", "HEAD")
    assert out.returncode == 1
    assert "rollback: rejection: approvals were rolled back or rewritten since HEAD" in out.stderr


def test_the_cassette_and_scenario_are_bound_by_the_approval(project: GoldenStore) -> None:
    cassette = project.paths(NAME).cassette
    cassette.write_text(cassette.read_text().replace("sim-small", "sim-large", 1))
    result = verify_scenario(project, NAME, allow_demo_key=True)
    assert any("cassettes/rejection.yaml changed after signing" in p for p in result.problems)
    assert any("names cassette sha256" in p for p in result.problems)
    scenario = project.paths(NAME).scenario
    shutil.copy2(ROOT / "cassettes" / f"{NAME}.yaml", cassette)
    scenario.write_text(scenario.read_text() + "# edited\n")
    result = verify_scenario(project, NAME, allow_demo_key=True)
    assert any("goldens/rejection/scenario.yaml changed after signing" in p for p in result.problems)
