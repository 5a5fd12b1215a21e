"""Timestamps of injected faults and their recoveries, kept locally and sent to the recorder."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from ccskit.metrics import recorder

INJECTED = "injected"
RECOVERED = "recovered"


@dataclass(frozen=True)
class FaultEvent:
    t: float  # epoch seconds, comparable with the recorder's and the report's clocks
    kind: str
    event: str
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"t": self.t, "kind": self.kind, "event": self.event, "detail": self.detail}


class FaultTimeline:
    """Ordered record of fault events; answers "how long since the last X"."""

    def __init__(self) -> None:
        self._events: list[FaultEvent] = []
        self._lock = threading.Lock()

    def record(self, kind: str, event: str, detail: str = "", t: float | None = None) -> FaultEvent:
        entry = FaultEvent(time.time() if t is None else t, kind, event, detail)
        with self._lock:
            self._events.append(entry)
        recorder.fault_event(kind, event, detail, t=entry.t)
        return entry

    def events(self, kind: str | None = None) -> list[FaultEvent]:
        with self._lock:
            return [e for e in self._events if kind is None or e.kind == kind]

    def last(self, kind: str, event: str = INJECTED) -> FaultEvent | None:
        matching = [e for e in self.events(kind) if e.event == event]
        return matching[-1] if matching else None

    def seconds_since(self, kind: str, event: str = INJECTED) -> float:
        last = self.last(kind, event)
        if last is None:
            known = sorted({(e.kind, e.event) for e in self.events()})
            raise AssertionError(
                f"no '{event}' event of fault '{kind}' recorded; recorded: {known}"
            )
        return time.time() - last.t

    def duration(self, kind: str) -> float:
        """Seconds from the last injection of ``kind`` to the recovery that followed it."""
        injected = self.last(kind, INJECTED)
        recovered = self.last(kind, RECOVERED)
        if injected is None or recovered is None or recovered.t < injected.t:
            raise AssertionError(
                f"fault '{kind}' has no injection followed by a recovery; "
                f"injected={injected}, recovered={recovered}"
            )
        return recovered.t - injected.t
