"""Test plan: retrieval returns mixed-tenant context -> wrong-tenant docs in the final prompt.

The fixture dataset (``data/multitenant_documents.yaml``) gives globex and initech documents
that outscore acme's on acme's own queries and win every id tie. Acme runs go through the
API and the worker; what the provider actually received (the simulator's request log), the
prompts stored in ``steps`` and the ``PromptSent`` events must hold acme's documents and not
one byte of another tenant's. Below that, ``retrieve`` itself is checked against a reference
model over random corpora (hypothesis), including that no foreign row is even loaded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select

from harness.accounts import create_tenant
from harness.database.connect import unit_of_work
from harness.database.models import Document, Step
from harness.events import PromptSent
from harness.retrieval import RetrievedDocument, retrieve
from harness.runtime import Runtime
from tests.support.api import World, world

pytestmark = [pytest.mark.tier1, pytest.mark.security]

DATASET: dict[str, Any] = yaml.safe_load(
    (Path(__file__).parent / "data" / "multitenant_documents.yaml").read_text(encoding="utf-8")
)
assert DATASET["format_version"] == 1, "multitenant_documents.yaml: unknown format_version"
DOCS: list[dict[str, str]] = DATASET["documents"]
TENANTS = ("acme", "globex", "initech")

# task -> acme document ids retrieval must put in the prompt, in rank order
ACME_TASKS = {
    "Summarise quarterly revenue forecast pricing churn": ["doc_m01", "doc_m02", "doc_m03"],
    "Office plants: ficus watering on fridays": ["doc_m04"],
}


def _foreign_fragments() -> list[str]:
    """Every string of another tenant's documents that acme's own documents do not also contain."""
    acme_text = " ".join(d["title"] + " " + d["body"] for d in DOCS if d["tenant"] == "acme")
    fragments: set[str] = set()
    for doc in DOCS:
        if doc["tenant"] == "acme":
            continue
        fragments.update({doc["id"], doc["body"]})
        fragments.update(re.findall(r"[A-Z]+-CANARY-\d+", doc["body"]))
        # every distinctive sentence piece, so a truncated or re-wrapped copy is caught too
        fragments.update(p.strip() for p in re.split(r"[:;]", doc["body"]) if len(p.strip()) >= 8)
        if doc["title"] not in acme_text:
            fragments.add(doc["title"])
    return sorted(f for f in fragments if f not in acme_text)


FOREIGN = _foreign_fragments()


def _load_dataset(rt: Runtime) -> None:
    with unit_of_work(rt.sessions) as session:
        session.add_all(
            Document(id=d["id"], tenant_id=d["tenant"], title=d["title"], body=d["body"]) for d in DOCS
        )


@pytest.fixture
def w(make_runtime: Any, database_url: str) -> Iterator[World]:
    with world(make_runtime, database_url) as it:
        it.add_tenant("initech", {"ivan": ["submitter"]})
        _load_dataset(it.rt)
        yield it


def _leaks(text: str) -> list[str]:
    return [f for f in FOREIGN if f in text]


def test_dataset_really_tempts_a_filterless_retriever() -> None:
    """Guard the fixture: each acme task scores a foreign document above every acme one."""
    for task in ACME_TASKS:
        words = set(re.findall(r"[a-z0-9]{3,}", task.lower()))

        def score(d: dict[str, str], words: set[str] = words) -> int:
            return len(words & set(re.findall(r"[a-z0-9]{3,}", (d["title"] + " " + d["body"]).lower())))

        best_foreign = max(score(d) for d in DOCS if d["tenant"] != "acme")
        best_acme = max(score(d) for d in DOCS if d["tenant"] == "acme")
        assert best_foreign >= best_acme > 0, task


@pytest.mark.parametrize("task", list(ACME_TASKS))
def test_acme_prompts_carry_acme_documents_and_no_foreign_bytes(w: World, task: str) -> None:
    expected = [d for d in DOCS if d["id"] in ACME_TASKS[task]]
    resp = w.post("run", "alice", {"task": task})
    assert resp.status_code == 202, resp.text
    run_id = resp.json()["run_id"]
    w.drain()
    assert w.get(f"runs/{run_id}", "alice").json()["status"] == "SUCCEEDED"

    wire = [json.dumps(r.body, ensure_ascii=False) for r in w.sim.requests]
    assert wire, "the provider was never called"
    with unit_of_work(w.rt.sessions) as session:
        stored = [
            json.dumps(s.input, ensure_ascii=False)
            for s in session.execute(
                select(Step).where(Step.run_id == run_id, Step.kind == "model_call")
            ).scalars()
        ]
    events = [
        json.dumps(e.messages, ensure_ascii=False)
        for e in w.rt.sink.of_type(PromptSent)  # type: ignore[attr-defined]
        if e.run_id == run_id
    ]
    for where, texts in (("provider request", wire), ("steps.input", stored), ("PromptSent", events)):
        assert texts, where
        for text in texts:
            assert _leaks(text) == [], f"{where} carries another tenant's document bytes"
            positions = [text.find(d["body"]) for d in expected]
            assert -1 not in positions, f"{where} lacks acme's retrieved documents"
            assert positions == sorted(positions), f"{where}: documents out of rank order"


def test_globex_prompts_carry_no_acme_bytes(w: World) -> None:
    resp = w.post("run", "gina", {"task": "Summarise quarterly revenue forecast pricing churn"})
    w.drain()
    wire = " ".join(json.dumps(r.body, ensure_ascii=False) for r in w.sim.requests)
    assert "GLOBEX-CANARY-01" in wire, "globex's own documents should be retrieved"
    assert resp.status_code == 202
    for doc in DOCS:
        if doc["tenant"] == "acme":
            assert doc["body"] not in wire and doc["id"] not in wire


# --- retrieve() itself -------------------------------------------------------------------------


@contextmanager
def _loaded_documents() -> Iterator[list[str]]:
    """Tenant ids of every Document row the ORM materialises while the block runs."""
    loaded: list[str] = []

    def on_load(target: Document, _context: Any) -> None:
        loaded.append(target.tenant_id)

    event.listen(Document, "load", on_load)
    try:
        yield loaded
    finally:
        event.remove(Document, "load", on_load)


def _reference(docs: list[Document], *, tenant_id: str, query: str, top_k: int) -> list[str]:
    """What retrieve must answer: term-overlap ranking over ``tenant_id``'s documents only."""
    words = set(re.findall(r"[a-z0-9]{3,}", query.lower()))
    if not words or top_k <= 0:
        return []
    scored = [
        (-len(words & set(re.findall(r"[a-z0-9]{3,}", (d.title + " " + d.body).lower()))), d.id)
        for d in docs
        if d.tenant_id == tenant_id
    ]
    return [doc_id for score, doc_id in sorted(scored) if score < 0][:top_k]


