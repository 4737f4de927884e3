"""Re-checks after a change: when the learner changes an object in their lab namespace,
the lab's tasks are checked again on their own, a moment after the changes stop.

Pure: the operator notes each change (`note`), and a fast loop asks `due_now` which labs
to check. Debounced (a burst of changes, such as a rollout's, gives one run once it is
quiet, or at the latest MAX_DELAY after it began) and bounded (at most one run per
MIN_INTERVAL and MAX_PER_MINUTE a minute per lab), so a busy lab cannot flood the checker.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from roadlab.controller.checks import RECHECK_TOKEN_PREFIX

QUIET_SECONDS = 0.3  # no change for this long: the burst is over
MAX_DELAY_SECONDS = 2.0  # a burst that goes on is checked this long after it began
MIN_INTERVAL_SECONDS = 1.0
MAX_PER_MINUTE = 12


@dataclass
class _Pending:
    first: float
    last: float


@dataclass
class Rechecks:
    """Changes noted per lab (by monotonic time) and the runs made for them."""

    pending: dict[str, _Pending] = field(default_factory=dict)
    runs: dict[str, deque[float]] = field(default_factory=dict)

    def note(self, lab: str, now: float) -> None:
        entry = self.pending.get(lab)
        if entry is None:
            self.pending[lab] = _Pending(now, now)
        else:
            entry.last = now

    def due_now(self, now: float) -> list[str]:
        """The labs to check now; each is taken off the pending list and counted."""
        due = []
        for lab, entry in list(self.pending.items()):
            settled = now - entry.last >= QUIET_SECONDS or now - entry.first >= MAX_DELAY_SECONDS
            if settled and self._allowed(lab, now):
                del self.pending[lab]
                self.runs.setdefault(lab, deque(maxlen=MAX_PER_MINUTE)).append(now)
                due.append(lab)
        return due

    def retry(self, lab: str, now: float) -> None:
        """A run that could not start (another was in flight): it is still owed."""
        self.note(lab, now)

    def forget(self, lab: str) -> None:
        self.pending.pop(lab, None)
        self.runs.pop(lab, None)

    def _allowed(self, lab: str, now: float) -> bool:
        runs = self.runs.get(lab)
        if not runs:
            return True
        if now - runs[-1] < MIN_INTERVAL_SECONDS:
            return False
        return len(runs) < MAX_PER_MINUTE or now - runs[0] >= 60.0


def token(now_epoch: float) -> str:
    return f"{RECHECK_TOKEN_PREFIX}-{int(now_epoch * 1000)}"
