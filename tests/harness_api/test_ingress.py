"""The API's front door: every request field is admitted through one function, on both backends.

Three things are proven here. The schemas: every body a route accepts derives from
``RequestBody``, and every free-text field of every such schema comes out of validation
redacted (a new schema or field that bypasses the ingress fails the enumeration). The
routes: a secret sent in a task or an approval reason is nowhere in the database, the
responses or the provider requests, only its ``[REDACTED:<type>]`` marker. The edge: one
table of unstorable characters (NUL, other controls, a lone surrogate) in a task, a reason, a
run id and path segments is refused with the same 422 problem+json on SQLite and PostgreSQL,
and writes nothing.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel
from sqlalchemy import select

from harness.api import schemas
from harness.api.schemas import RequestBody
from harness.database.connect import unit_of_work
from harness.database.models import Approval, AuditEntry, Run, RunTransition, Step
from tests.support.api import World, world
from tests.support.security import db_counts

pytestmark = [pytest.mark.tier1, pytest.mark.security]

STRIPE = "sk_live_FAKEZpR6Hj0tr97wOsqycamK"
AWS_ID = "AKIAZ7QXFAKEINGRESS2"
SECRET_TASK = f"Write the quarterly report from sales.csv; stripe.api_key = '{STRIPE}'"
SECRET_REASON = f"numbers checked; AWS_ACCESS_KEY_ID={AWS_ID}"


# --- the schemas ---------------------------------------------------------------------------------


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    """API routes, descending into included routers and mounts whatever their wrapper."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from _api_routes(route.original_router.routes)
        elif hasattr(route, "routes"):
            yield from _api_routes(route.routes)


def _body_models(app: FastAPI) -> dict[str, type[BaseModel] | Any]:
    """Every request-body type of every API route, by ``METHOD path``."""
    found: dict[str, Any] = {}
    for route in _api_routes(list(app.routes)):
        for param in route.dependant.body_params:
            found[f"{sorted(route.methods)[0]} {route.path} {param.name}"] = param.field_info.annotation
    return found


def _bypassing(app: FastAPI) -> list[str]:
    return [
        where
        for where, model in _body_models(app).items()
        if not (isinstance(model, type) and issubclass(model, RequestBody))
    ]


def _request_schemas() -> list[type[RequestBody]]:
    """RequestBody subclasses declared in harness.api.schemas (found, not listed by hand)."""
    return [
        obj
        for obj in vars(schemas).values()
        if isinstance(obj, type) and issubclass(obj, RequestBody) and obj is not RequestBody
    ]


def _is_free_text(annotation: Any) -> bool:
    if annotation is str:
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return False
    return any(_is_free_text(arg) for arg in typing.get_args(annotation))


def _valid_value(annotation: Any) -> Any:
    if typing.get_origin(annotation) is typing.Literal:
        return typing.get_args(annotation)[0]
    if typing.get_origin(annotation) is list:
        return [STRIPE]
    return STRIPE


def _pattern(info: Any) -> str | None:
    """The regex a constrained string field must match (e.g. a hex digest), if any."""
    return next((m.pattern for m in info.metadata if getattr(m, "pattern", None)), None)


def _is_free_text_field(info: Any) -> bool:
    # A field held to a pattern (a sha256 hex digest) cannot carry free text: the schema refuses it.
    return _is_free_text(info.annotation) and _pattern(info) is None


def _fill(model: type[RequestBody], value: Any) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if typing.get_origin(info.annotation) is typing.Literal:
            body[name] = typing.get_args(info.annotation)[0]
        elif _pattern(info) is not None:
            body[name] = "0" * 64 if "0-9a-f" in str(_pattern(info)) else value
        elif _is_free_text(info.annotation):
            inner = [a for a in typing.get_args(info.annotation) if a is not type(None)]
            shaped = inner[0] if inner else info.annotation
            body[name] = [value] if typing.get_origin(shaped) is list else value
    return body


def test_every_route_body_is_a_request_body(make_runtime: Any, sqlite_database_url: str) -> None:
    with world(make_runtime, sqlite_database_url) as w:
        app = w.client.app
        assert isinstance(app, FastAPI)
        bodies = _body_models(app)
        assert len(bodies) >= 2, bodies  # /run and /approve at least: the enumeration sees them
        assert _bypassing(app) == []
        used = {m for m in bodies.values() if isinstance(m, type)}
        assert used <= set(_request_schemas()), "a route body is declared outside harness.api.schemas"