def _retrieve_fresh(
    rt: Runtime, docs: list[Document], **query: Any
) -> tuple[list[RetrievedDocument], list[str]]:
    """Insert ``docs``, retrieve from a clean identity map, roll everything back."""
    with rt.sessions() as session:
        session.add_all(docs)
        session.flush()
        session.expunge_all()  # rows must come from the SELECT, not the identity map
        with _loaded_documents() as loaded:
            found = retrieve(session, **query)
        session.rollback()
    return found, loaded


@pytest.fixture
def rt(make_runtime: Any, database_url: str) -> Runtime:
    runtime: Runtime = make_runtime(database_url)
    for tenant in TENANTS:
        create_tenant(runtime, tenant_id=tenant, name=tenant.title())
    return runtime


def test_retrieve_on_the_fixture_dataset_loads_only_the_callers_rows(rt: Runtime) -> None:
    docs = [Document(id=d["id"], tenant_id=d["tenant"], title=d["title"], body=d["body"]) for d in DOCS]
    for task, expected in ACME_TASKS.items():
        found, loaded = _retrieve_fresh(rt, list(docs), tenant_id="acme", query=task, top_k=3)
        assert [d.id for d in found] == expected
        # the filter lives in the SQL: a foreign row never even reaches Python
        assert set(loaded) == {"acme"}, f"foreign rows loaded for {task!r}: {sorted(set(loaded))}"


VOCAB = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
_words = st.lists(st.sampled_from(VOCAB), min_size=0, max_size=5).map(" ".join)
_corpus = st.lists(st.tuples(st.sampled_from(TENANTS), _words, _words), min_size=0, max_size=24)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # each example rolls back
)
@given(corpus=_corpus, tenant=st.sampled_from(TENANTS), query=_words, top_k=st.integers(0, 5))
def test_retrieve_never_returns_or_loads_another_tenants_rows(
    rt: Runtime, corpus: list[tuple[str, str, str]], tenant: str, query: str, top_k: int
) -> None:
    # ids in reverse-tenant order so foreign rows would win id tie-breaks
    docs = [
        Document(id=f"d{i:03d}-{owner}", tenant_id=owner, title=title, body=body)
        for i, (owner, title, body) in enumerate(corpus)
    ]
    found, loaded = _retrieve_fresh(rt, list(docs), tenant_id=tenant, query=query, top_k=top_k)

    assert all(d.tenant_id == tenant for d in found)
    assert set(loaded) <= {tenant}, "rows of another tenant were fetched from the database"
    assert [d.id for d in found] == _reference(docs, tenant_id=tenant, query=query, top_k=top_k)
