"""Back-channel logout (OpenID Connect Back-Channel Logout 1.0).

When a session ends, every client that took part in it and registered a
``backchannel_logout_uri`` is sent a signed logout token. Ending a session builds the
tokens; the jobs go to a delayed queue in the shared store as the transaction commits
(``extensions.as_it_commits``: a store that cannot take them fails the change, so nobody is
signed out here while a service is never told), and are delivered off the request path with
retries and backoff, so a slow or dead client never delays the person signing out, and a
rolled-back action notifies nobody.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
import urllib.parse
import weakref

from flask import Flask, current_app
from sqlalchemy.exc import DBAPIError

from .. import audit, metrics, outbound, protocol, secrets
from ..extensions import after_commit, as_it_commits, client_cache, db, settings, store
from ..store import StoreUnavailable
from . import tokens

log = logging.getLogger(__name__)
QUEUE = "backchannel-logout"
EVENT = "http://schemas.openid.net/event/backchannel-logout"
BACKOFF = (2, 5, 15, 60, 300, 900)  # seconds before each retry; then give up and audit
TOKEN_LIFETIME = 120


def logout_token(client, *, sub: str | None, sid: str | None) -> str:
    now = int(time.time())
    claims = {"iss": tokens.issuer(), "aud": client.client_id, "iat": now, "exp": now + TOKEN_LIFETIME,
              "jti": secrets.token(16), "events": {EVENT: {}}}
    if sub:
        claims["sub"] = sub
    if sid:
        claims["sid"] = sid
    alg = client.id_token_signed_response_alg or settings().keys.id_token_alg
    return tokens.sign(claims, alg, typ=protocol.LOGOUT_TOKEN_TYP)


def session_ended(entry) -> None:
    """Note that an SSO session ended: a logout token for each of its clients that registered a
    logout URI, queued as the transaction commits."""
    cache = client_cache()
    jobs = []
    for client_id in entry.clients or []:
        client = cache.get(client_id)
        if client is None or not client.backchannel_logout_uri:
            continue
        jobs.append({"client_id": client_id, "uri": client.backchannel_logout_uri, "attempt": 0,
                     "token": logout_token(client, sub=entry.account.sub, sid=entry.sid)})
    # Queued as the change commits, before it does: a store that cannot take a job fails the
    # change (a 503, still signed in: try again), never a session ended here with its services
    # never told (queued after the commit, a store dropping at that moment lost the job, and the
    # failure was only logged; found by an outside probe). A poller (in any process) may then
    # deliver a token before the commit lands, or for a change whose commit then fails: that
    # service signs the person out while the session here lives on, and its next sign-in comes
    # back through this session. Decided acceptable, as for the revocation markers: a logout
    # too early costs a sign-in; a logout lost leaves a session the person believes ended.
    # One action a job: a retried commit queues again only the jobs not yet queued.
    for job in jobs:
        as_it_commits(functools.partial(_queue, job))
    if jobs:
        after_commit(_deliver_soon)  # this process's own prompt delivery waits for the commit


def _queue(job: dict) -> None:
    store.enqueue(QUEUE, json.dumps(job), time.time())


def _deliver_soon() -> None:
    _Poller.watch(current_app._get_current_object())
    from ..notify import background

    background.submit(deliver_due)


def _post(uri: str, token: str) -> bool:
    """Deliver one logout token through the guarded fetcher (idp/outbound.py, which logs why a
    delivery failed)."""
    body = urllib.parse.urlencode({"logout_token": token}).encode()
    try:
        response = outbound.for_app(current_app).fetch(
            uri, method="POST", body=body, headers={"Content-Type": "application/x-www-form-urlencoded"},
            purpose="back-channel logout")
    except outbound.OutboundError:
        return False
    return response.status in (200, 204)


def deliver_due(now: float | None = None) -> int:
    """Deliver every job whose time has come; failures go back with a longer delay. Returns the
    number delivered. Safe to run in several processes at once: each job is claimed by one."""
    delivered = 0
    now = time.time() if now is None else now
    fetcher = outbound.for_app(current_app)
    for raw in store.claim_due(QUEUE, now):
        job = json.loads(raw)
        resting = fetcher.resting_for(job["uri"])
        if resting:  # failed a moment ago (another job, same endpoint): wait, without using an attempt
            store.enqueue(QUEUE, raw, now + resting)
            continue
        if _post(job["uri"], job["token"]):
            delivered += 1
            metrics.backchannel("delivered")
            continue
        attempt = job["attempt"]
        if attempt < len(BACKOFF):
            metrics.backchannel("retried")
            job["attempt"] = attempt + 1
            store.enqueue(QUEUE, json.dumps(job), now + BACKOFF[attempt])
        else:
            audit.record("backchannel_logout.failed", actor=None, outcome="failure",
                         client_id=job["client_id"], attempts=attempt + 1)
            db.session.commit()
    return delivered


class _Poller:
    """One thread per process retrying due jobs for every app that has queued any."""

    _apps: weakref.WeakSet[Flask] = weakref.WeakSet()
    _thread: threading.Thread | None = None
    _lock = threading.Lock()
    INTERVAL = 1.0

    @classmethod
    def watch(cls, app: Flask) -> None:
        with cls._lock:
            cls._apps.add(app)
            if cls._thread is None or not cls._thread.is_alive():
                cls._thread = threading.Thread(target=cls._run, name="idp-backchannel", daemon=True)
                cls._thread.start()

    @classmethod
    def _run(cls) -> None:
        while True:
            time.sleep(cls.INTERVAL)
            for app in list(cls._apps):
                if app.extensions["idp.db"].closed:  # the app was shut down (as the mail queue's poller)
                    cls._apps.discard(app)
                    continue
                try:
                    with app.app_context():
                        deliver_due()
                except (StoreUnavailable, DBAPIError) as exc:
                    # an outage, said each second it lasts: one line, no traceback (formatting one
                    # parses source in 3.11, which another thread's parsing at that moment can break)
                    log.warning("back-channel logout delivery waits for the backends (%s: %s)",
                                type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
                except Exception:  # keep retrying other apps; the failure is logged
                    log.exception("back-channel logout delivery failed")
