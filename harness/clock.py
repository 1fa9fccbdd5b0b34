"""The time seams: every read of "now" and every sleep in the harness goes through here."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Tells the time. Record and replay freeze it (freezegun) at the scenario's start."""

    def now(self) -> datetime: ...


class Sleeper(Protocol):
    """Waits. Backoff goes through here so replay can skip the wait but keep the schedule."""

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """UTC wall clock (frozen under freezegun, which is what record/replay rely on)."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class RealSleeper:
    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass
class RecordingSleeper:
    """Never waits; remembers every requested duration (used by record/replay and tests)."""

    slept: list[float] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)


def iso(moment: datetime) -> str:
    """The one timestamp format stored and traced: UTC, seconds or microseconds, ``Z`` suffix."""
    utc = moment.astimezone(UTC)
    text = utc.isoformat(timespec="microseconds" if utc.microsecond else "seconds")
    return text.replace("+00:00", "Z")
