"""Failed logins, counted per source address in bounded memory: :class:`SourceLimiter`."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field


@dataclass
class _Source:
    """One address's most recent failures (at most max_failures times) and its turn lock."""

    failures: deque
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class SourceLimiter:
    """Counts failed logins per source address; too many make the source rate-limited.

    A source is rate-limited while ``max_failures`` of its failed logins lie within the
    last ``window`` seconds. Login names are not counted: a hub token cannot be
    guessed, so locking a name would only let anyone lock its owner out.

    Memory is bounded: each source keeps only its last ``max_failures`` times, and at
    most ``max_sources`` sources are kept; the one whose last failure is oldest is
    forgotten first. Created by :meth:`jhub_af.ssh.app.AFSSH.initialize`; used by
    :class:`jhub_af.ssh.login.LoginChecker`.
    """

    def __init__(
        self, max_failures: int, window: float, max_sources: int, clock=time.monotonic
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self.max_sources = max_sources
        self.clock = clock
        self._sources: OrderedDict[str, _Source] = OrderedDict()

    def __len__(self) -> int:
        """How many sources are kept now (never more than ``max_sources``)."""
        return len(self._sources)

    def failed(self, source: str) -> bool:
        """Count a failed login from ``source``.

        Returns True when this failure makes the source rate-limited (it was not just
        before), so the caller logs it once. Forgets the least recently failing
        source when more than ``max_sources`` are kept. Raises nothing.
        """
        was_limited = self.retry_after(source) > 0
        entry = self._sources.pop(source, None) or _Source(deque(maxlen=self.max_failures))
        entry.failures.append(self.clock())
        self._sources[source] = entry
        while len(self._sources) > self.max_sources:
            self._sources.popitem(last=False)
        return not was_limited and self.retry_after(source) > 0

    def retry_after(self, source: str) -> float:
        """Seconds until ``source`` is no longer rate-limited (if it fails no more); 0.0
        when it is not rate-limited. Raises nothing."""
        entry = self._sources.get(source)
        if entry is None or len(entry.failures) < self.max_failures:
            return 0.0
        return max(0.0, entry.failures[0] + self.window - self.clock())

    def turn(self, source: str) -> asyncio.Lock | None:
        """The lock a rate-limited ``source``'s logins take in turn while the hub checks
        their token (so a flood from one address costs the hub one check at a time);
        None when ``source`` is not rate-limited. Raises nothing."""
        if not self.retry_after(source):
            return None
        return self._sources[source].lock
