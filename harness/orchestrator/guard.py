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
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any, Final

from harness.errors import ConfigError, InjectionBlocked, InvalidRequest


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


# --------------------------------------------------------------------------- invisible text

_HIDDEN_CHAR = re.compile(
    "[\u00ad\u034f\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
    "\U000e0000-\U000e007f]"
)
_VARIATION_RUN = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef]{2,}")
_TAG_RUN = re.compile("[\U000e0000-\U000e007f]+")
# A subdivision flag (England, Scotland, Wales): black flag, 2-7 tag letters/digits, cancel tag.
_FLAG_TAGS = re.compile("\U0001f3f4[\U000e0030-\U000e0039\U000e0061-\U000e007a]{2,7}\U000e007f")
_JOINERS = frozenset("\u200c\u200d")
_DIRECTION_MARKS = frozenset("\u200e\u200f")
_RTL_LETTER = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc]")


def _joins_script(text: str, i: int) -> bool:
    """ZWJ/ZWNJ between two complex-script letters or two emoji is orthography, not smuggling."""
    if i == 0 or i + 1 >= len(text):
        return False
    before, after = ord(text[i - 1]), ord(text[i + 1])

    def complex_script(cp: int) -> bool:
        return 0x0600 <= cp <= 0x0DFF or 0x0F00 <= cp <= 0x109F or 0xFB50 <= cp <= 0xFDFF

    def emoji(cp: int) -> bool:
        return cp >= 0x1F000 or 0x2600 <= cp <= 0x27BF or cp == 0xFE0F

    return (complex_script(before) and complex_script(after)) or (emoji(before) and emoji(after))


@dataclass(frozen=True)
class _Visible:
    text: str
    stripped: tuple[str, ...]  # code points removed, as "U+XXXX"
    hidden_payloads: tuple[str, ...]  # decoded tag / variation-selector payloads


def _strip_invisible(text: str) -> _Visible:
    if text.isascii():
        return _Visible(text, (), ())
    payloads: list[str] = []
    stripped: list[str] = []

    def drop_variation_run(m: re.Match[str]) -> str:
        payloads.append(_decode_variation_selectors(m.group()))
        stripped.append("variation-selector run")
        return "\ufe0f" if m.group()[0] == "\ufe0f" else ""  # keep emoji presentation

    text = _VARIATION_RUN.sub(drop_variation_run, text)
    flags = [m.span() for m in _FLAG_TAGS.finditer(text)]
    for run in _TAG_RUN.finditer(text):
        if not any(a <= run.start() and run.end() <= b for a, b in flags):
            payloads.append("".join(chr(ord(c) - 0xE0000) for c in run.group()
                                    if 0xE0020 <= ord(c) <= 0xE007E))
    has_rtl = _RTL_LETTER.search(text) is not None
    out: list[str] = []
    pos = 0
    for m in _HIDDEN_CHAR.finditer(text):
        i, ch = m.start(), m.group()
        kept = (
            (ch in _JOINERS and _joins_script(text, i))
            or (ch in _DIRECTION_MARKS and has_rtl)
            or any(a <= i < b for a, b in flags)
        )
        if kept:
            continue
        out.append(text[pos:i])
        pos = i + 1
        if not (i == 0 and ch == "\ufeff"):  # a leading byte-order mark is an encoding artefact
            stripped.append(f"U+{ord(ch):04X}")
    out.append(text[pos:])
    return _Visible("".join(out), tuple(stripped), tuple(p for p in payloads if p.strip()))


def _decode_variation_selectors(run: str) -> str:
    """Bytes smuggled as variation selectors (VS1-16 -> 0-15, VS17-256 -> 16-255)."""
    data = bytes(
        ord(c) - 0xFE00 if ord(c) <= 0xFE0F else ord(c) - 0xE0100 + 16 for c in run
    )
    return data.decode("utf-8", errors="replace")


# --------------------------------------------------------------------------- rule tables
# Every pattern runs on the skeleton: lower case, lookalikes folded, line breaks unified.

_LINE_BREAKS: Final[frozenset[str]] = frozenset("\r\x0b\x0c\x85\u2028\u2029")
_CONFUSABLES: Final[dict[str, str]] = {
    # Cyrillic (after casefold)
    "а": "a", "в": "b", "е": "e", "і": "i", "ј": "j", "к": "k", "м": "m", "н": "h",
    "о": "o", "п": "n", "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s",
    "ԁ": "d", "һ": "h", "ӏ": "l", "ԛ": "q", "ԝ": "w", "ь": "b", "ѡ": "w",
    # Greek (after casefold)
    "α": "a", "β": "b", "γ": "y", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v",
    "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ω": "w",
    # Latin lookalikes NFKD leaves alone
    "ɡ": "g", "ı": "i", "ȷ": "j", "ɩ": "i", "ʀ": "r",
    # punctuation our markers are built from
    "‹": "<", "〈": "<", "⟨": "<", "˂": "<", "ᐸ": "<",
    "›": ">", "〉": ">", "⟩": ">", "˃": ">", "ᐳ": ">",
    "ǀ": "|", "∣": "|", "⁄": "/", "∕": "/", "∶": ":", "꞉": ":",
    "’": "'", "‘": "'", "ʼ": "'", "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "−": "-",
}
# Letters that, inside an otherwise Latin word, only make sense as a disguise.
_LOOKALIKE_TRIGGERS: Final[frozenset[str]] = frozenset(
    {c for c in "авеіјкмнопрстухѕԁһӏԛԝьѡ"}
    | {c.upper() for c in "авеіјкмнорстухѕ"}
    | set("οΟιΙνΝρΡΑΒΕΗΚΜΤΥΧɡıȷɩ")
)
_LEET = str.maketrans("013457@$", "oieastas")
_NON_LETTERS = re.compile(r"[^a-z]+")
_WORD = re.compile(r"[^\W\d_]+")


