"""Invisible-character stripping and the folded *skeleton* the injection guard's rules run on."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

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
class Visible:
    text: str
    stripped: tuple[str, ...]  # code points removed, as "U+XXXX"
    hidden_payloads: tuple[str, ...]  # decoded tag / variation-selector payloads


def strip_invisible(text: str) -> Visible:
    if text.isascii():
        return Visible(text, (), ())
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
    return Visible("".join(out), tuple(stripped), tuple(p for p in payloads if p.strip()))


def _decode_variation_selectors(run: str) -> str:
    """Bytes smuggled as variation selectors (VS1-16 -> 0-15, VS17-256 -> 16-255)."""
    data = bytes(
        ord(c) - 0xFE00 if ord(c) <= 0xFE0F else ord(c) - 0xE0100 + 16 for c in run
    )
    return data.decode("utf-8", errors="replace")



# --------------------------------------------------------------------------- the skeleton

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
    # small capitals (NFKD leaves them alone): "ɪɢɴᴏʀᴇ ᴘʀᴇᴠɪᴏᴜꜱ ɪɴꜱᴛʀᴜᴄᴛɪᴏɴꜱ"
    "ᴀ": "a", "ʙ": "b", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ꜰ": "f", "ғ": "f", "ɢ": "g", "ʜ": "h",
    "ɪ": "i", "ᴊ": "j", "ᴋ": "k", "ʟ": "l", "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p", "ǫ": "q",
    "ꜱ": "s", "ᴛ": "t", "ᴜ": "u", "ᴠ": "v", "ᴡ": "w", "ʏ": "y", "ᴢ": "z",
    # punctuation our markers are built from
    "‹": "<", "〈": "<", "⟨": "<", "˂": "<", "ᐸ": "<",
    "›": ">", "〉": ">", "⟩": ">", "˃": ">", "ᐳ": ">",
    "ǀ": "|", "∣": "|", "⁄": "/", "∕": "/", "∶": ":", "꞉": ":",
    "’": "'", "‘": "'", "ʼ": "'", "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "−": "-",
}

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
class Skeleton:
    """Detection view of a text; ``origin[k]`` is the text index skeleton char ``k`` came from."""

    text: str
    origin: tuple[int, ...] | None  # None: identity (ASCII input)

    @classmethod
    def of(cls, text: str) -> Skeleton:
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

