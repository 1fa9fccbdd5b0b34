"""Building blocks of the self-contained HTML pages: escaping, word diffs, tables, the shell.

Everything a page needs is inline (CSS, a few lines of JS, SVG); a Content-Security-Policy
forbids loading anything, so the page works offline and golden text (which may hold
injection attempts) can never run as markup or script: every value goes through ``esc``.
"""

from __future__ import annotations

import difflib
import html
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any, Final

_TOKEN: Final = re.compile(r"\s+|\w+|[^\w\s]", re.UNICODE)

CSS: Final = """
:root{--bg:#fff;--fg:#1f2328;--muted:#656d76;--line:#d0d7de;--del:#ffebe9;--delw:#ff818266;
--ins:#e6ffec;--insw:#abf2bc;--bad:#cf222e;--ok:#1a7f37;--warn:#9a6700;--focus:#0969da}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;
color:var(--fg);background:var(--bg)}
header{position:sticky;top:0;background:#f6f8fa;border-bottom:1px solid var(--line);
padding:8px 16px;z-index:2}
header h1{font-size:16px;margin:0}header .hint{color:var(--muted);font-size:12px}
main{padding:16px;max-width:1400px}
table{border-collapse:collapse;width:100%;margin:6px 0 12px}
th,td{border:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.status-passed{color:var(--ok);font-weight:600}.status-regressed,.status-error{color:var(--bad);font-weight:600}
.status-nondeterministic{color:var(--warn);font-weight:600}
details{border:1px solid var(--line);border-radius:6px;margin:10px 0;padding:0 10px}
details>summary{cursor:pointer;padding:6px 0;font-weight:600}
details details{margin-left:6px}
.side{display:grid;grid-template-columns:1fr 1fr;gap:8px}
.side>div{border:1px solid var(--line);border-radius:4px;padding:6px;overflow:auto}
.side h4{margin:0 0 4px;font-size:12px;color:var(--muted)}
pre{white-space:pre-wrap;word-break:break-word;margin:0;
font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace}
del{background:var(--delw);text-decoration:line-through}ins{background:var(--insw);text-decoration:none}
.diff{scroll-margin-top:70px;border-left:4px solid transparent;padding-left:6px;margin:8px 0}
.diff.current{border-left-color:var(--focus);background:#ddf4ff55}
.badge{display:inline-block;border-radius:10px;padding:0 7px;font-size:11px;border:1px solid var(--line)}
.badge.structural{background:var(--del)}.badge.content{background:#fff8c5}
ol.timeline{list-style:none;padding-left:0;border-left:2px solid var(--line);margin-left:6px}
ol.timeline li{position:relative;padding:2px 0 6px 14px}
ol.timeline li:before{content:"";position:absolute;left:-6px;top:8px;width:10px;height:10px;
border-radius:50%;background:var(--line)}
ol.timeline li.changed:before{background:var(--bad)}
.muted{color:var(--muted)}
"""

NAV_JS: Final = """
(function(){
  var diffs=Array.prototype.slice.call(document.querySelectorAll('.diff'));
  var at=-1;
  function go(i){
    if(!diffs.length)return;
    at=(i+diffs.length)%diffs.length;
    diffs.forEach(function(d){d.classList.remove('current');});
    var d=diffs[at];
    for(var p=d.parentElement;p;p=p.parentElement){if(p.tagName==='DETAILS')p.open=true;}
    d.classList.add('current');
    d.scrollIntoView({block:'start'});
    var pos=document.getElementById('nav-pos');
    if(pos)pos.textContent=(at+1)+' / '+diffs.length;
  }
  document.addEventListener('keydown',function(e){
    if(e.altKey||e.ctrlKey||e.metaKey)return;
    if(e.key==='j'){e.preventDefault();go(at+1);}
    else if(e.key==='k'){e.preventDefault();go(at-1);}
  });
})();
"""


def esc(value: Any) -> str:
    """HTML-escaped text of ``value`` (strings as they are, anything else as pretty JSON)."""
    if not isinstance(value, str):
        value = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
    return html.escape(value, quote=True)


def word_diff(old: str, new: str) -> tuple[str, str]:
    """``(old_html, new_html)`` with removed words in ``<del>`` and added words in ``<ins>``."""
    a, b = _TOKEN.findall(old), _TOKEN.findall(new)
    left: list[str] = []
    right: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        removed, added = html.escape("".join(a[i1:i2])), html.escape("".join(b[j1:j2]))
        if op == "equal":
            left.append(removed)
            right.append(added)
            continue
        if removed:
            left.append(f"<del>{removed}</del>")
        if added:
            right.append(f"<ins>{added}</ins>")
    return "".join(left), "".join(right)


def side_by_side(old: Any, new: Any, *, labels: tuple[str, str] = ("golden", "now")) -> str:
    """Two panes; strings (or values rendered as JSON) get word-level highlights."""
    old_text = "" if old is None else (old if isinstance(old, str) else esc_json(old))
    new_text = "" if new is None else (new if isinstance(new, str) else esc_json(new))
    left, right = word_diff(old_text, new_text)
    return (
        f'<div class="side"><div><h4>{html.escape(labels[0])}</h4><pre>{left}</pre></div>'
        f"<div><h4>{html.escape(labels[1])}</h4><pre>{right}</pre></div></div>"
    )


def esc_json(value: Any) -> str:
    """Pretty JSON text (not escaped; :func:`word_diff` escapes)."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def table(
    header: Sequence[str], rows: Iterable[Sequence[str]], *, raw: bool = False, attrs: str = ""
) -> str:
    """An HTML table; cells are escaped unless ``raw`` (then they are trusted HTML fragments)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{cell if raw else html.escape(cell)}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    return f"<table{attrs}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def section(title: str, body: str, *, open_: bool = True, attrs: str = "") -> str:
    """A collapsible section."""
    opened = " open" if open_ else ""
    return f"<details{opened}{attrs}><summary>{html.escape(title)}</summary>{body}</details>"


def page(title: str, body: str, *, hint: str = "") -> str:
    """The whole document: no external resource, scripts and styles inline only."""
    csp = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
        f'<header><h1>{html.escape(title)}</h1><div class="hint">{hint}</div></header>'
        f"<main>{body}</main><script>{NAV_JS}</script></body></html>\n"
    )