def _mixed_script_words(text: str) -> list[str]:
    """Words mixing ASCII letters with Cyrillic/Greek lookalikes (at most five, sorted)."""
    mixed = {
        w for w in _WORD.findall(text)
        if not w.isascii()
        and any(c.isascii() for c in w)
        and any(c in _LOOKALIKE_TRIGGERS for c in w)
    }
    return sorted(mixed)[:5]


@dataclass(frozen=True)
class _Marker:
    """A marker to make inert: ``escape`` is inserted where group ``at`` starts."""

    rule: str
    label: str
    pattern: re.Pattern[str]
    escape: str


def _untrusted_word() -> str:
    return r"[\s._-]*".join("untrusted")


_ROLE_NAMES = (
    r"(?:system|user|assistant|developer|tool|human|im_start|im_end|instructions?|sys"
    r"|tool_call|tool_result|function_call|function_result)"
)
_MARKERS: Final[tuple[_Marker, ...]] = (
    # Lookaheads keep matches one character wide, so overlapping markers ({{{) are all escaped.
    _Marker("template.syntax", "Jinja opener", re.compile(r"\{(?=(?P<at>[{%#]))"), " "),
    _Marker("template.delimiter", "delimiter tag",
            re.compile(r"<(?=(?P<at>\s*/?\s*" + _untrusted_word() + "))"), "\\"),
    _Marker("role.chat_template_token", "chat-template token",
            re.compile(r"<(?=(?P<at>\s*\|\s*[\w▁.-]{1,40}\s*\|\s*>))"), "\\"),
    _Marker("role.inst_tag", "instruction tag",
            re.compile(r"\[(?=(?P<at>\s*/?\s*inst\s*\]))"), "\\"),
    _Marker("role.inst_tag", "instruction tag",
            re.compile(r"<(?=(?P<at><\s*/?\s*sys\s*>>))"), "\\"),
    _Marker("role.xml_tag", "role tag",
            re.compile(r"<(?=(?P<at>\s*/?\s*" + _ROLE_NAMES + r"\b[^<>\n]{0,40}>))"), "\\"),
    _Marker("role.line_prefix", "role line prefix",
            re.compile(r"(?m)^[ \t>*_#-]*(?=(?P<at>(?:system|assistant|developer|human)"
                       r"[ \t]*(?:\*\*|__)?[ \t]*:))"), "\\"),
    _Marker("role.line_prefix", "role line prefix",
            re.compile(r"(?m)^[ \t>*]*#+[ \t]*(?=(?P<at>user[ \t]*:))"), "\\"),
)

_SSTI: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    ("template.injection", re.compile(
        r"\{\{[^}]{0,200}?(?:__\w+__|\b(?:config|self|request|lipsum|cycler|joiner|namespace"
        r"|url_for|get_flashed_messages|popen|subprocess|import)\b)")),
    ("template.injection", re.compile(r"\{%-?\s*(?:raw|endraw|include|import|from|extends)\b")),
)

_URL = (
    r"(?P<url>(?:(?P<scheme>https?)[ \t]*:[ \t]*//|(?<![\w:/])//(?=[\w-]+\.))"
    r"[^\s)\"']+)"
)
_EXFIL_URLS: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    ("exfiltration.markdown_image", re.compile(r"!\s*\[[^\]\n]{0,300}\]\s*\(\s*<?\s*" + _URL)),
    ("exfiltration.markdown_image", re.compile(
        r"<\s*img\b[^>]{0,300}?\bsrc\s*=\s*[\"']?\s*" + _URL)),
    ("exfiltration.markdown_link", re.compile(_URL)),
)
_PLACEHOLDER = re.compile(r"\{[^}]*\}|\$\{|\$\(|%7b|\[[a-z_ ]{2,}\]|<[a-z_ ]{2,}>")
_DATA_PARAM = re.compile(
    r"[?&](?:data|secret|secrets|password|passwd|pwd|payload|exfil|leak|conversation|convo"
    r"|history|prompt|memory|cookie|cookies|creds|credentials|ssn|chat|stolen|dump|env|environ)="
)
_ENCODED_SEGMENT = re.compile(r"[a-z0-9+/=_-]{32,}")


def _url_is_exfiltration(rule: str, url: str) -> bool:
    """Images leak on render, so any query or encoded data counts; links need data markers."""
    if _PLACEHOLDER.search(url) or _DATA_PARAM.search(url):
        return True
    if rule == "exfiltration.markdown_image":
        return "?" in url or _ENCODED_SEGMENT.search(url) is not None
    return False


def _rx(*alternatives: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{a})" for a in alternatives))


