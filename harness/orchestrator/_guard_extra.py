"""Wider nets for the injection guard: decoded views, other languages, smuggled calls, a score.

``guard._language_scan`` runs these next to the English rule tables of ``_guard_rules``:

- decoded views of the text (rot13, hex, URL escapes, HTML entities), scanned like a hidden
  payload, so an attack re-encoded with new wording is still seen by every rule;
- override and prompt-extraction phrases in German, Spanish, French, Italian, Russian,
  Chinese and Japanese, matched on an NFKC, case-folded, accent-free view (the skeleton
  maps Cyrillic to Latin lookalikes, which would garble Russian words);
- tool calls smuggled as XML or JSON, "already approved by <name>" claims, and polite
  requests for the hidden rules;
- a scored detector: weighted cues (an override verb, an instruction noun, a "previous" or
  "hidden" qualifier, an address to the model) in one sentence, in any of these languages,
  so a new wording of a known attack scores without an exact phrase.

Pure: no I/O imports.
"""

from __future__ import annotations

import codecs
import html
import re
import unicodedata
import urllib.parse
from typing import Final

__all__ = [
    "EXTRA_RULE_DESCRIPTIONS",
    "LANGUAGE_EXTRA",
    "MULTILINGUAL",
    "decoded_views",
    "plain_view",
    "scored_override",
]

EXTRA_RULE_DESCRIPTIONS: Final[dict[str, str]] = {
    "obfuscation.encoded": "a rot13, hex, URL-escaped or HTML-entity view decodes to a finding",
    "agency.smuggled_tool_call": "a tool call written as XML or JSON inside data",
    "override.scored": "override cues (verb, instruction noun, qualifier, address) add up",
}


_SMALL_CAPS: Final = str.maketrans("ᴀʙᴄᴅᴇꜰғɢʜɪᴊᴋʟᴍɴᴏᴘǫʀꜱᴛᴜᴠᴡʏᴢ", "abcdeffghijklmnopqrstuvwyz")


def plain_view(text: str) -> str:
    """NFKC, case-folded, small capitals and combining marks dropped: for words of other languages."""
    folded = unicodedata.normalize("NFKC", text).casefold().translate(_SMALL_CAPS)
    decomposed = unicodedata.normalize("NFKD", folded)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _rx(*alternatives: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{a})" for a in alternatives))


_W = r"(?:\s+\S+){0,3}?\s+"  # up to three filler words
MULTILINGUAL: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    ("override.ignore_instructions", _rx(
        # de
        r"\b(?:ignorier(?:e|en|t)?|vergiss|vergessen\s+sie|missachte(?:n)?)" + _W
        + r"(?:vorherigen|bisherigen|obigen|vorigen|fruheren|alle[nr]?)\b[^.\n]{0,40}"
        r"\b(?:anweisungen|instruktionen|regeln|befehle|vorgaben)\b",
        # es
        r"\b(?:ignora|ignore|olvida|olvide|omite|descarta)\b[^.\n]{0,40}\b(?:instrucciones|reglas"
        r"|indicaciones|ordenes)\b[^.\n]{0,30}\b(?:anteriores|previas|de\s+arriba|del\s+sistema)\b",
        # fr
        r"\b(?:ignore[zs]?|oublie[zs]?|ne\s+tiens\s+pas\s+compte\s+de)\b[^.\n]{0,40}"
        r"\b(?:instructions|consignes|regles|directives)\b[^.\n]{0,30}"
        r"\b(?:precedentes|anterieures|ci-dessus|du\s+systeme)\b",
        # it
        r"\b(?:ignora|ignorate|dimentica|dimenticate|trascura)\b[^.\n]{0,40}\b(?:istruzioni"
        r"|regole|direttive)\b[^.\n]{0,30}\b(?:precedenti|di\s+sopra|del\s+sistema)\b",
        # ru
        r"(?:игнорируй|игнорируйте|забудь|забудьте|проигнорируй|не\s+обращай\s+внимания\s+на)"
        r"[^.\n]{0,40}(?:предыдущие|прежние|все|системные)[^.\n]{0,20}(?:инструкции|указания"
        r"|правила|команды)",
        # zh
        r"(?:忽略|无视|無視|忘记|忘記|不要理会)[^。\n]{0,12}(?:之前|以上|先前|上面|所有|全部|系统)"
        r"[^。\n]{0,8}(?:指令|指示|说明|說明|规则|規則|提示)",
        # ja
        r"(?:以前|前|上記|これまで|すべて)の[^。\n]{0,10}(?:指示|命令|ルール|プロンプト)[^。\n]{0,6}"
        r"(?:を)?(?:無視|忘れ)",
    )),
    ("extraction.system_prompt", _rx(
        r"\b(?:zeig(?:e)?|verrate|gib|nenne|ausgeben)\b[^.\n]{0,40}\b(?:system-?prompt|systemanweisung"
        r"(?:en)?|versteckten\s+(?:anweisungen|regeln)|geheimen\s+(?:anweisungen|regeln))",
        r"\b(?:revela|muestra|muestrame|dime|imprime)\b[^.\n]{0,40}\b(?:prompt\s+del\s+sistema"
        r"|instrucciones\s+(?:ocultas|secretas|del\s+sistema)|reglas\s+ocultas)",
        r"\b(?:revele[zs]?|montre[zs]?|affiche[zs]?|donne[zs]?(?:-moi)?|dis-moi)\b[^.\n]{0,40}"
        r"\b(?:prompt\s+(?:systeme|initial)|instructions\s+(?:cachees|secretes|systeme)"
        r"|regles\s+cachees)",
        r"\b(?:rivela|mostra|mostrami|dimmi|stampa)\b[^.\n]{0,40}\b(?:prompt\s+di\s+sistema"
        r"|istruzioni\s+(?:nascoste|segrete|di\s+sistema)|regole\s+nascoste)",
        r"(?:покажи|раскрой|выведи|напиши|расскажи)[^.\n]{0,40}(?:системный\s+промпт|системные"
        r"\s+инструкции|скрытые\s+(?:инструкции|правила)|свои\s+инструкции)",
        r"(?:显示|泄露|告诉我|输出|打印|透露)[^。\n]{0,10}(?:系统提示|系統提示|隐藏指令|隱藏指令"
        r"|初始指令|系统指令)",
        r"(?:システムプロンプト|隠された指示|秘密の指示|初期指示)[^。\n]{0,10}(?:を)?(?:表示|教え"
        r"|見せ|出力)",
    )),
)