class _Sneaky(BaseModel):
    """A body model that does not derive from RequestBody: what the enumeration must catch."""

    note: str


def test_the_enumeration_catches_a_route_that_bypasses_the_ingress() -> None:
    app = FastAPI()

    @app.post("/sneaky")
    def sneaky(body: _Sneaky) -> None:  # pragma: no cover - never called
        del body

    assert _bypassing(app) == ["POST /sneaky body"]


@pytest.mark.parametrize("model", _request_schemas(), ids=lambda m: m.__name__)
def test_every_free_text_field_of_every_request_schema_is_redacted(model: type[RequestBody]) -> None:
    text_fields = [n for n, f in model.model_fields.items() if _is_free_text_field(f)]
    assert text_fields, f"{model.__name__} has no text field: the enumeration is broken"
    parsed = model.model_validate(_fill(model, f"see {STRIPE} here"))
    dumped = json.dumps(parsed.model_dump())
    assert STRIPE not in dumped
    assert dumped.count("[REDACTED:stripe_secret_key]") == sum(
        1 for n in text_fields if getattr(parsed, n) is not None
    )


@pytest.mark.parametrize("model", _request_schemas(), ids=lambda m: m.__name__)
@pytest.mark.parametrize("bad", ["\x00", "\x1b", "\x7f", "\x85", "\ud800"])
def test_every_free_text_field_refuses_unstorable_characters(model: type[RequestBody], bad: str) -> None:
    for name, info in model.model_fields.items():
        if not _is_free_text_field(info):
            continue
        body = _fill(model, "fine")
        body[name] = [f"a{bad}b"] if isinstance(body[name], list) else f"a{bad}b"
        # pydantic refuses a lone surrogate itself (string_unicode); the rest is ours
        with pytest.raises(ValueError, match=r"cannot be stored|valid string"):
            model.model_validate(body)


def test_tabs_and_newlines_are_still_text() -> None:
    parsed = schemas.RunRequest.model_validate({"task": "line one\n\tline two\r\n"})
    assert parsed.task == "line one\n\tline two\r\n"


# --- the routes, on both backends ----------------------------------------------------------------


@pytest.fixture
def w(make_runtime: Any, database_url: str) -> Iterator[World]:
    with world(make_runtime, database_url) as it:
        yield it


def _everything_stored(w: World) -> str:
    with unit_of_work(w.rt.sessions) as s:
        rows: list[Any] = []
        rows += [(r.task, r.error) for r in s.execute(select(Run)).scalars()]
        rows += [(t.reason,) for t in s.execute(select(RunTransition)).scalars()]
        rows += [(a.args, a.reason) for a in s.execute(select(Approval)).scalars()]
        rows += [(st.input, st.output) for st in s.execute(select(Step)).scalars()]
        rows += [(e.payload,) for e in s.execute(select(AuditEntry)).scalars()]
    return json.dumps(rows, default=str)


def test_a_secret_in_the_task_and_the_reason_is_redacted_everywhere(w: World) -> None:
    accepted = w.post("run", "alice", {"task": SECRET_TASK})
    assert accepted.status_code == 202, accepted.text
    run_id = accepted.json()["run_id"]
    w.drain()
    approved = w.post("approve", "bob", w.decision(run_id, "approve", SECRET_REASON))
    assert approved.status_code == 200, approved.text
    w.drain()
    view = w.get(f"runs/{run_id}", "carol")  # a read-only auditor sees what everyone sees
    assert view.status_code == 200 and view.json()["status"] == "SUCCEEDED", view.text

    surfaces = {
        "responses": accepted.text + approved.text + view.text,
        "database": _everything_stored(w),
        "provider requests": json.dumps([r.body for r in w.sim.requests]),
    }
    for name, text in surfaces.items():
        assert STRIPE not in text and AWS_ID not in text, f"{name} holds a raw secret"
    body = view.json()
    assert body["task"] == (
        "Write the quarterly report from sales.csv; stripe.api_key = '[REDACTED:stripe_secret_key]'"
    )
    assert "[REDACTED:aws_access_key_id]" in json.dumps(body["transitions"])
    assert "[REDACTED:aws_access_key_id]" in json.dumps(body["approvals"])
    prompts = surfaces["provider requests"]
    assert "[REDACTED:stripe_secret_key]" in prompts, "the prompt was not built from the redacted task"