_FILL = r"(?:[\w'-]+\W+)"  # one filler word with its separator
_NOT_NEGATED = r"(?<!not\s)(?<!never\s)(?<!n't\s)(?<!dont\s)"
_SENTENCE = r"(?:[^\n;.]|\.(?=\S))"  # a dot inside a file name does not end the sentence

_OV_VERB = r"(?:ignore|disregard|forget|override|bypass|discard|abandon|neglect|overrule|nullify)"
_OV_QUAL = (
    r"(?:previous|prior|above|earlier|preceding|foregoing|former|original|initial|existing|system"
    r"|developer|safety|hidden|your|any\s+(?:previous|prior|other)|all\s+(?:of\s+)?(?:the\s+|your\s+)?"
    r"(?:previous|prior|above|earlier|preceding|other|safety|existing))"
)
_OV_NOUN = (
    r"(?:instructions?|prompts?|rules|directions|directives|guidelines|commands|orders|constraints"
    r"|guardrails|safeguards|restrictions|programming|policies|guidance|context|messages"
    r"|limitations|filters|ethics|training)"
)
_EX_VERB = (
    r"(?:reveal|print|show|output|repeat|display|leak|dump|echo|disclose|expose|recite|return"
    r"|share|copy|paste|translate|spell\s+out|write\s+out|write\s+down|list|give|tell|send|provide"
    r"|read\s+(?:me|back|out)|summari[sz]e|paraphrase|rephrase)"
)
_EX_ADJ = r"(?:full|entire|complete|exact|verbatim|whole|current|actual|real)"
_EX_KEY = r"(?:system|hidden|secret|initial|developer|internal|confidential|pre-?)"
_LOOT_PATH = (
    r"(?:~/\.ssh\b|\.ssh/|\bid_(?:rsa|dsa|ecdsa|ed25519)\b|/etc/(?:passwd|shadow|sudoers|gshadow)\b"
    r"|\.aws/credentials\b|(?<![\w.])\.env(?:\.\w+)?\b|\.netrc\b|\.git-credentials\b|\.pypirc\b"
    r"|\.npmrc\b|\bkubeconfig\b|\.kube/config\b|\.docker/config\.json\b|/proc/self/environ\b"
    r"|\bwallet\.dat\b|\.pgpass\b|\.bash_history\b|\bcredentials\.json\b"
    r"|\bsecrets\.(?:ya?ml|json|toml)\b)"
)
_READ_VERB = (
    r"(?:read|cat|print|dump|send|upload|post|exfiltrate|leak|reveal|output|display|show|type"
    r"|e-?mail|forward|transmit|copy|attach|include|encode|curl|wget|scp|fetch|open|give|share"
    r"|paste|list|grep|tail|head|less|more|base64|tar|zip|extract)"
)
_REVEAL_VERB = (
    r"(?:print|dump|send|reveal|leak|exfiltrate|upload|post|e-?mail|output|display|show|give|share"
    r"|forward|tell|expose|disclose|echo|steal|harvest|grab|paste|write\s+(?:down|out))"
)
_COLLECT_VERB = (
    r"(?:read|list|collect|gather|fetch|retrieve|extract|cat|copy|include|return|find"
    r"|search\s+for|look\s+up)"
)
_LOOT_QUAL = (
    r"(?:(?:stored|saved|system|server|admin|aws|openai|anthropic|production|prod|database|db"
    r"|environment|private|secret|user|users'?|api|ssh|cloud|github|gcp|azure|stripe|service|root"
    r"|master|signing|deploy|access|session|auth|oauth)\s+){0,3}"
)
_LOOT_NOUN = (
    r"(?:api[\s_-]?keys?|secrets?|credentials|passwords?|passphrases?|environment\s+variables"
    r"|env\s+vars?|private\s+keys?|ssh\s+keys?|access\s+keys?"
    r"|(?:api|access|auth|oauth|session|github|bearer|refresh|secret|jwt|slack|stripe)"
    r"\s+(?:tokens?|cookies?|keys?))"
)
_NOT_UI = (
    r"(?!\s+(?:field|input|box|form|reset|policy|policies|strength|manager|rotation|requirements?"
    r"|hash|hashing|format|length|expiry|expiration|page|tab|section|settings|screen|menu"
    r"|documentation|docs|naming|scanner|scanning|management|best\s+practices))"
)
_SEND_VERB = (
    r"(?:send|post|upload|forward|transmit|exfiltrate|e-?mail|leak|submit|pipe|report|relay"
    r"|deliver|beam)"
)
_SENSITIVE = (
    r"(?:secrets?|credentials|api[\s_-]?keys?|(?:api|access|auth|bearer|session)\s+tokens?"
    r"|passwords?|conversation|(?:chat|message|conversation)\s+(?:history|log|transcript)"
    r"|system\s+prompt|your\s+instructions|environment\s+variables|env\s+vars?|\.env|ssh\s+keys?"
    r"|private\s+keys?|customer\s+(?:data|records|list)|personal\s+data|user\s+data|pii"
    r"|all\s+(?:the\s+)?(?:files|data|records|documents|emails))"
)
_DESTINATION = (
    r"(?:https?://|www\.|[\w.+-]+@[\w-]+\.[a-z]|(?:the\s+|this\s+|my\s+|our\s+|an?\s+|their\s+)?"
    r"(?:following\s+|external\s+|remote\s+|attacker'?s?\s+|below\s+|new\s+)?"
    r"(?:url|endpoint|webhook|server|address|domain|host|bucket|pastebin|gist|ip|ngrok|discord"
    r"|telegram)\b)"
)
_DESTROY_VERB = (
    r"(?:delete|remove|erase|wipe|destroy|drop|truncate|purge|shred|nuke|overwrite|format"
    r"|corrupt|empty)"
)
_DESTROY_TARGET = (
    r"(?:files|folders|directories|dirs|data|databases?|tables|records|rows|users|accounts"
    r"|backups|logs|repos|repositories|branches|emails|messages|documents|disks?|drives?|volumes"
    r"|buckets|objects|snapshots|history|commits|contents|customers|projects|servers|instances"
    r"|vms|containers|images|secrets|artifacts|workspace|filesystem|file\s+system"
    r"|home\s+directory|hard\s+drive)"
)
_SYSTEM_DIR = r"/(?:etc|usr/(?!local/)|bin|sbin|boot|sys|proc|root|lib|var/spool/cron|var/lib)/"

