"""The exam-board identity provider.

``create_app`` wires config -> extensions -> policies and keys -> OIDC -> blueprints, nothing else.
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask
from flask_babel import get_locale
from jinja2 import BytecodeCache
from werkzeug.middleware.proxy_fix import ProxyFix

from . import config as config_module

__version__ = "0.1.0"


class _CompiledTemplates(BytecodeCache):
    """Each template compiled once per process, however many apps the process builds: the test
    suite builds thousands, and compiling the page templates again for each cost more than most
    tests themselves. Jinja keys the code by template and checks it against the source's checksum,
    so a changed template is compiled afresh."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


_COMPILED_TEMPLATES = _CompiledTemplates()


def create_app(settings: config_module.Settings | None = None) -> Flask:
    """Build the WSGI app. With no settings, read IDP_CONFIG / IDP_* from the environment
    (this is what ``gunicorn 'idp:create_app()'`` does)."""
    from . import branding, errors, extensions, headers, i18n, logs, policy, records, secrets
    from .notify import mail
    from .oidc import keys as oidc_keys
    from .oidc.plain_requests import PlainRequests
    from .oidc.published import PublishedDocuments

    if settings is None:
        settings = config_module.load()
    if not settings.server.issuer:
        settings = config_module.with_issuer(settings, config_module.effective_issuer(settings))

    loaded_policy = policy.load(settings.policies.dir or None)  # validate before writing anything
    app = Flask(__name__)
    app.config["IDP_SETTINGS"] = settings
    app.extensions["idp.policy"] = loaded_policy
    app.config["SECRET_KEY"] = settings.server.secret_key or secrets.load_or_create(settings, "secret_key")
    app.extensions["idp.pepper"] = settings.server.pepper or secrets.load_or_create(settings, "pepper")
    app.config["JSON_SORT_KEYS"] = False
    app.config["SESSION_COOKIE_SECURE"] = not settings.issuer_is_local_http
    app.config["WTF_CSRF_TIME_LIMIT"] = None  # the session bounds the token's life
    # the plain requests services make all the time are answered before Flask (inside the proxy's
    # view of the scheme and host, which the transport check reads)
    app.wsgi_app = PlainRequests(app.wsgi_app, app)
    if settings.server.trusted_proxies:
        n = settings.server.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)

    app.config["SESSION_COOKIE_NAME"] = "idp_state" if settings.issuer_is_local_http else "__Host-idp_state"
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"

    app.session_interface = secrets.LazyCookieSessions()
    # innermost: the constant documents are answered before Flask, inside the log and the headers
    app.wsgi_app = PublishedDocuments(app.wsgi_app, app)
    logs.init_app(app)
    headers.init_app(app)
    extensions.init_app(app)
    # the page's language: ui_locales, then the person's own (remembered in the state cookie), then
    # the browser's; choosing it never touches the database (idp.i18n)
    extensions.babel.init_app(app, locale_selector=i18n.select_locale,
                              default_translation_directories=str(Path(__file__).parent / "translations"))
    app.jinja_env.globals["get_locale"] = get_locale
    app.jinja_env.bytecode_cache = _COMPILED_TEMPLATES
    errors.init_app(app)
    branding.init_app(app)
    mail.init_app(app)
    app.extensions["idp.keys"] = oidc_keys.KeyCache(
        oidc_keys.KeyFolder(settings.keys_dir, settings.keys.publish_delay))

    from .ops import views as ops_views

    app.register_blueprint(ops_views.bp)
    _register_features(app)
    extensions.apply_rate_limits(app)
    with app.app_context():
        records.note_store_beginning()  # what was issued before the store last forgot everything is refused
    if os.environ.get(config_module.SERVING_ENV):
        from .admin.housekeeping import PurgeSchedule

        PurgeSchedule.start(app)
    return app


def _register_features(app: Flask) -> None:
    """The protocol endpoints, the pages, the admin API."""
    from . import oidc, web
    from .api import views as api_views
    from .extensions import csrf

    oidc.init_app(app)
    web.init_app(app)
    app.register_blueprint(api_views.bp)
    csrf.exempt(api_views.bp)  # bearer-token API: no cookies, so no CSRF
