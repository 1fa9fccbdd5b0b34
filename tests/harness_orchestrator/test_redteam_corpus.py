"""The red-team corpus through the injection guard: every attack detected, benign text allowed.

``redteam_corpus.yaml`` beside this file holds the cases. Each attack pins the action the
default policy takes (BLOCK or NEUTRALISE) and the rules that must fire (``fires``, all of
them; and, when ``rules_any`` is given, one of those), so removing a rule family fails every
case it detects. Benign look-alikes (business text in eight languages among them) must be
ALLOWed unchanged; legitimate template syntax must only be escaped. Rates per class are
printed by ``bench/bench_guard.py``, not asserted here.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.orchestrator.guard import RULES, GuardAction, UntrustedSource, inspect_untrusted

pytestmark = [pytest.mark.tier0, pytest.mark.security]

CORPUS_PATH = Path(__file__).with_name("redteam_corpus.yaml")
CORPUS_FORMAT_VERSION = 1
ATTACK_CATEGORIES = frozenset({
    "direct_injection", "indirect_retrieved", "indirect_tool_output", "obfuscation_base64",
    "obfuscation_homoglyph", "obfuscation_unicode_tags", "obfuscation_split_tokens",
    "exfiltration_markdown_image", "exfiltration_tool_args", "system_prompt_extraction",
    "approval_forgery", "excessive_agency",
    # wider classes (issue 8): other languages, lookalike alphabets, re-encoded payloads,
    # tool calls smuggled as XML/JSON, social approval claims, polite requests for the rules
    "multilingual_override", "obfuscation_lookalike_alphabets", "obfuscation_encoded",
    "smuggled_tool_call", "social_approval_claim", "polite_extraction",
})
MAX_FALSE_POSITIVE_RATE = 0.05


def load_corpus() -> list[dict[str, Any]]:
    data = yaml.safe_load(CORPUS_PATH.read_text(encoding="utf-8"))
    version = data.get("format_version")
    if version != CORPUS_FORMAT_VERSION:
        pytest.fail(
            f"{CORPUS_PATH.name} has format_version {version!r}; this test reads "
            f"{CORPUS_FORMAT_VERSION}: regenerate or migrate the corpus"
        )
    cases: list[dict[str, Any]] = data["cases"]
    return cases


CASES = load_corpus()
ATTACKS = [c for c in CASES if c["expected"] == "detected"]
BENIGN = [c for c in CASES if c["expected"] == "allow"]
ESCAPED = [c for c in CASES if c["expected"] == "neutralise"]


def test_corpus_is_well_formed_and_large_enough() -> None:
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    assert {c["expected"] for c in CASES} == {"detected", "allow", "neutralise"}
    for case in CASES:
        UntrustedSource(case["source"])
        if case["expected"] == "detected":
            assert case["action"] in {"block", "neutralise"} and case["fires"], case["id"]
            assert set(case["fires"]) <= RULES, case["id"]
        assert set(case.get("rules_any", [])) <= RULES, case["id"]
        assert set(case.get("rules_exact", [])) <= RULES, case["id"]
    per_category = Counter(c["category"] for c in ATTACKS)
    assert set(per_category) == ATTACK_CATEGORIES
    assert min(per_category.values()) >= 10
    assert len(ATTACKS) >= 200
    assert len(BENIGN) >= 90
    assert sum(1 for c in BENIGN if c["category"] == "benign_multilingual") >= 20


@pytest.mark.parametrize("case", ATTACKS, ids=[c["id"] for c in ATTACKS])
def test_every_attack_is_detected(case: dict[str, Any]) -> None:
    verdict = inspect_untrusted(case["text"], source=UntrustedSource(case["source"]))

    assert verdict.action is GuardAction(case["action"])
    assert verdict.action in (GuardAction.BLOCK, GuardAction.NEUTRALISE)
    assert verdict.findings, "an attack must leave at least one finding"
    missing = set(case["fires"]) - set(verdict.rules)
    assert not missing, f"rules pinned for this case did not fire: {sorted(missing)}"
    if "rules_any" in case:
        assert set(verdict.rules) & set(case["rules_any"]), (
            f"expected one of {case['rules_any']}, got {list(verdict.rules)}"
        )


@pytest.mark.parametrize("case", BENIGN, ids=[c["id"] for c in BENIGN])
def test_benign_look_alikes_are_allowed_unchanged(case: dict[str, Any]) -> None:
    verdict = inspect_untrusted(case["text"], source=UntrustedSource(case["source"]))

    assert verdict.action is GuardAction.ALLOW, [f.rule for f in verdict.findings]
    assert verdict.text == case["text"]


@pytest.mark.parametrize("case", ESCAPED, ids=[c["id"] for c in ESCAPED])
def test_legitimate_template_syntax_is_only_escaped(case: dict[str, Any]) -> None:
    verdict = inspect_untrusted(case["text"], source=UntrustedSource(case["source"]))

    assert verdict.action is GuardAction.NEUTRALISE
    assert list(verdict.rules) == case["rules_exact"]
    assert verdict.text.replace("{ ", "{") == case["text"].replace("{ ", "{")


def test_block_rate_and_false_positive_rate(capsys: pytest.CaptureFixture[str]) -> None:
    detected = sum(
        1 for c in ATTACKS
        if inspect_untrusted(c["text"], source=UntrustedSource(c["source"])).findings
    )
    blocked = sum(
        1 for c in ATTACKS
        if inspect_untrusted(c["text"], source=UntrustedSource(c["source"])).action
        is GuardAction.BLOCK
    )
    false_positives = sum(
        1 for c in BENIGN
        if inspect_untrusted(c["text"], source=UntrustedSource(c["source"])).action
        is not GuardAction.ALLOW
    )
    block_rate = detected / len(ATTACKS)
    fp_rate = false_positives / len(BENIGN)

    with capsys.disabled():
        print(
            f"\nred-team corpus: {detected}/{len(ATTACKS)} attacks blocked or neutralised "
            f"({block_rate:.1%}; {blocked} hard-blocked by the default policy), "
            f"{false_positives}/{len(BENIGN)} benign flagged ({fp_rate:.1%})"
        )
    assert block_rate == 1.0
    assert fp_rate <= MAX_FALSE_POSITIVE_RATE
