"""Tenant-scoped retrieval: the tenant filter is in the SQL, never applied after the fact."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from harness.database.models import Document

_WORD = re.compile(r"[a-z0-9]{3,}")


@dataclass(frozen=True)
class RetrievedDocument:
    id: str
    tenant_id: str
    title: str
    body: str
    score: int


def _terms(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def retrieve(session: Session, *, tenant_id: str, query: str, top_k: int) -> list[RetrievedDocument]:
    """Best ``top_k`` documents of ``tenant_id`` by term overlap; ties broken by id (deterministic)."""
    wanted = _terms(query)
    if not wanted or top_k <= 0:
        return []
    rows = session.execute(select(Document).where(Document.tenant_id == tenant_id)).scalars()
    scored = [
        RetrievedDocument(d.id, d.tenant_id, d.title, d.body, len(wanted & _terms(d.title + " " + d.body)))
        for d in rows
    ]
    hits = sorted((d for d in scored if d.score > 0), key=lambda d: (-d.score, d.id))
    # Defence in depth: a row of another tenant here is a bug in the query, never data to use.
    return [d for d in hits if d.tenant_id == tenant_id][:top_k]