LANGUAGE_EXTRA: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    ("agency.smuggled_tool_call", _rx(
        r"<\s*/?\s*(?:tool_call|tool_calls|function_call|function_calls|tool_use|invoke"
        r"|antml:invoke|tool_code)\b",
        r"[\"'](?:tool_calls|function_call|tool_use)[\"']\s*:",
        r"\{\s*[\"'](?:name|tool|function)[\"']\s*:\s*[\"'][\w.-]+[\"']\s*,\s*[\"'](?:arguments|args"
        r"|parameters|input)[\"']\s*:",
    )),
    ("approval.forgery", _rx(
        r"\b(?:already|previously)\s+(?:been\s+)?(?:approved|signed\s+off|cleared|authori[sz]ed"
        r"|okayed|ok'?d)\s+(?:by|with)\s+\w+",
        r"\b\w+\s+(?:already|has\s+already|previously)\s+(?:approved|signed\s+off\s+on|cleared"
        r"|authori[sz]ed)\s+(?:this|it|the\s+\w+)",
        r"\b(?:pre-?approved|already\s+approved)\b[^.\n]{0,40}\b(?:so\s+)?(?:skip|no\s+need|proceed"
        r"|go\s+ahead|without)",
    )),
    ("extraction.system_prompt", _rx(
        r"\b(?:could|would|can|will)\s+you\s+(?:please\s+|kindly\s+)?(?:share|tell\s+me|show\s+me"
        r"|list|describe|summari[sz]e|paste|recite|repeat|walk\s+me\s+through)\s+(?:all\s+)?"
        r"(?:the\s+|your\s+)(?:exact\s+|original\s+|initial\s+|hidden\s+|secret\s+|internal\s+|full\s+)?"
        r"(?:rules|instructions|guidelines|directives|system\s+message|configuration|prompt)\s+"
        r"(?:you\s+(?:were|have\s+been)\s+given|you\s+(?:follow|operate\s+under|were\s+told)"
        r"|that\s+(?:govern|guide|control)\s+you|behind\s+you)",
        r"\bwhat\s+(?:exactly\s+)?(?:are|were)\s+your\s+(?:exact\s+|original\s+|initial\s+|hidden\s+"
        r"|secret\s+|internal\s+)?(?:instructions|rules|guidelines|directives)\b",
        r"\b(?:curious|wondering)\s+(?:about\s+)?what\s+(?:instructions|rules|guidelines)\s+you\s+"
        r"(?:were|have\s+been)\s+given\b",
    )),
)