_LANGUAGE: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    ("override.ignore_instructions", _rx(
        rf"\b{_OV_VERB}\b\W+{_FILL}{{0,3}}?{_OV_QUAL}\b\W*{_FILL}{{0,2}}?{_OV_NOUN}\b",
        r"\b(?:ignore|disregard|forget)\s+(?:all\s+(?:of\s+)?)?(?:everything|anything|all|what)\b"
        r"(?:\W+[\w'-]+){0,5}?\W+(?:above|before|previously|earlier|so\s+far|until\s+now|prior)\b",
        r"\b(?:do\s+not|don'?t|never|stop|no\s+longer)\s+(?:follow|obey|adhere\s+to|comply\s+with"
        rf"|listen\s+to|respect|apply)(?:ing)?\s+(?:to\s+)?{_FILL}{{0,2}}?{_OV_QUAL}\b\W*"
        rf"{_FILL}{{0,2}}?{_OV_NOUN}\b",
        rf"\b(?:{_OV_VERB}|set\s+aside|put\s+aside|throw\s+out)\b\W+{_FILL}{{0,3}}?{_OV_NOUN}\b"
        r"(?:\W+[\w'-]+){0,5}?\W+(?:earlier|before|previously|above|so\s+far|until\s+now"
        r"|at\s+the\s+start)\b",
        rf"\b(?:your|the|all|any)\s+{_FILL}{{0,2}}?{_OV_NOUN}\s+(?:no\s+longer\s+apply|(?:do\s+not"
        r"|don't)\s+apply|(?:are|is)\s+(?:now\s+)?(?:void|null|cancell?ed|revoked|suspended|lifted"
        r"|disabled|lifted))\b",
        r"\bsafety\s+(?:protocols?|filters?|guidelines?|rules|measures)\s+(?:are\s+|have\s+been\s+)?"
        r"(?:now\s+)?(?:disabled|off|lifted|suspended|removed)\b",
    )),
    ("override.new_instructions", _rx(
        r"\bsystem\s+override\b|\boverride\s+mode\b",
        r"\b(?:new|updated|revised|real|actual|true|overriding|override|secret|hidden|priority|admin"
        r"|emergency)\s+(?:system\s+)?(?:instructions?|directives?|orders|prompt)\s*:",
        r"\byour\s+(?:new|real|actual|true|updated|only)\s+(?:task|goal|objective|instructions?|role"
        r"|purpose|mission|job)\s+(?:is|are|will\s+be|now)\b",
    )),
    ("override.role_reassignment", _rx(
        rf"\byou\s+are\s+(?:now|no\s+longer)\b\W+{_FILL}{{0,3}}?(?:dan|unrestricted|unfiltered"
        r"|uncensored|jailbroken|evil|unaligned|rogue|root|god|bound|restricted)\b",
        r"\bfrom\s+now\s+on\b[^.\n]{0,40}\byou\s+(?:are|will\s+be|will\s+act\s+as|shall\s+be)\s+"
        r"(?:an?\s+|the\s+)?(?:[\w-]+\s+){0,2}?(?:dan|ai|assistant|model|chatbot|bot|persona"
        r"|character|unrestricted|unfiltered|jailbroken|uncensored)\b",
        r"\bfrom\s+now\s+on\b[^.\n]{0,60}\b(?:no\s+(?:restrictions|rules|limits|filters|guidelines)"
        r"|not\s+bound|ignore\s+(?:all|your|any))",
        r"\b(?:act|behave|respond|roleplay|role-play|pose)\s+as\s+(?:if\s+you\s+(?:are|were)\s+)?"
        r"(?:an?\s+|the\s+)?(?:[\w-]+\s+){0,2}?(?:dan|unrestricted|unfiltered|uncensored|jailbroken"
        r"|evil|unaligned)\b",
        r"\b(?:act|behave|respond)\s+as\s+(?:an?\s+)?(?:ai|assistant|model|chatbot)\s+with(?:out)?\s+"
        r"(?:no\s+|any\s+)?(?:restrictions|rules|filters|guidelines|limits)",
        r"\b(?:pretend|imagine|suppose)\b[^.\n]{0,60}\b(?:no|without|free\s+(?:of|from))\s+(?:any\s+)?"
        r"(?:restrictions|rules|filters|guidelines|limits|limitations|content\s+polic(?:y|ies)"
        r"|safety\s+(?:rules|guidelines|filters))",
        r"\b(?:enable|enter|activate|switch\s+to|turn\s+on|engage)\s+(?:the\s+)?(?:dan|god|jailbreak"
        r"|jailbroken|unrestricted|sudo)\s+mode\b",
        r"\bdo\s+anything\s+now\b",
    )),
    ("override.addressed_to_model", _rx(
        r"\b(?:note|message|instructions?|attention|important|notice|memo)\s+(?:to|for)\s+"
        r"(?:the\s+|any\s+|all\s+)?(?:ai|llm|assistant|language\s+model|chatbot|agent|model|gpt"
        r"|claude|copilot)s?\b",
        r"\bif\s+you\s+are\s+an?\s+(?:ai|llm|language\s+model|ai\s+assistant|ai\s+agent"
        r"|automated\s+(?:agent|system|assistant)|chatbot|assistant|bot|model)\b",
        r"\b(?:dear|attention|attn)\s*[,:]?\s+(?:ai|llm|assistant|chatgpt|claude|gpt|copilot|agent"
        r"|bot|language\s+model)\b",
        r"\bai\s+(?:agents?|assistants?|models?)\s+(?:reading|processing|summari[sz]ing|parsing)\s+"
        r"(?:this|these)\b",
        r"\bwhen\s+(?:summari[sz]ing|processing|reading|parsing|analy[sz]ing)\s+(?:this|these)\s+"
        r"(?:document|page|email|file|text|message|content|results?)\s*,?\s+(?:you\s+)?(?:must"
        r"|should|need\s+to|will|are\s+to|always)\b",
    )),
    ("extraction.system_prompt", _rx(
        rf"\b{_EX_VERB}\b\W+(?:me\W+|us\W+)?{_FILL}{{0,3}}?your\s+(?:{_EX_ADJ}\s+)*(?:"
        rf"(?:{_EX_KEY}|original)[\s-]*(?:{_EX_KEY}[\s-]*)*(?:prompts?|instructions|message|directives"
        r"|guidelines|rules|preamble)|prompts?|instructions|directives|guidelines|rules|preamble)\b",
        rf"\b{_EX_VERB}\b\W+(?:me\W+|us\W+)?{_FILL}{{0,3}}?(?:the|this|that|its|these|those)\s+"
        rf"(?:{_EX_ADJ}\s+)*{_EX_KEY}[\s-]*(?:{_EX_KEY}[\s-]*)*(?:prompts?|instructions|message"
        r"|directives|preamble)\b",
        rf"\bwhat\s+(?:is|are|were|was)\s+(?:your|the)\s+(?:{_EX_ADJ}\s+)*(?:{_EX_KEY}[\s-]*)+"
        r"(?:prompts?|instructions|message|rules)\b",
        r"\bwhat\s+(?:are|were)\s+your\s+(?:instructions|rules|directives)\b",
        r"\b(?:what|which)\s+(?:instructions|rules|directives|guidelines|prompt)\s+(?:were|have|did)"
        r"\s+you\s+(?:been\s+)?(?:given|told|receive)",
        r"\bwhat\s+(?:did\s+|has\s+)?(?:the\s+|your\s+)?(?:developer|system|operator|creator"
        r"|admin)s?\s+(?:tell|told|instruct(?:ed)?|said\s+to)\s+you\b",
        rf"\b{_EX_VERB}\b\W+(?:me\W+)?(?:everything|all)\s+(?:that\s+is\s+)?(?:in|from)\s+your\s+"
        r"(?:context|memory|context\s+window|prompt)\b",
        r"\b(?:repeat|print|output|recite|copy|echo|type)\s+(?:back\s+|out\s+)?(?:all\s+|everything\s+"
        r"|the\s+)?(?:(?:text|words|content|lines|message|messages|everything|tokens)\s+)?(?:above"
        r"|before\s+this|preceding|prior\s+to\s+this)\b(?!\s+(?:table|list|code|example|output"
        r"|figure|steps?|diagram|chart|section|paragraph|results?|image|command|snippet|query"
        r"|function|script|file|values?|numbers|data))",
        r"\b(?:starting|beginning|begin|start)\s+with\s+[\"'`]?you\s+are\b",
        r"\b(?:system|initial|hidden)\s+prompt\b[^.\n]{0,40}\b(?:verbatim|word\s+for\s+word"
        r"|in\s+full|in\s+a\s+code\s*block)",
    )),
    ("exfiltration.secrets", _rx(
        rf"{_NOT_NEGATED}\b{_READ_VERB}\b{_SENTENCE}{{0,80}}?{_LOOT_PATH}",
        rf"{_NOT_NEGATED}\b{_REVEAL_VERB}\b\W+(?:me\W+|us\W+)?{_FILL}{{0,2}}?(?:all|every|your|any"
        rf"|the)\s+(?:of\s+)?(?:the\s+|your\s+)?{_LOOT_QUAL}{_LOOT_NOUN}\b{_NOT_UI}",
        rf"{_NOT_NEGATED}\b{_COLLECT_VERB}\b\W+(?:me\W+)?(?:all|every|your)\s+(?:of\s+)?"
        rf"(?:the\s+|your\s+)?{_LOOT_QUAL}{_LOOT_NOUN}\b{_NOT_UI}",
        rf"\bwhat\s+(?:is|are)\s+(?:your|the)\s+{_LOOT_QUAL}(?:api[\s_-]?keys?|passwords?|secrets?"
        r"|credentials|access\s+keys?|private\s+keys?|(?:api|access|auth|bearer|secret)\s+tokens?)"
        rf"\b{_NOT_UI}",
        r"\bprintenv\s*\||\benv\s*\|\s*(?:curl|nc|wget|base64)|json\.stringify\(\s*process\.env\s*\)"
        r"|\$\(\s*(?:printenv|env)\s*\)",
    )),
    ("exfiltration.tool_args", _rx(
        r"\b(?:curl|wget|nc|ncat|netcat|invoke-webrequest|iwr|invoke-restmethod|irm|scp|rsync|ftp)\b"
        r"[^\n]{0,200}?(?:\$\(|@(?:~|/etc|/root|/home|\.env|\.ssh|/proc)|--data-binary\s+@"
        r"|(?:--upload-file\s+|--post-file=?\s*|<\s*)\S*(?:\.env|\.ssh|id_rsa|passwd|shadow"
        r"|credentials))",
        r"\b(?:cat|type|printenv|env|set|history|base64|tar|zip)\b[^\n|]{0,120}\|\s*(?:curl|wget|nc"
        r"|ncat|netcat)\b",
        rf"\b{_SEND_VERB}\b{_SENTENCE}{{0,60}}?\b{_SENSITIVE}(?:{_SENTENCE}{{0,80}}?\b|\s+)"
        rf"(?:to|into|at|via)\s+{_DESTINATION}",
        r"[\"']?(?:tool|tool_name|function|name|action|call)[\"']?\s*:\s*[\"'](?:http\w*|fetch\w*"
        r"|web_?\w*|send\w*|e?mail\w*|post\w*|upload\w*|curl|wget|shell|bash|exec\w*|run_?command"
        r"|run_?shell|write_?file|delete\w*|browse\w*|request\w*)[\"'][\s\S]{0,300}?"
        rf"(?:https?://|[\w.+-]+@[\w-]+\.[a-z]|{_LOOT_PATH})",
    )),
    ("agency.tool_invocation", _rx(
        r"\b(?:call|use|invoke|run|trigger|execute)\s+(?:the\s+)?`?[\w-]*(?:http|fetch|browse|browser"
        r"|web|email|mail|webhook|request|curl|upload|send)[\w-]*`?\s+(?:tool|function|plugin|action)"
        r"\b[^\n]{0,160}?(?:https?://|[\w.+-]+@[\w-]+\.[a-z])",
    )),
    ("approval.forgery", _rx(
        r"\b(?:pre-?)?approved\s+by\s+(?:the\s+)?(?:admin|administrator|sysadmin|root|security"
        r"(?:\s+team)?|it\s+security|operator|owner|system\s+owner|supervisor|ciso|cto|ceo|cfo"
        r"|human\s+reviewer|on-?call|user)\b",
        r"\b(?:this|the)\s+(?:request|action|task|operation|command|change|deletion|transfer"
        r"|tool\s+call|step|payment|deployment|wire|purchase|refund|export|transaction)\s+(?:is"
        r"|has\s+been|was|have\s+been)\s+(?:already\s+)?(?:pre-?)?(?:approved|authori[sz]ed|cleared"
        r"|signed\s+off|whitelisted|allowlisted)\b",
        r"\b(?:admin|administrator|security\s+team|operator|owner|human|user|manager|supervisor)\s+"
        r"(?:has\s+)?(?:already\s+)?(?:approved|authori[sz]ed|signed\s+off\s+on|pre-?approved)\s+"
        r"(?:this|it|the\s+(?:request|action|deletion|transfer|operation|payment|change|command))\b",
        r"\b(?:user|admin|owner|customer|operator)\s+(?:has\s+)?(?:already\s+)?(?:consented|agreed)"
        r"\s+to\s+(?:this|it|the\s+(?:request|action|deletion|transfer|operation|payment))\b",
        r"\bapproval\s+(?:granted|confirmed|received|given|obtained)\b"
        r"|\bapproval[_\s-]?(?:token|code|id)\s*[:=]",
        r"[\"']?(?:approved|is_approved|human_approved|approval_granted|pre_approved|authorized"
        r"|auto_approve|skip_approval)[\"']?\s*[:=]\s*[\"']?(?:true|yes|1)\b",
        r"[\"']?(?:requires?_approval|needs_approval|require_confirmation|human_in_the_loop)[\"']?"
        r"\s*[:=]\s*[\"']?(?:false|no|0)\b",
        r"[\"'](?:approved_by|approver|approval_status|approval|authorized_by|approval_id"
        r"|approval_signature)[\"']\s*:",
        r"(?<!to\s)(?<!cannot\s)(?<!can't\s)(?<!never\s)(?<!not\s)\b(?:skip|bypass|circumvent"
        r"|override|ignore|disable|suppress)\s+(?:the\s+|any\s+|all\s+)?(?:human\s+|manual\s+"
        r"|user\s+|admin\s+)?(?:approvals?|confirmations?|sign-?offs?|approval\s+(?:gate|step"
        r"|check|process|requirement)|review\s+step)\b",
        r"\b(?:no|without)\s+(?:need\s+(?:for|of)\s+)?(?:further\s+|additional\s+|human\s+"
        r"|manual\s+|user\s+|more\s+)?(?:approval|confirmation|sign-?off|authori[sz]ation)\s+"
        r"(?:is\s+)?(?:needed|required|necessary)\b",
        r"\b(?:do\s+not|don'?t|no\s+need\s+to)\s+(?:ask|wait)\s+(?:for|the\s+user\s+for)\s+"
        r"(?:human\s+|user\s+)?(?:approval|confirmation|permission)",
        r"\[\s*approved\s*\]",
    )),
    ("agency.destructive", _rx(
        rf"{_NOT_NEGATED}\b{_DESTROY_VERB}\s+(?:all|every|each|the\s+entire|entire|the\s+whole"
        r"|whole)\b(?:\s+(?:of\s+)?(?:the\s+|your\s+|my\s+|our\s+|their\s+|this\s+)?[\w/.~*-]+)"
        rf"{{0,3}}?\s+{_DESTROY_TARGET}\b",
        rf"{_NOT_NEGATED}\b{_DESTROY_VERB}\s+(?:absolutely\s+)?everything\b",
        r"\b(?:erase|wipe|destroy|nuke|shred)\s+(?:the\s+|our\s+|your\s+)?(?:repository|repo"
        r"|database|db|disk|drive|backups?|server|bucket|cluster)\b",
        rf"\b(?:overwrite|replace|truncate|delete|remove|rm)\s+{_SYSTEM_DIR}",
        rf"\b{_DESTROY_VERB}\s+(?:the\s+)?(?:production|prod|live)\s+(?:database|db|cluster|server"
        r"|environment|data)\b",
        r"\brm\s+-(?:[a-z]*r[a-z]*f|[a-z]*f[a-z]*r)[a-z]*\s+(?:/(?:\s|$|\*)|~/?(?:\s|$)|\*"
        r"|\$home|--no-preserve-root|/(?:etc|usr|var|home|root|bin|boot|opt|srv)\b)",
        r"\b(?:drop\s+(?:table|database|schema)|truncate\s+table)\s+(?:if\s+exists\s+)?[\w.\"`]+"
        r"\s*(?:;|cascade)|\bdelete\s+from\s+[\w.\"`]+\s*;",
        r"\bmkfs(?:\.\w+)?\s+/dev/|\bdd\s+if=[^\n]{0,60}\bof=/dev/(?:sd|hd|nvme|xvd|disk)"
        r"|:\(\)\s*\{\s*:\s*\|\s*:\s*&\s*\}\s*;\s*:|\bchmod\s+(?:-r\s+)?777\s+/(?:\s|$)"
        r"|\bchown\s+-r\s+\S+\s+/(?:\s|$)",
        r"\b(?:write|append|save|overwrite|modify|echo|copy|move|drop|create)\b[^\n]{0,60}?"
        rf"(?:\b(?:to|into|in|under|inside)\s+|>>?\s*){_SYSTEM_DIR}",
        rf"{_NOT_NEGATED}\b(?:disable|turn\s+off|stop|kill|uninstall|bypass|deactivate)\s+"
        r"(?:the\s+|all\s+)?(?:firewall|audit\s+log(?:s|ging)?|logging|antivirus|anti-virus"
        r"|monitoring|security\s+(?:checks|controls|scanners?|monitoring|alerts)|sandbox(?:ing)?"
        r"|guardrails?|safety\s+(?:checks|filters)|edr|selinux|apparmor|2fa|mfa|two-factor)\b",
        r"\bgit\s+push\s+(?:-f|--force)\s+(?:\w+\s+)?(?:main|master|prod|production)\b",
        r"\b(?:transfer|wire|send|move)\s+all\s+(?:of\s+)?(?:the\s+|your\s+|my\s+)?(?:funds|money"
        r"|balance|btc|bitcoin|eth|crypto|savings)\b",
        r"\b(?:grant|give)\s+(?:me|us|the\s+user|everyone|all\s+users|this\s+account|anyone)\s+"
        r"(?:full\s+)?(?:admin|root|owner|superuser|sudo)\s+(?:access|rights|privileges|permissions"
        r"|role)",
        r"\b(?:shutdown|halt|poweroff|reboot)\s+(?:-[hr]\s+)?now\b|\bkill\s+-9\s+-1\b"
        r"|\bsudo\s+(?:rm|dd|mkfs|chmod\s+-r|chown\s+-r|userdel|passwd|shutdown|reboot)\b",
        r"\bcrontab\b[^\n]{0,60}\b(?:curl|wget|bash|nc)\b",
    )),
)

