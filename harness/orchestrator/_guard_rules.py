"""The injection guard's rule tables: marker, URL, language and split-token patterns over the skeleton."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

# Every pattern runs on the skeleton: lower case, lookalikes folded, line breaks unified.

# Letters that, inside an otherwise Latin word, only make sense as a disguise.
_LOOKALIKE_TRIGGERS: Final[frozenset[str]] = frozenset(
    {c for c in "авеіјкмнопрстухѕԁһӏԛԝьѡ"}
    | {c.upper() for c in "авеіјкмнорстухѕ"}
    | set("οΟιΙνΝρΡΑΒΕΗΚΜΤΥΧɡıȷɩ")
)
LEET = str.maketrans("013457@$", "oieastas")
NON_LETTERS = re.compile(r"[^a-z]+")
_WORD = re.compile(r"[^\W\d_]+")


def mixed_script_words(text: str) -> list[str]:
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
MARKERS: Final[tuple[_Marker, ...]] = (
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

SSTI: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    ("template.injection", re.compile(
        r"\{\{[^}]{0,200}?(?:__\w+__|\b(?:config|self|request|lipsum|cycler|joiner|namespace"
        r"|url_for|get_flashed_messages|popen|subprocess|import)\b)")),
    ("template.injection", re.compile(r"\{%-?\s*(?:raw|endraw|include|import|from|extends)\b")),
)

_URL = (
    r"(?P<url>(?:(?P<scheme>https?)[ \t]*:[ \t]*//|(?<![\w:/])//(?=[\w-]+\.))"
    r"[^\s)\"']+)"
)
EXFIL_URLS: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
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


def url_is_exfiltration(rule: str, url: str) -> bool:
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

LANGUAGE: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
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
SPLIT_TOKENS: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
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

