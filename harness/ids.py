"""The randomness seam: ids and jitter come from one source, seeded in record/replay."""

from __future__ import annotations

import random
import secrets
import threading


class IdSource:
    """Hands out prefixed ids (``run_1a2b...``) and per-run RNGs.

    With a seed, the sequence is a pure function of the seed and the order of calls, which
    record and replay keep fixed by draining the worker inline. Without one, ids come from
    ``secrets`` and cannot be guessed.
    """

    def __init__(self, seed: int | None = None) -> None:
        self._seed = seed
        self._rng = random.Random(seed) if seed is not None else None  # noqa: S311 - reproducible by design; unseeded ids use secrets
        self._lock = threading.Lock()

    @property
    def seeded(self) -> bool:
        return self._seed is not None

    def new(self, prefix: str) -> str:
        """A fresh id with a readable prefix and 64 random bits."""
        with self._lock:
            bits = self._rng.getrandbits(64) if self._rng is not None else secrets.randbits(64)
        return f"{prefix}_{bits:016x}"

    def token(self, nbytes: int = 24) -> str:
        """A url-safe secret token (API keys). Seeded only in record/replay."""
        with self._lock:
            if self._rng is not None:
                raw = self._rng.getrandbits(nbytes * 8).to_bytes(nbytes, "big")
                return raw.hex()
        return secrets.token_hex(nbytes)

    def rng_for(self, key: str) -> random.Random:
        """A private RNG for one run (retry jitter): seeded from the source seed and ``key``."""
        if self._seed is None:
            return random.Random(secrets.randbits(64))  # noqa: S311 - jitter, not a secret
        return random.Random(f"{self._seed}:{key}")  # noqa: S311 - jitter, not a secret
