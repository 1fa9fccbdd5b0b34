"""The trace's last pass marks a secret that reached it [LEAKED:<type>], never keeps it or hides it."""

from __future__ import annotations

import pytest

from replay.leak_marking import mark_leaks

pytestmark = [pytest.mark.tier0, pytest.mark.security]


def test_a_secret_in_any_string_or_key_is_marked_leaked() -> None:
    trace = {
        "transitions": [{"reason": "approved: AWS_ACCESS_KEY_ID=AKIAZ7QXFAKELEAK0001"}],
        "api": [{"body": {"ghp_FAKEN2LtUcGEeTxA8i5TsieQvEbDFn1l34yNfK": 1}}],
        "n": 3,
    }
    assert mark_leaks(trace) == {
        "transitions": [{"reason": "approved: AWS_ACCESS_KEY_ID=[LEAKED:aws_access_key_id]"}],
        "api": [{"body": {"[LEAKED:github_pat]": 1}}],
        "n": 3,
    }


def test_already_redacted_text_is_left_as_recorded() -> None:
    clean = {"reason": "approved: AWS_ACCESS_KEY_ID=[REDACTED:aws_access_key_id]", "ok": None}
    assert mark_leaks(clean) == clean
