"""A syrupy extension for unit-level goldens: canonical JSON under ``goldens/_snapshots/``.

Values are snapshotted as data, never as ``repr``: pydantic models through
``model_dump(mode="json")``, dataclasses field by field, enums by value. Anything else is
refused, so a library upgrade cannot churn a golden. Each file carries a format version.
"""

from __future__ import annotations

import dataclasses
import json
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

try:
    from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode
except ImportError as exc:  # syrupy is an extra: the service and the replay CLI never need it
    raise ImportError("replay.snapshots needs syrupy: pip install 'harness-replay[pytest]'") from exc

from harness.canonical import dumps_canonical
from replay.errors import FormatVersionError
from replay.store import GOLDENS_DIR, SNAPSHOTS_DIR

if TYPE_CHECKING:
    from syrupy.location import PyTestLocation
    from syrupy.types import (
        PropertyFilter,
        PropertyMatcher,
        PropertyPath,
        SerializableData,
        SerializedData,
    )

SNAPSHOT_FORMAT_VERSION = 1


def to_json_data(value: Any) -> Any:
    """Plain JSON data for ``value``; raises TypeError rather than fall back to ``repr``."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json_data(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return to_json_data(value.value)
    if isinstance(value, dict):
        return {str(k): to_json_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json_data(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(
        f"refusing to snapshot a {type(value).__name__} by repr; pass JSON data "
        "(model_dump(mode='json'), a dataclass, or dicts/lists of plain values)"
    )


def _filtered(
    value: Any,
    *,
    path: PropertyPath,
    exclude: PropertyFilter | None,
    include: PropertyFilter | None,
    matcher: PropertyMatcher | None,
) -> Any:
    """syrupy's ``exclude``/``include``/``matcher`` applied the way its amber serializer does:
    the matcher sees every node (original objects, so ``path_type`` can match a ``datetime``)
    with its path of ``(key, type)`` pairs; the filters decide per key of a mapping or sequence.
    A matcher's ``Repr`` placeholder becomes its text."""
    if matcher is not None:
        value = matcher(data=value, path=path)
    if type(value).__name__ == "Repr" and type(value).__module__.startswith("syrupy"):
        return repr(value)
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        items: list[tuple[Any, Any]] = list(value.items())
    elif isinstance(value, list | tuple):
        items = list(enumerate(value))
    else:
        return value

    def keep(key: Any) -> bool:
        return (exclude is None or not exclude(prop=key, path=path)) and (
            include is None or include(prop=key, path=path)
        )

    kept = [
        (
            key,
            _filtered(
                child,
                path=(*path, (key, type(child))),
                exclude=exclude,
                include=include,
                matcher=matcher,
            ),
        )
        for key, child in items
        if keep(key)
    ]
    return dict(kept) if isinstance(value, dict) else [child for _, child in kept]


def _project_root(start: Path) -> Path:
    for folder in (start, *start.parents):
        if (folder / GOLDENS_DIR).is_dir():
            return folder
    raise FileNotFoundError(f"no {GOLDENS_DIR}/ folder above {start}")


class GoldenJSONExtension(SingleFileSnapshotExtension):
    """One ``<test>.json`` per assertion in ``goldens/_snapshots/<test module>/``."""

    file_extension = "json"
    _write_mode = WriteMode.TEXT

    def serialize(
        self,
        data: SerializableData,
        *,
        exclude: PropertyFilter | None = None,
        include: PropertyFilter | None = None,
        matcher: PropertyMatcher | None = None,
    ) -> SerializedData:
        if exclude is not None or include is not None or matcher is not None:
            data = _filtered(data, path=(), exclude=exclude, include=include, matcher=matcher)
        body = {"format_version": SNAPSHOT_FORMAT_VERSION, "snapshot": to_json_data(data)}
        return dumps_canonical(body)

    def read_snapshot_data_from_location(
        self, *, snapshot_location: str, snapshot_name: str, session_id: str
    ) -> SerializableData | None:
        text = super().read_snapshot_data_from_location(
            snapshot_location=snapshot_location, snapshot_name=snapshot_name, session_id=session_id
        )
        if isinstance(text, str):
            try:
                version = json.loads(text).get("format_version")
            except (ValueError, AttributeError):
                version = None
            if version != SNAPSHOT_FORMAT_VERSION:
                raise FormatVersionError(
                    f"{snapshot_location}: snapshot format {version!r} is not {SNAPSHOT_FORMAT_VERSION}; "
                    "re-record with `pytest --snapshot-update` on that test"
                )
        return text

    @classmethod
    def dirname(cls, *, test_location: PyTestLocation) -> str:
        root = _project_root(Path(test_location.filepath).resolve().parent)
        return str(root / GOLDENS_DIR / SNAPSHOTS_DIR / test_location.basename)