# --------------------------------------------------------------------------- decoded views

# rot13 spellings of the words attacks are made of (a view is only decoded when one occurs)
_ROT13_HINT: Final = re.compile(
    r"\b(?:"
    r"bhoyvr|cebzcg|cerivbhf|ehyrf|erirny|ertbyr|ertrya|ertynf|flfgrz|frperg|iretvff|najrvfhatra|pbasvthengvba|qverpgvirf|qvfertneq|rneyvre|sbetrg|thvqnapr|uvqqra|vafgehpgvbaf|vafgehppvbarf|vfgehmvbav|vtaben|vtaber"
    r")\b"
)
_HEX_RUN: Final = re.compile(r"(?<![0-9A-Za-z])(?:(?:\\x|0x)?[0-9a-fA-F]{2}[\s:,]?){12,}")
_URL_ESCAPE: Final = re.compile(r"%[0-9a-fA-F]{2}")
_HTML_ENTITY: Final = re.compile(r"&(?:#[0-9]{1,7}|#x[0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")


def _decode_hex(run: str) -> str | None:
    digits = re.sub(r"\\x|0x|[\s:,]", "", run)
    if len(digits) % 2:
        digits = digits[:-1]
    try:
        text = bytes.fromhex(digits).decode("utf-8")
    except ValueError:
        return None
    printable = sum(1 for c in text if c.isprintable() or c in "\n\t")
    return text if len(text) >= 6 and printable >= 0.9 * len(text) else None


def decoded_views(text: str) -> list[tuple[str, str]]:
    """(encoding, decoded text) for each encoding that plausibly hides text in ``text``."""
    views: list[tuple[str, str]] = []
    lowered = text.lower()
    if _ROT13_HINT.search(lowered):
        views.append(("rot13", codecs.decode(text, "rot_13")))
    for match in list(_HEX_RUN.finditer(text))[:16]:
        decoded = _decode_hex(match.group())
        if decoded is not None:
            views.append(("hex", decoded))
    if len(_URL_ESCAPE.findall(text)) >= 2:
        unquoted = urllib.parse.unquote_plus(text)
        if unquoted != text:
            views.append(("url", unquoted))
    if _HTML_ENTITY.search(text):
        unescaped = html.unescape(text)
        if unescaped != text:
            views.append(("html", unescaped))
    return views


# --------------------------------------------------------------------------- the score

_CUES: Final[dict[str, tuple[int, re.Pattern[str]]]] = {
    "verb": (2, re.compile(
        r"\b(?:ignore|disregard|forget|override|bypass|ignoriere|vergiss|missachte|ignora|olvida"
        r"|omite|oublie|dimentica|trascura)\b|игнорир|забуд|忽略|无视|無視|忘记|忘記|忘れ")),
    "noun": (1, re.compile(
        r"\b(?:instructions?|rules|guidelines|directives|prompt|anweisungen|regeln|instrucciones"
        r"|reglas|consignes|istruzioni|regole)\b|инструкц|правил|指令|指示|规则|規則|ルール|命令")),
    "qualifier": (1, re.compile(
        r"\b(?:previous|prior|above|earlier|hidden|secret|system|original|vorherigen|bisherigen"
        r"|versteckten|anteriores|previas|ocultas|precedentes|cachees|precedenti|nascoste)\b"
        r"|предыдущ|прежн|скрыт|систем|之前|以上|先前|隐藏|系统|以前|上記|隠")),
    "address": (1, re.compile(
        r"\b(?:you|your|all|every|now|du|deine|alle|jetzt|tu|tus|todas|ahora|vous|votre|toutes"
        r"|maintenant|tutte|ora)\b|ты|твои|все|теперь|你|所有|现在|あなた|すべて")),
}
_SENTENCES: Final = re.compile(r"[^.!?。！？\n]+")
_THRESHOLD: Final = 5


def scored_override(plain: str) -> str | None:
    """The first sentence whose override cues score at least the threshold, else None."""
    for sentence in _SENTENCES.findall(plain):
        hits = {name for name, (_, pattern) in _CUES.items() if pattern.search(sentence)}
        if "verb" not in hits or "noun" not in hits:
            continue
        if sum(_CUES[name][0] for name in hits) >= _THRESHOLD:
            return str(sentence).strip()
    return None
