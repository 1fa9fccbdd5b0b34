"""Every test carries exactly one tier marker; ``security`` and the others are extras."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Final, Protocol

TIERS: Final = ("tier0", "tier1", "tier2", "tier3")


class _Marker(Protocol):
    @property
    def name(self) -> str: ...


class _Item(Protocol):
    @property
    def nodeid(self) -> str: ...

    def iter_markers(self, name: str | None = ...) -> Iterator[_Marker]: ...


def tiers_of(item: _Item) -> list[str]:
    """The distinct tier markers on ``item`` (module, class and function level), sorted."""
    return sorted({m.name for m in item.iter_markers() if m.name in TIERS})


def tier_problems(items: Iterable[_Item]) -> list[str]:
    """One line per item with zero or several tier markers; empty when every item has one."""
    problems: list[str] = []
    for item in items:
        found = tiers_of(item)
        if len(found) != 1:
            what = "no tier marker" if not found else f"{len(found)} tier markers ({', '.join(found)})"
            problems.append(f"{item.nodeid}: {what}")
    return problems


def refusal(problems: list[str], *, shown: int = 20) -> str:
    """The message that stops the run, naming the offenders and what to do."""
    head = "\n  ".join(problems[:shown])
    more = f"\n  ... and {len(problems) - shown} more" if len(problems) > shown else ""
    return (
        f"{len(problems)} test(s) do not carry exactly one tier marker:\n  {head}{more}\n"
        "give each test module exactly one of "
        + ", ".join(TIERS)
        + " (pytestmark = [pytest.mark.tier1]); security is an extra marker, not a tier"
    )


ENVIRONMENTS: Final = ("unit", "integration", "e2e", "stress", "drill")


def environment_of(item: _Item) -> str:
    """The isolated environment a test runs in: unit, integration, e2e, stress or drill."""
    names = {m.name for m in item.iter_markers()}
    path = item.nodeid.split("::", 1)[0]
    if "tier3" in names:
        return "drill"
    if "harness_stress/" in path or ("tier2" in names and "e2e" not in names):
        return "stress"
    if "e2e" in names or "harness_e2e/" in path:
        return "e2e"
    if "tier0" in names:
        return "unit"
    return "integration"