def test_what_is_sent_to_the_provider_is_exactly_what_is_stored(w: World) -> None:
    run_id = w.post("run", "alice", {"task": SECRET_TASK}).json()["run_id"]
    w.drain()
    with unit_of_work(w.rt.sessions) as s:
        stored = [
            st.input["messages"]
            for st in s.execute(select(Step).where(Step.run_id == run_id).order_by(Step.seq)).scalars()
            if st.kind == "model_call"
        ]
    sent = [r.body["messages"] for r in w.sim.requests]
    assert stored and sent[: len(stored)] == stored


def test_the_loop_sends_only_redacted_text_even_if_the_ingress_is_bypassed(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defence in depth: a raw task that got into the database is redacted before it is sent."""
    monkeypatch.setattr("harness.api.ingress.redact_data", lambda value: value)
    run_id = w.post("run", "alice", {"task": SECRET_TASK}).json()["run_id"]
    with unit_of_work(w.rt.sessions) as s:
        assert STRIPE in s.get_one(Run, run_id).task, "the bypass did not take: nothing is proven"
    w.drain()
    with unit_of_work(w.rt.sessions) as s:
        stored = [
            st.input["messages"]
            for st in s.execute(select(Step).where(Step.run_id == run_id).order_by(Step.seq)).scalars()
            if st.kind == "model_call"
        ]
    sent = [r.body["messages"] for r in w.sim.requests]
    assert STRIPE not in json.dumps(sent)
    assert stored and sent[: len(stored)] == stored


# --- the edge: one bad-input table, both backends ------------------------------------------------

UNSTORABLE = ["\x00", "\x01", "\x1b", "\x7f", "\ud800"]


def _bad_requests(w: World, run_id: str, bad: str) -> dict[str, Any]:
    escaped = json.dumps(bad)[1:-1]  # a lone surrogate only travels as a JSON escape
    headers = w.headers("alice", **{"Content-Type": "application/json"})
    approver = w.headers("bob", **{"Content-Type": "application/json"})
    post = w.client.post
    # the decision names a (well-formed) pending action, so the bad character is the only fault
    named = f'"approval_id": "apr_0", "args_sha256": "{"0" * 64}"'
    requests = {
        "task": post("/api/harness/run", content=f'{{"task": "a{escaped}b"}}', headers=headers),
        "model": post("/api/harness/run", content=f'{{"task": "t", "model": "m{escaped}"}}', headers=headers),
        "tools": post(
            "/api/harness/run", content=f'{{"task": "t", "tools": ["r{escaped}"]}}', headers=headers
        ),
        "reason": post(
            "/api/harness/approve",
            content=f'{{"run_id": "{run_id}", "decision": "approve", "reason": "ok{escaped}", {named}}}',
            headers=approver,
        ),
        "run_id in body": post(
            "/api/harness/approve",
            content=f'{{"run_id": "{run_id}{escaped}", "decision": "approve", "reason": "ok", {named}}}',
            headers=approver,
        ),
    }
    if ord(bad) < 0x80:  # a lone surrogate has no URL form (its UTF-8 bytes are invalid)
        percent = f"%{ord(bad):02X}"
        requests["run_id in path"] = w.client.get(
            f"/api/harness/runs/{run_id}{percent}", headers=w.headers("alice")
        )
        requests["artifact path"] = w.client.get(
            f"/api/harness/runs/{run_id}/artifacts/a{percent}b.md", headers=w.headers("alice")
        )
    return requests


@pytest.mark.parametrize("bad", UNSTORABLE, ids=lambda c: f"U+{ord(c):04X}")
def test_unstorable_characters_are_a_422_problem_on_every_backend(w: World, bad: str) -> None:
    run_id = w.post("run", "alice", {"task": "say hello"}).json()["run_id"]
    before = db_counts(w)
    for where, resp in _bad_requests(w, run_id, bad).items():
        assert resp.status_code == 422, f"{where}: {resp.status_code} {resp.text}"
        assert resp.headers["content-type"].startswith("application/problem+json"), where
        problem = resp.json()
        assert problem["type"].endswith("/validation-error"), (where, problem)
        # ours, or pydantic's own refusal of a lone surrogate
        assert "cannot be stored" in problem["detail"] or "unicode" in problem["detail"], (where, problem)
    assert db_counts(w) == before


def test_invalid_utf8_in_a_path_is_a_plain_404_on_every_backend(w: World) -> None:
    # undecodable bytes arrive as U+FFFD, which every backend stores: an unknown run, not a 500
    resp = w.client.get("/api/harness/runs/run_%ED%A0%80", headers=w.headers("alice"))
    assert resp.status_code == 404, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
