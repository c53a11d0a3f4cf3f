"""What idp.metrics counts, in one process: audited events are counted once committed (a
rolled-back action counts nothing), reuse of a code or refresh token is counted by kind, requests by
the route matched (never the path), and the exporter's collectors read the key folder.

Each test counts into its own registry (prometheus_client's in-memory mode); the multiprocess mode
across gunicorn workers is tests/integration/test_metrics_live.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from idp import audit, config, metrics, serving
from idp.extensions import db
from tests.support import authorize, code_flow, exchange, make_account, make_client, query, token_request


@pytest.fixture
def counted(monkeypatch):
    registry = CollectorRegistry()
    monkeypatch.setattr(metrics, "_m", metrics._Metrics(registry))
    return lambda name, **labels: registry.get_sample_value(name, labels) or 0


def test_audited_events_map_to_bounded_labels(counted):
    metrics.audit_event("signin.password", "failure", {"reason": "bad_credentials"})
    metrics.audit_event("signin.password", "failure", {"reason": "locked"})
    metrics.audit_event("signin.password", "failure", {"reason": "invite_expired"})
    metrics.audit_event("signin.password", "failure", {"reason": "account_disabled"})
    metrics.audit_event("signin.password", "success", {})
    metrics.audit_event("signin.mfa", "failure", {"kind": "totp", "reason": "wrong_code"})
    metrics.audit_event("signin.mfa", "failure", {"kind": "sms", "reason": "locked"})
    metrics.audit_event("signin.mfa", "success", {"kind": "webauthn"})
    metrics.audit_event("signin.completed", "success", {})
    metrics.audit_event("account.locked", "success", {"reason": "mfa"})
    metrics.audit_event("account.invited", "success", {})
    metrics.audit_event("account.invite_resent", "success", {})
    metrics.audit_event("token.grant_revoked", "success", {"reason": "revoked by client"})
    assert counted("idp_signins_total", outcome="wrong_password") == 1
    assert counted("idp_signins_total", outcome="locked") == 2
    assert counted("idp_signins_total", outcome="refused") == 2
    assert counted("idp_signins_total", outcome="mfa_failed") == 1
    assert counted("idp_signins_total", outcome="success") == 1
    assert counted("idp_mfa_checks_total", kind="totp", outcome="failure") == 1
    assert counted("idp_mfa_checks_total", kind="webauthn", outcome="success") == 1
    assert counted("idp_lockouts_total", reason="mfa") == 1
    assert counted("idp_invites_total", event="sent") == 1
    assert counted("idp_invites_total", event="resent") == 1
    assert counted("idp_invites_total", event="expired") == 1
    assert counted("idp_token_reuse_detected_total", kind="refresh") == 0  # a client's revocation is not reuse


def test_an_audited_event_counts_only_once_committed(app, counted):
    with app.app_context():
        audit.record("account.invited", actor="test")
        db.session.rollback()
        assert counted("idp_invites_total", event="sent") == 0
        audit.record("account.invited", actor="test")
        db.session.commit()
        assert counted("idp_invites_total", event="sent") == 1


def test_reused_codes_and_refresh_tokens_are_counted_and_tokens_by_grant_and_client(app, client, counted):
    with app.app_context():
        make_account()
        rp = make_client()
    response, verifier = authorize(client, rp)
    code = query(response.location)["code"]
    tokens = exchange(client, rp, code, verifier).get_json()
    assert exchange(client, rp, code, verifier).status_code == 400
    assert counted("idp_token_reuse_detected_total", kind="code") == 1

    tokens = code_flow(client, rp)
    refreshed = token_request(client, rp, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200
    assert token_request(client, rp, {"grant_type": "refresh_token",
                                      "refresh_token": tokens["refresh_token"]}).status_code == 400
    assert counted("idp_token_reuse_detected_total", kind="refresh") == 1
    assert counted("idp_tokens_issued_total", grant_type="authorization_code", client=rp.client_id) == 2
    assert counted("idp_tokens_issued_total", grant_type="refresh_token", client=rp.client_id) == 1


def test_client_credentials_tokens_are_counted(app, client, counted):
    with app.app_context():
        service = make_client("Entries", grant_types=["client_credentials"], redirect_uris=[])
    answer = token_request(client, service, {"grant_type": "client_credentials"})
    assert answer.status_code == 200, answer.get_json()
    assert counted("idp_tokens_issued_total", grant_type="client_credentials", client=service.client_id) == 1


def test_requests_are_labelled_by_route_never_by_path(app, client, counted):
    for path in ("/healthz", "/no/such/page/1", "/no/such/page/2", "/jwks.json"):
        client.get(path)
    # answered ahead of Flask (idp.oidc.published), still by name
    assert counted("idp_http_request_duration_seconds_count", endpoint="published.jwks", method="GET",
                   status="200") == 1
    assert counted("idp_http_request_duration_seconds_count", endpoint="ops.healthz", method="GET",
                   status="200") == 1
    assert counted("idp_http_request_duration_seconds_count", endpoint="unmatched", method="GET",
                   status="404") == 2


def test_a_backend_outage_is_counted(app, client, counted, monkeypatch):
    from idp.store import StoreUnavailable

    def down(*_args, **_kwargs):
        raise StoreUnavailable("Redis: ConnectionError")

    with app.app_context():
        rp = make_client()
    for name in ("take", "swap", "get", "put"):
        monkeypatch.setattr(app.extensions["idp.store"], name, down)
    answer = token_request(client, rp, {"grant_type": "authorization_code", "code": "a-code",
                                        "redirect_uri": rp.redirect_uri})
    assert answer.status_code == 503, answer.get_data(as_text=True)
    assert counted("idp_backend_unavailable_total", backend="store") == 1


def test_the_exporter_reports_key_ages_and_the_listen_setting_is_checked(settings):
    text = generate_latest(serving.registry(settings)).decode()
    assert 'idp_signing_key_age_seconds{alg="ES256"' in text
    with pytest.raises(config.ConfigError, match=r"\[metrics\] listen"):
        config.load(env={}, metrics={"listen": "9464"})


def test_metrics_are_off_unless_listen_is_set(settings):
    assert metrics.enable(settings) is False


# ------------------------------------------------------------------ the Grafana dashboard
DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "idp-dashboard.json"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def exposed_names(settings) -> set:
    registry = CollectorRegistry()
    metrics._Metrics(registry)
    registry.register(serving._KeyAges(settings))
    return {family.name + suffix for family in registry.collect() for suffix in SUFFIXES[family.type]}


def test_the_dashboard_is_well_formed_and_shows_only_metrics_the_provider_exposes(settings):
    dashboard = json.loads(DASHBOARD.read_text())
    names = exposed_names(settings)
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["w"] > 0 and grid["h"] > 0, panel["title"]
        area = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not cells & area, f"{panel['title']} overlaps another panel"
        cells |= area
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            expr = target["expr"]
            assert target["datasource"]["uid"] == "${datasource}"
            for open_, close in ("()", "{}", "[]"):
                assert expr.count(open_) == expr.count(close), expr
            used = set(re.findall(r"\bidp_[a-z0-9_]+", expr))
            assert used and used <= names, f"{panel['title']}: {used - names} not exposed"
    # and every metric the provider exposes has a panel
    shown = {n for p in panels for t in p["targets"] for n in re.findall(r"\bidp_[a-z0-9_]+", t["expr"])}
    families = {re.sub(r"_(total|bucket|count|sum)$", "", n) for n in names}
    assert {f for f in families if not any(re.sub(r"_(total|bucket|count|sum)$", "", n) == f for n in shown)} == set()
    assert {v["name"] for v in dashboard["templating"]["list"]} == {"datasource", "job"}


def test_a_refresh_that_loses_the_race_for_its_token_counts_no_token(app, client, counted, monkeypatch):
    """The access token is signed before the token is used up; if another request used it first,
    nothing reaches the client and nothing is counted as issued (only the reuse)."""
    from idp.oidc import tokens as token_module

    with app.app_context():
        make_account()
        rp = make_client()
    issued = code_flow(client, rp)
    monkeypatch.setattr(token_module, "rotate_refresh_token", lambda *args, **kwargs: False)
    lost = token_request(client, rp, {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]})
    assert lost.status_code == 400 and lost.get_json()["error"] == "invalid_grant"
    assert counted("idp_token_reuse_detected_total", kind="refresh") == 1
    assert counted("idp_tokens_issued_total", grant_type="refresh_token", client=rp.client_id) == 0
