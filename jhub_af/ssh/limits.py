"""Failed logins, counted per source address and per login name, with lockouts.

When a source or a name fails ``max_failures`` times within ``window`` seconds,
it is locked out for ``lockout`` seconds: every login from it (or for it) is
refused at once, without asking the hub, so a password-guessing storm costs the
hub nothing and others keep being served.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field


@dataclass
class _Counter:
    """One key's recent failures (times) and the end of its lockout."""

    failures: deque = field(default_factory=deque)
    locked_until: float = 0.0


class FailureLimiter:
    """One limiter for one kind of key (sources, or login names)."""

    def __init__(self, max_failures: int, window: float, lockout: float, clock=time.monotonic):
        self.max_failures = max_failures
        self.window = window
        self.lockout = lockout
        self.clock = clock
        self._keys: dict[str, _Counter] = {}

    def locked(self, key: str) -> bool:
        """True while ``key`` is locked out. Called before the hub is asked."""
        counter = self._keys.get(key)
        return bool(counter) and counter.locked_until > self.clock()

    def failed(self, key: str) -> bool:
        """Count a failure of ``key``; True when this failure locks it out (log it then)."""
        now = self.clock()
        counter = self._keys.setdefault(key, _Counter())
        counter.failures.append(now)
        while counter.failures and counter.failures[0] < now - self.window:
            counter.failures.popleft()
        if len(counter.failures) >= self.max_failures and counter.locked_until <= now:
            counter.locked_until = now + self.lockout
            counter.failures.clear()
            return True
        self._forget_old(now)
        return False

    def _forget_old(self, now: float) -> None:
        if len(self._keys) < 10_000:
            return
        for key in [k for k, c in self._keys.items() if c.locked_until < now and not c.failures]:
            del self._keys[key]
