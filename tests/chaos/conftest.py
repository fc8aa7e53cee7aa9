"""The chaos suite's fixtures — a ledger per case, the case's own redis-servers — and its figures: each
case's ledger is collected when the case ends, and the run ends with a table of them (tries, accepted
twice, revoked accepted, 503s, seconds) and the /readyz bodies seen for each failing check."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Generator
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.kit import Ledger, Servers

_LEDGER = pytest.StashKey[Ledger]()
_FIGURES = pytest.StashKey[list[Ledger]]()


@pytest.fixture
def ledger(request: pytest.FixtureRequest) -> Ledger:
    """The figures of this case, reported at the end of the run."""
    counted = Ledger(request.node.name)
    request.node.stash[_LEDGER] = counted
    return counted


@pytest.fixture
async def servers(tmp_path: Path) -> AsyncIterator[Servers]:
    """The redis-servers this case starts; killed when it ends."""
    started = Servers(tmp_path)
    yield started
    await started.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Add each phase's time to the case's ledger, note how it ended, and collect it after teardown."""
    report: pytest.TestReport = yield
    counted = item.stash.get(_LEDGER, None)
    if counted is None:
        return report
    counted.seconds += report.duration
    if report.when == "call":
        counted.result = "xfailed" if hasattr(report, "wasxfail") else report.outcome
    elif report.failed:
        counted.result = "error"
    if report.when == "teardown":
        item.config.stash.setdefault(_FIGURES, []).append(counted)
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """The figures of every chaos case that ran, and the 503 bodies the cases kept."""
    ledgers = config.stash.get(_FIGURES, [])
    if not ledgers:
        return
    write = terminalreporter.write_line
    terminalreporter.write_sep("=", "one-time use under chaos: figures")
    width = max(len(c.case) for c in ledgers)
    head = ("tries", "accepted twice", "revoked accepted", "503s", "seconds", "result")
    write(f"{'case':<{width}}  " + "  ".join(head) + "  note")
    for c in ledgers:
        cells = (c.tries, c.accepted_twice, c.revoked_accepted, c.unavailable, f"{c.seconds:.1f}", c.result)
        row = "  ".join(f"{cell!s:>{len(name)}}" for cell, name in zip(cells, head, strict=True))
        write(f"{c.case:<{width}}  {row}  {c.note}")
    tried = sum(c.tries for c in ledgers)
    strict = [c for c in ledgers if not c.expected_loss and c.result != "xfailed"]
    write(
        f"{len(ledgers)} cases, {tried} scans tried. In the {len(strict)} cases that assert none:"
        f" accepted twice {sum(c.accepted_twice for c in strict)},"
        f" revoked accepted {sum(c.revoked_accepted for c in strict)}"
    )
    for c in ledgers:
        if c not in strict:
            why = "a documented loss, counted" if c.expected_loss else "a known product bug (xfail)"
            write(f"  {c.case}: {why} — accepted twice {c.accepted_twice}, revoked accepted {c.revoked_accepted}")
    kept: dict[str, tuple[str, dict[str, Any]]] = {}  # by detail: each distinct answer once
    for c in ledgers:
        for label, body in c.problems:
            kept.setdefault(str(body["detail"]), (label, body))
    if kept:
        terminalreporter.write_sep("-", "503 bodies kept (each distinct detail once)")
        for label, body in sorted(kept.values(), key=lambda kept_body: kept_body[0]):
            write(f"{label}: {json.dumps(body, ensure_ascii=False)}")
