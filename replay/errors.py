"""The replay engine's error tree; the CLI maps every ``ReplayError`` to one line and exit 2
(input/usage) or a failed scenario in the report (exit 1).

    ReplayError
    ├── ScenarioError          a scenario.yaml is invalid (names file, field and fix)
    ├── FormatVersionError     a golden/cassette has another format version ("re-record with ...")
    ├── CassetteMiss           replay met a request the cassette does not hold (names the nearest)
    ├── GoldenMissing          no trace.json / cassette for a scenario
    ├── UpdateRefused          writing goldens was asked for where it is not allowed (CI=true)
    └── SignatureError         a golden's signature or approval chain does not verify
"""

from __future__ import annotations


class ReplayError(Exception):
    """Root of every deliberate replay-engine error."""


class ScenarioError(ReplayError):
    pass


class FormatVersionError(ReplayError):
    pass


class CassetteMiss(ReplayError):
    pass


class GoldenMissing(ReplayError):
    pass


class UpdateRefused(ReplayError):
    pass


class SignatureError(ReplayError):
    pass
