"""Send a message after the response, so how long sending takes never tells an attacker anything
(a forgotten-password request must take as long for an unknown address as for a known one)."""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor

from flask import current_app

from ..extensions import db

log = logging.getLogger(__name__)
_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="idp-notify")


def submit(func, *args, **kwargs) -> Future:
    app = current_app._get_current_object()

    def run():
        with app.app_context():
            try:
                func(*args, **kwargs)
                db.session.commit()  # a message held back for later (idp.notify.queue) is kept
            except Exception:  # a failed notice must not vanish silently
                db.session.rollback()
                log.exception("background notification failed", extra={"task": getattr(func, "__name__", "?")})
                raise

    return _executor.submit(run)
