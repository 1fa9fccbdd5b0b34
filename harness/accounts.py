"""Tenants and API keys: keys are shown once, stored as SHA-256 hashes, revocable, with roles.

Every key belongs to a *principal*: the person or service identity that holds it. One principal
may hold several keys (a laptop key, a CI key, a second role); rules about people, such as
four-eyes on approvals or the scope of an Idempotency-Key, compare principals, never key ids.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from harness.audit import append_audit
from harness.clock import iso
from harness.database.connect import unit_of_work
from harness.database.models import ApiKey, Tenant
from harness.errors import Conflict, InvalidRequest, NotFound, Unauthorized
from harness.runtime import Runtime

ROLES = frozenset({"submitter", "approver", "auditor", "admin"})
# One message for every refusal: a 401 must not confirm that a leaked key was ever real.
_REFUSED = "missing, malformed, unknown or revoked API key"
KEY_PATTERN = re.compile(r"^hk_(?P<id>[a-z0-9]{16})_(?P<secret>[a-f0-9]{48})$")
DEFAULT_ROUTING: dict[str, Any] = {
    "allowed_models": ["sim-small", "sim-large"],
    "default_model": "sim-small",
    "allowed_tools": ["list_files", "read_file", "write_artifact"],
}


PRINCIPAL_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,199}")


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: the key used, and the principal (person or service) holding it."""

    key_id: str
    tenant_id: str
    roles: frozenset[str]
    name: str
    principal: str | None = None  # None only for callers built by hand; authenticate() always sets it

    @property
    def identity(self) -> str:
        """The principal, or the key name for a hand-built caller (the migration's mapping)."""
        return self.principal if self.principal is not None else self.name


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    tenant_id: str
    roles: tuple[str, ...]
    token: str  # shown once; only its hash is stored
    principal: str = ""


@dataclass(frozen=True)
class KeySpec:
    """A key to issue: its label, the principal holding it and its roles."""

    name: str
    principal: str
    roles: list[str]


def hash_key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_tenant(rt: Runtime, *, tenant_id: str, name: str, routing: dict[str, Any] | None = None) -> Tenant:
    with unit_of_work(rt.sessions) as session:
        return _insert_tenant(session, rt, tenant_id=tenant_id, name=name, routing=routing)


def create_tenant_with_keys(
    rt: Runtime, *, tenant_id: str, name: str, keys: list[KeySpec], routing: dict[str, Any] | None = None
) -> list[IssuedKey]:
    """Create a tenant and its first keys in one transaction: all of it, or none of it."""
    with unit_of_work(rt.sessions) as session:
        _insert_tenant(session, rt, tenant_id=tenant_id, name=name, routing=routing)
        return [
            _insert_key(session, rt, tenant_id=tenant_id, name=k.name, roles=k.roles, principal=k.principal)
            for k in keys
        ]


def _insert_tenant(
    session: Session, rt: Runtime, *, tenant_id: str, name: str, routing: dict[str, Any] | None
) -> Tenant:
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{1,62}", tenant_id):
        raise InvalidRequest("tenant id must be 2-63 chars of a-z, 0-9 and '-'", field="id")
    if session.get(Tenant, tenant_id) is not None:
        raise Conflict(f"tenant {tenant_id!r} already exists")
    tenant = Tenant(
        id=tenant_id,
        name=name,
        routing=routing or dict(DEFAULT_ROUTING),
        created_at=iso(rt.clock.now()),
    )
    session.add(tenant)
    session.flush()
    append_audit(
        session,
        rt,
        actor="cli",
        tenant=tenant_id,
        action="tenant.created",
        target=f"tenant/{tenant_id}",
        payload={"name": name},
    )
    return tenant


def validate_principal(principal: str) -> str:
    """A principal id: 1-200 chars of letters, digits and ``._@+-`` (e.g. ``alice``, ``ci-bot``)."""
    if not PRINCIPAL_PATTERN.fullmatch(principal):
        raise InvalidRequest(
            f"principal {principal!r} must be 1-200 characters of letters, digits and . _ @ + -,"
            " starting with a letter or digit (e.g. alice or ci-bot)",
            field="principal",
        )
    return principal


def validate_roles(roles: list[str]) -> list[str]:
    bad = sorted(set(roles) - ROLES)
    if not roles or bad:
        raise InvalidRequest(
            f"roles must be a non-empty subset of {', '.join(sorted(ROLES))}; got {', '.join(bad) or 'none'}"
        )
    return sorted(set(roles))


def issue_key(
    rt: Runtime, *, tenant_id: str, name: str, roles: list[str], principal: str | None = None
) -> IssuedKey:
    """Issue a key to ``principal`` (default: the key name, one key per person as before)."""
    with unit_of_work(rt.sessions) as session:
        return _insert_key(session, rt, tenant_id=tenant_id, name=name, roles=roles, principal=principal)


def _insert_key(
    session: Session, rt: Runtime, *, tenant_id: str, name: str, roles: list[str], principal: str | None
) -> IssuedKey:
    owner = validate_principal(principal if principal is not None else name)
    granted = validate_roles(roles)
    key_id = rt.ids.new("key").removeprefix("key_")
    token = f"hk_{key_id}_{rt.ids.token(24)}"
    if session.get(Tenant, tenant_id) is None:
        raise NotFound(f"no tenant {tenant_id!r}")
    session.add(
        ApiKey(
            id=f"key_{key_id}",
            tenant_id=tenant_id,
            name=name,
            principal=owner,
            key_hash=hash_key(token),
            roles=granted,
            created_at=iso(rt.clock.now()),
        )
    )
    append_audit(
        session,
        rt,
        actor="cli",
        tenant=tenant_id,
        action="key.issued",
        target=f"key/key_{key_id}",
        payload={"name": name, "principal": owner, "roles": granted},
    )
    return IssuedKey(
        key_id=f"key_{key_id}", tenant_id=tenant_id, roles=tuple(granted), token=token, principal=owner
    )


def revoke_key(rt: Runtime, *, key_id: str) -> None:
    with unit_of_work(rt.sessions) as session:
        key = session.get(ApiKey, key_id)
        if key is None:
            raise NotFound(f"no key {key_id!r}")
        if key.revoked_at is None:
            key.revoked_at = iso(rt.clock.now())
            append_audit(
                session, rt, actor="cli", tenant=key.tenant_id, action="key.revoked", target=f"key/{key_id}"
            )


def authenticate(session: Session, token: str | None) -> Principal:
    """Resolve a bearer token to a principal; every failure is the same 401 to the caller."""
    if not token or not KEY_PATTERN.fullmatch(token):
        raise Unauthorized(_REFUSED, cause="malformed")
    digest = hash_key(token)
    key = session.execute(select(ApiKey).where(ApiKey.key_hash == digest)).scalar_one_or_none()
    if key is None or not hmac.compare_digest(key.key_hash, digest):
        raise Unauthorized(_REFUSED, cause="unknown")
    if key.revoked_at is not None:
        raise Unauthorized(_REFUSED, cause="revoked")
    return Principal(
        key_id=key.id,
        tenant_id=key.tenant_id,
        roles=frozenset(key.roles),
        name=key.name,
        principal=key.principal,
    )


def principal_of_key(session: Session, key_id: str) -> str:
    """The principal holding ``key_id`` (revoked or not): what four-eyes compares."""
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"no key {key_id!r}")
    return key.principal