# Letters-only (and de-leeted) spellings: "ig nore prev ious", "1gn0re", "r.e.v.e.a.l".
_SPLIT_TOKENS: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    ("override.ignore_instructions", re.compile(
        r"(?:ignore|disregard|forget)(?:all|the|any|your|of|my)*(?:previous|prior|above|earlier"
        r"|preceding|system|safety)(?:instructions?|prompts?|rules|directions|guidelines|messages)")),
    ("extraction.system_prompt", re.compile(
        r"(?:reveal|print|show|output|repeat|display|leak|dump|tellme|giveme)(?:me)?(?:your(?:full"
        r"|entire|complete)?(?:system|initial|hidden|original|secret)?|the(?:full|entire|complete)?"
        r"(?:system|initial|hidden|secret))(?:prompt|instructions)")),
    ("override.role_reassignment", re.compile(
        r"youarenow(?:a|an|in)?(?:dan|unrestricted|unfiltered|uncensored|jailbroken|evil)"
        r"|doanythingnow|(?:dan|jailbreak|god)mode(?:enabled|activated|on)")),
    ("exfiltration.secrets", re.compile(
        r"(?:print|dump|reveal|send|leak|show|output|exfiltrate)(?:me)?(?:all|the|your)(?:env"
        r"|environment)?(?:apikeys?|secrets|credentials|passwords|environmentvariables|sshkeys?"
        r"|privatekeys?)")),
)


