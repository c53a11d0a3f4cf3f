"""Prometheus metrics: what each process counts, written where one exporter reads them all.

Off unless ``[metrics] listen`` is set. Then every worker process counts in
prometheus_client's multiprocess mode: each writes its values to memory-mapped files in one
folder (``[metrics] dir``), and the exporter (``idp.ops.exporter``: a thread in the gunicorn
master, or ``idp metrics serve`` beside another server) adds them up on each scrape. /metrics
is never on the public site.

Services do not import prometheus_client: they call the small functions below, each a no-op
while metrics are off. Most counts come from the audit trail (``audit.record`` calls
``audit_event`` once the event has committed), so a rolled-back action counts nothing and the
service that owns an event is the one that counts it.
"""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path

#: set by ``enable``; None while metrics are off (every hook below returns at once)
_m: _Metrics | None = None
_lock = threading.Lock()

#: the environment variable prometheus_client reads, at import, to choose multiprocess mode
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

#: where a response made ahead of Flask (idp.oidc.published) names its endpoint for the histogram
ENDPOINT_ENV = "idp.metrics.endpoint"

#: request latency buckets, in seconds: a token is a few milliseconds, a password check ~50 ms
LATENCY_BUCKETS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def folder(settings) -> Path:
    """Where worker processes write their values."""
    return Path(settings.metrics.dir).expanduser().resolve() if settings.metrics.dir \
        else settings.data_dir / "metrics"


def prepare(settings) -> Path:
    """Point prometheus_client at the metrics folder (before it is first imported) and create it.
    Emptying it is the server's job at start (``reset``), never a worker's: others write there."""
    path = folder(settings)
    path.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault(MULTIPROC_ENV, str(path))
    return Path(os.environ[MULTIPROC_ENV])


def reset(path: Path) -> None:
    """Empty the folder before the first worker starts: values of processes of an earlier run
    must not be added to this one's."""
    path.mkdir(parents=True, exist_ok=True)
    for entry in path.glob("*.db"):
        entry.unlink(missing_ok=True)


class _Metrics:
    def __init__(self, registry=None) -> None:
        from prometheus_client import REGISTRY, Counter, Histogram

        registry = REGISTRY if registry is None else registry
        Histogram = functools.partial(Histogram, registry=registry)  # noqa: N806 - the class, bound
        Counter = functools.partial(Counter, registry=registry)  # noqa: N806

        self.requests = Histogram(
            "idp_http_request_duration_seconds", "Time to answer a request (its _count: requests answered)",
            ["endpoint", "method", "status"], buckets=LATENCY_BUCKETS)
        self.signins = Counter("idp_signins_total", "Sign-in steps by outcome", ["outcome"])
        self.mfa = Counter("idp_mfa_checks_total", "Second-factor answers at sign-in, by kind and outcome",
                           ["kind", "outcome"])
        self.lockouts = Counter("idp_lockouts_total", "Accounts locked, by what locked them", ["reason"])
        self.invites = Counter("idp_invites_total", "Invites sent (new, resent) and expired invites presented",
                               ["event"])
        self.tokens = Counter("idp_tokens_issued_total", "Access tokens issued, by grant type and client",
                              ["grant_type", "client"])
        self.reuse = Counter("idp_token_reuse_detected_total",
                             "A used authorization code or rotated refresh token presented again", ["kind"])
        self.backchannel = Counter("idp_backchannel_logout_total",
                                   "Back-channel logout deliveries, by outcome", ["outcome"])
        self.outbound = Counter("idp_outbound_failures_total",
                                "Requests for a client (jwks_uri, logout) refused or failed, by purpose and reason",
                                ["purpose", "reason"])
        self.unavailable = Counter("idp_backend_unavailable_total",
                                   "Requests answered 503 because a backend could not be reached", ["backend"])
        self.mail = Counter("idp_mail_total", "Emails, by outcome (queued, sent, retried, failed)", ["outcome"])
        self._request_children: dict = {}

    def request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        key = (endpoint, method, status)
        child = self._request_children.get(key)
        if child is None:  # labels() takes a lock and builds a tuple: once per combination
            child = self._request_children.setdefault(key, self.requests.labels(endpoint, method, str(status)))
        child.observe(seconds)


def enable(settings) -> bool:
    """Start counting in this process if ``[metrics] listen`` is set. Idempotent."""
    global _m
    if not settings.metrics.listen:
        return False
    with _lock:
        if _m is None:
            prepare(settings)
            _m = _Metrics()
    return True


def enabled() -> bool:
    return _m is not None


# ------------------------------------------------------------------ hooks
def observe_request(environ, status: int, seconds: float) -> None:
    """Called for every request (idp.logs.RequestLog): one histogram observation. The endpoint is
    Flask's name for the route matched (a bounded set), never the path."""
    m = _m
    if m is None:
        return
    request = environ.get("werkzeug.request")
    rule = getattr(request, "url_rule", None)
    endpoint = rule.endpoint if rule is not None else environ.get(ENDPOINT_ENV, "unmatched")
    m.request(endpoint, environ.get("REQUEST_METHOD", ""), status, seconds)


def token_issued(grant_type: str, client_id: str) -> None:
    if _m is not None:
        _m.tokens.labels(grant_type, client_id).inc()


def backchannel(outcome: str) -> None:
    """``delivered``, ``retried`` (a failed attempt put back on the queue) or ``failed`` (given up)."""
    if _m is not None:
        _m.backchannel.labels(outcome).inc()


def outbound_failed(purpose: str, reason: str) -> None:
    if _m is not None:
        # "refused address (loopback)" -> "refused address": the label set stays small
        _m.outbound.labels(purpose, reason.split(" (", 1)[0]).inc()


def backend_unavailable(backend: str) -> None:
    if _m is not None:
        _m.unavailable.labels(backend).inc()


def mail(outcome: str) -> None:
    if _m is not None:
        _m.mail.labels(outcome).inc()


#: signin.password failures: the reason in the audit trail -> the outcome counted
_PASSWORD_OUTCOMES = {"bad_credentials": "wrong_password", "locked": "locked"}
#: what the audit trail calls a reused code or refresh token -> the kind counted
_REUSE = {"authorization code reused": "code", "refresh token reused": "refresh"}


def audit_event(event: str, outcome: str, details: dict) -> None:
    """Count an audited event that has just been committed (called by idp.audit)."""
    m = _m
    if m is None:
        return
    reason = details.get("reason")
    if event == "signin.password":
        if outcome == "success":
            return  # the first step only: a sign-in counts once, when it completes
        if reason == "invite_expired":
            m.signins.labels("refused").inc()
            m.invites.labels("expired").inc()
        else:
            m.signins.labels(_PASSWORD_OUTCOMES.get(reason, "refused")).inc()
    elif event == "signin.mfa":
        kind = str(details.get("kind") or "unknown")
        m.mfa.labels(kind, outcome).inc()
        if outcome != "success":
            m.signins.labels("locked" if reason == "locked" else "mfa_failed").inc()
    elif event == "signin.completed":
        m.signins.labels("success" if outcome == "success" else "locked").inc()
    elif event == "account.locked":
        m.lockouts.labels(str(reason or "unknown")).inc()
    elif event == "account.invited":
        m.invites.labels("sent").inc()
    elif event == "account.invite_resent":
        m.invites.labels("resent").inc()
    elif event == "token.grant_revoked" and reason in _REUSE:
        m.reuse.labels(_REUSE[reason]).inc()
    elif event == "backchannel_logout.failed":
        m.backchannel.labels("failed").inc()
