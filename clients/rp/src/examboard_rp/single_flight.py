"""One refresh at a time, started at most once per interval (discovery metadata, the JWKS).

The thread that starts a refresh runs it; threads arriving meanwhile either go on at once with
what they have (usable cached data) or wait for it, at most ``wait_limit`` seconds. No lock is
held while the refresh runs, so threads with usable data never queue behind a slow provider,
and a crowd of threads needing the same data causes one fetch, not one each.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class SingleFlight:
    def __init__(self, interval: float, wait_limit: float, clock: Callable[[], float]) -> None:
        self.interval, self.wait_limit, self._clock = interval, wait_limit, clock
        self._lock = threading.Lock()  # guards the two fields below; held for microseconds
        self._running: threading.Event | None = None  # set when the refresh under way ends
        self._last_start = float("-inf")

    def run(self, refresh: Callable[[], None], *, wait: bool) -> None:
        """Run ``refresh`` unless one is under way (then wait for it if ``wait``) or one started
        less than ``interval`` seconds ago (then do nothing)."""
        with self._lock:
            running = self._running
            if running is None:
                now = self._clock()
                if now - self._last_start < self.interval:
                    return
                self._last_start = now
                running = self._running = threading.Event()
                leader = True
            else:
                leader = False
        if not leader:
            if wait:
                running.wait(self.wait_limit)
            return
        try:
            refresh()
        finally:
            with self._lock:
                self._running = None
            running.set()