# --------------------------------------------------------------------------- the skeleton

_ASCII_LINE_BREAKS = str.maketrans("\r\x0b\x0c", "\n\n\n")


@lru_cache(maxsize=8192)
def _fold(ch: str) -> str:
    if ch in _LINE_BREAKS:
        return "\n"
    out: list[str] = []
    for c in unicodedata.normalize("NFKD", ch):
        if unicodedata.combining(c):
            continue
        out.extend(_CONFUSABLES.get(d, d) for d in c.casefold())
    return "".join(out)


@dataclass(frozen=True)
class _Skeleton:
    """Detection view of a text; ``origin[k]`` is the text index skeleton char ``k`` came from."""

    text: str
    origin: tuple[int, ...] | None  # None: identity (ASCII input)

    @classmethod
    def of(cls, text: str) -> _Skeleton:
        if text.isascii():
            return cls(text.lower().translate(_ASCII_LINE_BREAKS), None)
        chars: list[str] = []
        origin: list[int] = []
        for i, ch in enumerate(text):
            folded = _fold(ch)
            chars.append(folded)
            origin.extend([i] * len(folded))
        return cls("".join(chars), tuple(origin))

    def source_index(self, k: int) -> int:
        return k if self.origin is None else self.origin[k]

    def source_span(self, start: int, end: int) -> tuple[int, int]:
        return self.source_index(start), self.source_index(end - 1) + 1


