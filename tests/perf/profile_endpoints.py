"""Where one request's time goes, endpoint by endpoint (not a test): the app on PostgreSQL + Redis,
called through WSGI in this process (no HTTP server, no load generator), profiled with pyinstrument.

    python tests/perf/profile_endpoints.py                       # every endpoint, 2000 calls each
    python tests/perf/profile_endpoints.py --endpoint userinfo --calls 5000 --html /tmp/userinfo.html

Prints, per endpoint, the microseconds of one call (wall clock, this process) and pyinstrument's
call tree (functions over 2 % of the time). The numbers show where to look; compare.py measures.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

ENDPOINTS = ("client_credentials", "introspection", "jwks", "discovery", "userinfo", "refresh_token")


def build(workdir: Path, *, policies_dir: Path | None = None):
    from sqlalchemy import create_engine, text

    from idp import config, create_app, migrations
    from idp.extensions import make_engine
    from idp.oidc.keys import KeyFolder
    from tests.live_provider import admin_database_url, redis_url

    name = f"idp_profile_{os.getpid()}"
    admin = create_engine(admin_database_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = create_engine(admin_database_url()).url.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    migrations.upgrade(engine)
    engine.dispose()
    KeyFolder(workdir / "keys").ensure()
    settings = config.load(None, env={}, server={"issuer": "http://localhost", "data_dir": str(workdir / "var"),
                                                 "secret_key": "profile"},
                           database={"url": url}, store={"redis_url": redis_url(), "prefix": f"prof:{uuid.uuid4().hex}:"},
                           keys={"dir": str(workdir / "keys")}, logging={"level": "INFO", "format": "json"},
                           policies={"dir": str(policies_dir or "")})
    app = create_app(settings)
    import logging

    for handler in logging.getLogger().handlers:  # the access lines are written (their cost counts), unseen
        if getattr(handler, "idp_stream", False):
            handler.stream = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    return app, admin, name


def requests_for(app):
    """(endpoint, method, path, headers, form) for each endpoint, with real tokens."""
    from idp import protocol, secrets
    from idp.extensions import db
    from idp.oidc import tokens
    from tests.support import make_account, make_client

    with app.app_context():
        account = make_account("eo@centre.example", mfa=False)
        # as compare.py's client: ES256 ID tokens (a per-client setting; RS256 costs ~1 ms a signature)
        rp = make_client(grant_types=["authorization_code", "refresh_token", "client_credentials"],
                         scope="openid profile email access offline_access reports.read",
                         id_token_signed_response_alg="ES256")
        client = app.extensions["idp.clients"].get(rp.client_id)
        principal = tokens.Principal(account=account, auth_time=int(time.time()), amr=["pwd", "otp", "mfa"],
                                     acr=protocol.ACR_MFA, sid=None, grant_id=secrets.token(16))
        access_token, _ = tokens.issue_access_token(client, "authorization_code", principal, "openid profile access")
        refresh_tokens = []
        for _ in range(20000):
            value = secrets.token(32)
            principal.grant_id = secrets.token(16)
            tokens.save_refresh_token(value, client, principal, "openid profile email access offline_access")
            refresh_tokens.append(value)
        db.session.commit()
    basic = {"Authorization": "Basic " + base64.b64encode(f"{rp.client_id}:{rp.client_secret}".encode()).decode()}
    bearer = {"Authorization": f"Bearer {access_token}"}
    refresh = iter(refresh_tokens)
    return {
        "client_credentials": lambda: ("POST", "/token", basic, {"grant_type": "client_credentials"}),
        "introspection": lambda: ("POST", "/introspect", basic, {"token": access_token}),
        "jwks": lambda: ("GET", "/jwks.json", {}, None),
        "discovery": lambda: ("GET", "/.well-known/openid-configuration", {}, None),
        "userinfo": lambda: ("GET", "/userinfo", bearer, None),
        "refresh_token": lambda: ("POST", "/token", basic, {"grant_type": "refresh_token",
                                                             "refresh_token": next(refresh)}),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", choices=ENDPOINTS, action="append")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--html", help="also write pyinstrument's HTML report here (one endpoint)")
    args = parser.parse_args()
    from pyinstrument import Profiler
    from sqlalchemy import text

    with tempfile.TemporaryDirectory() as tmp:
        app, admin, name = build(Path(tmp))
        try:
            make = requests_for(app)
            client = app.test_client()
            for endpoint in args.endpoint or ENDPOINTS:
                for _ in range(50):  # warm caches and connections
                    method, path, headers, form = make[endpoint]()
                    assert client.open(path, method=method, headers=headers, data=form).status_code == 200, endpoint
                profiler = Profiler(interval=0.0002)
                started = time.perf_counter()
                profiler.start()
                for _ in range(args.calls):
                    method, path, headers, form = make[endpoint]()
                    client.open(path, method=method, headers=headers, data=form)
                profiler.stop()
                per_call = (time.perf_counter() - started) / args.calls * 1e6
                print(f"\n===== {endpoint}: {per_call:.0f} µs per call (profiled) =====")
                print(profiler.output_text(unicode=True, color=False, show_all=False, time="percent_of_total",
                                           flat=False)[:6000])
                if args.html:
                    Path(args.html).write_text(profiler.output_html())
        finally:
            app.extensions["idp.db"].dispose()
            app.extensions["idp.store"].close()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return 0


if __name__ == "__main__":
    sys.exit(main())
