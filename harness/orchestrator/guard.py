"""The prompt-injection guard: untrusted text is inspected, neutralised and delimited here.

Untrusted text (the user task, retrieved documents, tool results) passes ``inspect_untrusted``
before it enters a prompt. The pipeline is pure and deterministic:

1. Invisible characters are stripped; hidden payloads (Unicode tag characters, runs of
   variation selectors) are decoded and inspected too.
2. Detection runs on a *skeleton* of the text: NFKD, combining marks dropped, casefolded,
   Cyrillic/Greek/fullwidth lookalikes mapped to Latin. Each skeleton character remembers
   the index it came from, so a match found in the skeleton is neutralised in the text.
3. Markers (template syntax, our delimiter tag, fake role markers, exfiltration URLs) are
   made inert by *inserting* escapes or defanging URL schemes; content is never deleted.
4. Instruction-like language (overrides, prompt extraction, exfiltration, forged approvals,
   destructive agency) is looked for in the skeleton, in a letters-only compaction (split
   tokens), in decoded base64 runs and in hidden payloads.
5. A ``GuardPolicy`` turns the findings into an action; ``delimit`` renders the sanitised
   text in an ``<untrusted>`` block that the content cannot close.

Only the escapes of step 3 change the text: language findings are reported, not rewritten,
because the delimiter and the system rules are what keep data from acting as instructions.
The rule tables live in ``_guard_rules``, invisible-text stripping and the skeleton in
``_guard_text``; this module holds the public types, the scans and the API.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from harness.errors import ConfigError, InjectionBlocked, InvalidRequest
from harness.orchestrator._guard_extra import (
    LANGUAGE_EXTRA,
    MULTILINGUAL,
    decoded_views,
    plain_view,
    scored_override,
)
from harness.orchestrator._guard_rules import (
    EXFIL_URLS,
    LANGUAGE,
    LEET,
    MARKERS,
    NON_LETTERS,
    SPLIT_TOKENS,
    SSTI,
    mixed_script_words,
    url_is_exfiltration,
)
from harness.orchestrator._guard_text import Skeleton, Visible, strip_invisible


class UntrustedSource(StrEnum):
    USER_TASK = "user_task"
    RETRIEVED_DOCUMENT = "retrieved_document"
    TOOL_RESULT = "tool_result"


class GuardAction(StrEnum):
    ALLOW = "allow"
    NEUTRALISE = "neutralise"
    BLOCK = "block"


@dataclass(frozen=True)
class GuardFinding:
    """One rule that fired; ``detail`` is for humans and never enters traces (it quotes input)."""

    rule: str
    detail: str


@dataclass(frozen=True)
class GuardVerdict:
    """What the guard decided about one piece of untrusted text; ``text`` is the sanitised text."""

    source: UntrustedSource
    action: GuardAction
    findings: tuple[GuardFinding, ...]
    text: str

    @property
    def rules(self) -> tuple[str, ...]:
        """The distinct rule ids that fired, sorted."""
        return tuple(sorted({f.rule for f in self.findings}))

    def to_trace(self) -> dict[str, Any]:
        """A JSON-safe, deterministic summary for traces and goldens (no input text)."""
        return {"source": str(self.source), "action": str(self.action), "rules": list(self.rules)}


RULES: Final[frozenset[str]] = frozenset({
    "approval.forgery",  # text claims a human already approved an action
    "agency.destructive",  # asks for mass deletion, writes to system paths, disabling controls
    "agency.tool_invocation",  # data tells the model to call a network/mail tool with a target
    "exfiltration.markdown_image",  # image whose URL carries data (rendering it leaks)
    "exfiltration.markdown_link",  # URL with a placeholder or data-named query parameter
    "exfiltration.secrets",  # asks to read or reveal keys, .env, ssh keys, passwords
    "exfiltration.tool_args",  # shell/tool-call shapes that ship secrets or data off-host
    "extraction.system_prompt",  # asks to reveal the system prompt or hidden instructions
    "hidden.invisible_chars",  # zero-width, bidi or soft-hyphen characters were stripped
    "hidden.unicode_tags",  # an invisible payload (tag characters, variation selectors)
    "obfuscation.base64",  # a base64 run decodes to something another rule flags
    "obfuscation.confusables",  # lookalike letters disguise a finding or mix scripts in a word
    "obfuscation.encoded",  # a rot13, hex, URL-escaped or HTML-entity view holds a finding
    "agency.smuggled_tool_call",  # a tool call written as XML or JSON inside data
    "override.scored",  # override cues (verb, instruction noun, qualifier, address) add up
    "obfuscation.split_tokens",  # a finding spelled with spaces, dots or digits between letters
    "override.addressed_to_model",  # data addressing "the AI" with orders
    "override.ignore_instructions",  # "ignore previous instructions" and kin
    "override.new_instructions",  # "new instructions:" / "your real task is"
    "override.role_reassignment",  # "you are now DAN", jailbreak modes
    "role.chat_template_token",  # <|im_start|> and other chat-template special tokens
    "role.inst_tag",  # [INST], <<SYS>>
    "role.line_prefix",  # "System:" / "Assistant:" at the start of a line
    "role.xml_tag",  # <system>, </user>, <assistant>
    "template.delimiter",  # our own <untrusted> delimiter, in any spelling
    "template.injection",  # Jinja expressions reaching internals, {% raw %}, {% include %}
    "template.syntax",  # any Jinja opener ({{, {%, {#}); escaped, harmless on its own
})

# Overt attacks: nobody legitimately sends these as their own task.
OVERT_ATTACK_RULES: Final[frozenset[str]] = frozenset({
    "agency.smuggled_tool_call",
    "override.ignore_instructions",
    "override.role_reassignment",
    "extraction.system_prompt",
    "exfiltration.markdown_image",
    "exfiltration.markdown_link",
    "exfiltration.secrets",
    "exfiltration.tool_args",
    "role.chat_template_token",
    "role.inst_tag",
    "role.xml_tag",
    "template.delimiter",
    "template.injection",
    "approval.forgery",
    "hidden.unicode_tags",
})


@dataclass(frozen=True)
class GuardPolicy:
    """Which findings block: a finding of a rule in ``block_rules`` from a source in
    ``blocking_sources`` makes the action BLOCK; any other finding NEUTRALISE; none ALLOW."""

    block_rules: frozenset[str]
    blocking_sources: frozenset[UntrustedSource] = frozenset(UntrustedSource)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.block_rules) - RULES)
        if unknown:
            raise ConfigError(
                f"unknown guard rule(s) {unknown}; use ids from harness.orchestrator.guard.RULES"
            )
        for source in self.blocking_sources:
            UntrustedSource(source)  # a mistyped source fails loudly (ValueError)

    def action_for(self, source: UntrustedSource, findings: Iterable[GuardFinding]) -> GuardAction:
        """The action this policy takes for ``findings`` in text from ``source``."""
        rules = {f.rule for f in findings}
        if not rules:
            return GuardAction.ALLOW
        if source in self.blocking_sources and rules & self.block_rules:
            return GuardAction.BLOCK
        return GuardAction.NEUTRALISE


# Retrieved documents and tool results are data: neutralised and delimited, never blocked, so
# one poisoned document cannot deny service. The user task is blocked on overt attacks.
DEFAULT_POLICY: Final[GuardPolicy] = GuardPolicy(
    block_rules=OVERT_ATTACK_RULES, blocking_sources=frozenset({UntrustedSource.USER_TASK})
)


# --------------------------------------------------------------------------- markers

@dataclass(frozen=True)
class _Edit:
    start: int
    end: int  # == start for an insertion
    text: str


def _marker_scan(text: str, skel: Skeleton) -> tuple[list[GuardFinding], list[_Edit]]:
    findings: list[GuardFinding] = []
    edits: list[_Edit] = []
    s = skel.text
    for marker in MARKERS:
        for m in marker.pattern.finditer(s):
            at = skel.source_index(m.start("at"))
            edits.append(_Edit(at, at, marker.escape))
            a, b = skel.source_span(m.start(), m.end("at"))
            findings.append(GuardFinding(marker.rule, f"{marker.label}: {_quote(text[a:b])}"))
    for rule, pattern in SSTI:
        for m in pattern.finditer(s):
            findings.append(GuardFinding(rule, f"template expression {_quote(m.group())}"))
    for rule, pattern in EXFIL_URLS:
        for m in pattern.finditer(s):
            if not url_is_exfiltration(rule, m.group("url")):
                continue
            findings.append(GuardFinding(rule, f"data-carrying URL {_quote(m.group('url'))}"))
            if m.group("scheme"):
                a, b = skel.source_span(m.start("scheme"), m.start("scheme") + 4)
                edits.append(_Edit(a, b, "hxxp"))
            else:  # protocol-relative //host
                at = skel.source_index(m.start("url"))
                edits.append(_Edit(at, at, "hxxp:"))
    return findings, edits


def _apply(text: str, edits: list[_Edit]) -> str:
    out: list[str] = []
    pos = 0
    for edit in sorted(set(edits), key=lambda e: (e.start, e.end, e.text)):
        if edit.start < pos:  # overlaps a replacement already made
            continue
        out.append(text[pos:edit.start])
        out.append(edit.text)
        pos = edit.end
    out.append(text[pos:])
    return "".join(out)


# --------------------------------------------------------------------------- language

_BASE64_RUN = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{16,}={0,2}")
_MAX_BASE64_RUNS = 64
_MAX_DEPTH = 2


def _quote(snippet: str, limit: int = 60) -> str:
    snippet = " ".join(snippet.split())
    return repr(snippet if len(snippet) <= limit else snippet[: limit - 1] + "…")


def _language_scan(visible: str, skel: Skeleton, depth: int) -> list[GuardFinding]:
    findings: list[GuardFinding] = []
    found: set[str] = set()
    for rule, pattern in LANGUAGE:
        m = pattern.search(skel.text)
        if m is not None:
            findings.append(GuardFinding(rule, _quote(m.group())))
            found.add(rule)
    if not visible.isascii():
        plain = visible.lower()
        disguised = sorted(r for r, p in LANGUAGE if r in found and p.search(plain) is None)
        if disguised:
            findings.append(GuardFinding("obfuscation.confusables", f"lookalikes hide {disguised}"))
        mixed = mixed_script_words(visible)
        if mixed:
            findings.append(GuardFinding("obfuscation.confusables", f"mixed-script words {mixed}"))
    findings.extend(_extra_scan(visible, skel, found))
    compact = NON_LETTERS.sub("", skel.text.translate(LEET))
    for rule, pattern in SPLIT_TOKENS:
        m = pattern.search(compact)
        if m is not None and rule not in found:
            findings.append(GuardFinding(rule, f"split tokens spell {m.group()!r}"))
            findings.append(GuardFinding("obfuscation.split_tokens", f"{rule} hidden by splitting"))
            found.add(rule)
    if depth < _MAX_DEPTH:
        findings.extend(_base64_scan(visible, depth))
        findings.extend(_decoded_scan(visible, depth))
    return findings


def _extra_scan(visible: str, skel: Skeleton, found: set[str]) -> list[GuardFinding]:
    """Other languages (on a plain view), smuggled calls, social claims, and the cue score."""
    findings: list[GuardFinding] = []
    for rule, pattern in LANGUAGE_EXTRA:
        m = pattern.search(skel.text)
        if m is not None and rule not in found:
            findings.append(GuardFinding(rule, _quote(m.group())))
            found.add(rule)
    plain = plain_view(visible)
    for rule, pattern in MULTILINGUAL:
        m = pattern.search(plain)
        if m is not None and rule not in found:
            findings.append(GuardFinding(rule, _quote(m.group())))
            found.add(rule)
    # the score is the net for wordings no phrase rule knows; it stays quiet when one fired
    sentence = None if any(r.startswith("override.") for r in found) else scored_override(plain)
    if sentence is not None:
        findings.append(GuardFinding("override.scored", _quote(sentence)))
    return findings


def _decoded_scan(visible: str, depth: int) -> list[GuardFinding]:
    findings: list[GuardFinding] = []
    for encoding, decoded in decoded_views(visible):
        inner = _scan_nested(decoded, depth + 1)
        if inner:
            findings.append(GuardFinding("obfuscation.encoded", f"{encoding} view: {_quote(decoded)}"))
            findings.extend(GuardFinding(f.rule, f"in {encoding}: {f.detail}") for f in inner)
    return findings


def _base64_scan(visible: str, depth: int) -> list[GuardFinding]:
    findings: list[GuardFinding] = []
    for n, m in enumerate(_BASE64_RUN.finditer(visible)):
        if n >= _MAX_BASE64_RUNS:
            break
        decoded = _decode_base64(m.group())
        if decoded is None:
            continue
        inner = _scan_nested(decoded, depth + 1)
        if inner:
            detail = f"base64 run decodes to {_quote(decoded)}"
            findings.append(GuardFinding("obfuscation.base64", detail))
            findings.extend(GuardFinding(f.rule, f"in base64: {f.detail}") for f in inner)
    return findings


def _decode_base64(run: str) -> str | None:
    """The text a plausible base64 run decodes to, or None for binary / not base64."""
    body = run.rstrip("=")
    if len(body) % 4 == 1:
        return None
    padded = body + "=" * (-len(body) % 4)
    try:
        if "-" in body or "_" in body:
            raw = base64.urlsafe_b64decode(padded)
        else:
            raw = base64.b64decode(padded, validate=True)
        text = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    printable = sum(1 for c in text if c.isprintable() or c in "\n\r\t")
    if len(text) < 8 or printable < 0.9 * len(text):
        return None
    return text


def _scan_nested(text: str, depth: int) -> list[GuardFinding]:
    """Every finding in a hidden or encoded payload (no escapes: the payload is never shown)."""
    visible = strip_invisible(text)
    skel = Skeleton.of(visible.text)
    findings, _ = _marker_scan(visible.text, skel)
    findings.extend(_hidden_findings(visible, depth))
    findings.extend(_language_scan(visible.text, skel, depth))
    return findings


def _hidden_findings(visible: Visible, depth: int) -> list[GuardFinding]:
    findings: list[GuardFinding] = []
    if visible.stripped:
        counts = {c: visible.stripped.count(c) for c in sorted(set(visible.stripped))}
        summary = ", ".join(f"{c}x{n}" for c, n in counts.items())
        findings.append(GuardFinding("hidden.invisible_chars", f"stripped {summary}"))
    for payload in visible.hidden_payloads:
        findings.append(GuardFinding("hidden.unicode_tags", f"hidden payload {_quote(payload)}"))
        if depth < _MAX_DEPTH:
            inner = _scan_nested(payload, depth + 1)
            findings.extend(GuardFinding(f.rule, f"in hidden payload: {f.detail}") for f in inner)
    return findings


def _dedupe(findings: Iterable[GuardFinding]) -> tuple[GuardFinding, ...]:
    return tuple(dict.fromkeys(findings))


# --------------------------------------------------------------------------- public API

def inspect_untrusted(
    text: str, *, source: UntrustedSource, policy: GuardPolicy = DEFAULT_POLICY
) -> GuardVerdict:
    """Inspect untrusted ``text`` from ``source``; return the verdict with the sanitised text."""
    if type(text) is not str:
        raise InvalidRequest(f"untrusted text must be a str, not {type(text).__name__}")
    source = UntrustedSource(source)
    visible = strip_invisible(text)
    skel = Skeleton.of(visible.text)
    findings, edits = _marker_scan(visible.text, skel)
    findings.extend(_hidden_findings(visible, depth=0))
    findings.extend(_language_scan(visible.text, skel, depth=0))
    unique = _dedupe(findings)
    return GuardVerdict(
        source=source,
        action=policy.action_for(source, unique),
        findings=unique,
        text=_apply(visible.text, edits),
    )


def sanitise(text: str) -> str:
    """Only the neutralising rewrite of ``inspect_untrusted`` (no language detection)."""
    visible = strip_invisible(text)
    _, edits = _marker_scan(visible.text, Skeleton.of(visible.text))
    return _apply(visible.text, edits)


def ensure_not_blocked(verdict: GuardVerdict) -> GuardVerdict:
    """Return ``verdict`` unless it is BLOCK, in which case raise ``InjectionBlocked``."""
    if verdict.action is GuardAction.BLOCK:
        rules = [r for r in verdict.rules]
        raise InjectionBlocked(
            f"the injection guard blocked the {verdict.source} (rules: {', '.join(rules)}); "
            "rephrase the request without instructions aimed at the assistant's configuration",
            source=str(verdict.source),
            rules=rules,
        )
    return verdict


def delimit(verdict: GuardVerdict) -> str:
    """Render the verdict's text as a delimited untrusted block that its content cannot close.

    The text is sanitised again here, so a hand-built verdict cannot smuggle a closing tag;
    a BLOCK verdict never reaches a prompt (``InjectionBlocked``).
    """
    ensure_not_blocked(verdict)
    source = UntrustedSource(verdict.source)
    return f'<untrusted source="{source}">\n{sanitise(verdict.text)}\n</untrusted>'