# --------------------------------------------------------------------------- markers

@dataclass(frozen=True)
class _Edit:
    start: int
    end: int  # == start for an insertion
    text: str


def _marker_scan(text: str, skel: _Skeleton) -> tuple[list[GuardFinding], list[_Edit]]:
    findings: list[GuardFinding] = []
    edits: list[_Edit] = []
    s = skel.text
    for marker in _MARKERS:
        for m in marker.pattern.finditer(s):
            at = skel.source_index(m.start("at"))
            edits.append(_Edit(at, at, marker.escape))
            a, b = skel.source_span(m.start(), m.end("at"))
            findings.append(GuardFinding(marker.rule, f"{marker.label}: {_quote(text[a:b])}"))
    for rule, pattern in _SSTI:
        for m in pattern.finditer(s):
            findings.append(GuardFinding(rule, f"template expression {_quote(m.group())}"))
    for rule, pattern in _EXFIL_URLS:
        for m in pattern.finditer(s):
            if not _url_is_exfiltration(rule, m.group("url")):
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


def _language_scan(visible: str, skel: _Skeleton, depth: int) -> list[GuardFinding]:
    findings: list[GuardFinding] = []
    found: set[str] = set()
    for rule, pattern in _LANGUAGE:
        m = pattern.search(skel.text)
        if m is not None:
            findings.append(GuardFinding(rule, _quote(m.group())))
            found.add(rule)
    if not visible.isascii():
        plain = visible.lower()
        disguised = sorted(r for r, p in _LANGUAGE if r in found and p.search(plain) is None)
        if disguised:
            findings.append(GuardFinding("obfuscation.confusables", f"lookalikes hide {disguised}"))
        mixed = _mixed_script_words(visible)
        if mixed:
            findings.append(GuardFinding("obfuscation.confusables", f"mixed-script words {mixed}"))
    compact = _NON_LETTERS.sub("", skel.text.translate(_LEET))
    for rule, pattern in _SPLIT_TOKENS:
        m = pattern.search(compact)
        if m is not None and rule not in found:
            findings.append(GuardFinding(rule, f"split tokens spell {m.group()!r}"))
            findings.append(GuardFinding("obfuscation.split_tokens", f"{rule} hidden by splitting"))
            found.add(rule)
    if depth < _MAX_DEPTH:
        findings.extend(_base64_scan(visible, depth))
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
    visible = _strip_invisible(text)
    skel = _Skeleton.of(visible.text)
    findings, _ = _marker_scan(visible.text, skel)
    findings.extend(_hidden_findings(visible, depth))
    findings.extend(_language_scan(visible.text, skel, depth))
    return findings


def _hidden_findings(visible: _Visible, depth: int) -> list[GuardFinding]:
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
    visible = _strip_invisible(text)
    skel = _Skeleton.of(visible.text)
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
    visible = _strip_invisible(text)
    _, edits = _marker_scan(visible.text, _Skeleton.of(visible.text))
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
