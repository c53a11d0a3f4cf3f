"""Test servers on a background thread. ``socketserver``'s ``shutdown()`` waits for
``serve_forever``'s next poll, every 0.5 s by default: the suite starts hundreds of servers, and
that wait was a fifth of the suite's time, so they poll often."""

from __future__ import annotations

import threading
from socketserver import BaseServer

POLL_SECONDS = 0.02


class Served:
    """``server`` answering on a daemon thread until ``stop()``."""

    def __init__(self, server: BaseServer, name: str = "test-server") -> None:
        self.server = server
        self.thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": POLL_SECONDS},
                                       name=name, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
