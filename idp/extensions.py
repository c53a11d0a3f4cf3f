"""The provider's shared services, created once per app: database, store, CSRF, i18n, rate limits.

Module-level names are proxies to the current app's instance, so the same code
works for several apps in one process (the tests run SQLite and PostgreSQL apps
side by side).
"""

from __future__ import annotations

import logging
import threading
import time

from flask import Flask, current_app, request
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData, create_engine, event, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import DeclarativeBase, scoped_session, sessionmaker
from werkzeug.local import LocalProxy

from .logs import REQUEST_ID
from .store import SOCKET_TIMEOUT, RedisStore, Store
from .store import from_settings as store_from_settings

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base of every model; the naming convention keeps migrations identical on SQLite and PostgreSQL."""

    metadata = MetaData(naming_convention=NAMING)


def hold_row(key_column, value) -> None:
    """Hold the row whose ``key_column`` is ``value`` until the transaction ends, so that a second
    change to the same thing waits here and then counts what the first left. SQLite has no row
    locks and ignores FOR UPDATE: a no-op write takes its database's write lock instead (the
    embedded default serves with threads too). Names nobody's claims (idp.accounts.claims_copies).

    FOR NO KEY UPDATE, not FOR UPDATE: holders still wait for each other, but a row that refers to
    this one (an account to its centre) can still be written. PostgreSQL checks that reference
    again when a transaction updates a row it already updated, taking FOR KEY SHARE on the row held
    here: under FOR UPDATE, a type change holding the centre and a grant writing the account twice
    deadlocked. Nothing that holds a row changes its key or deletes it."""
    if db.session.get_bind().dialect.name == "sqlite":
        db.session.execute(update(key_column.class_).where(key_column == value).values({key_column.key: key_column})
                           .execution_options(synchronize_session=False, claims_of=()))
    else:
        db.session.execute(select(key_column).where(key_column == value).with_for_update(key_share=True))


AFTER_COMMIT = "idp.after_commit"
BEFORE_COMMIT = "idp.before_commit"


def as_it_commits(action) -> None:
    """Run ``action()`` as the current transaction commits, before it does: if it raises, nothing
    is committed and the caller gets its error (a retried commit runs it again); forget it if the
    transaction rolls back.

    For a revocation written to the store: a store that cannot take it must fail the change, not
    let it commit with its tokens still working (written after the commit, a store dropping at that
    moment left them working until they expired). A revocation written for a change that then
    fails to commit only ends some tokens early. (No SQL inside the action.)"""
    db.session.info.setdefault(BEFORE_COMMIT, []).append(action)


def _run_before_commit(session) -> None:
    actions = session.info.pop(BEFORE_COMMIT, [])
    for done, action in enumerate(actions):
        try:
            action()
        except BaseException:
            session.info[BEFORE_COMMIT] = actions[done:] + session.info.get(BEFORE_COMMIT, [])
            raise


def after_commit(action) -> None:
    """Run ``action()`` once the current transaction commits; forget it if it rolls back.

    For side effects outside the database that must match what was committed: a revocation
    written to the store, a back-channel logout queued. (No SQL inside the action.)"""
    db.session.info.setdefault(AFTER_COMMIT, []).append(action)


def _run_after_commit(session) -> None:
    """The change is committed: a side effect that fails now (the store unreachable) is logged,
    not raised, so the caller is not told that a committed change failed."""
    for action in session.info.pop(AFTER_COMMIT, []):
        try:
            action()
        except Exception:
            logging.getLogger(__name__).exception("an after-commit action failed")


def _forget_commit_actions(session, _transaction) -> None:
    session.info.pop(BEFORE_COMMIT, None)
    session.info.pop(AFTER_COMMIT, None)


def make_engine(url: str, pool_size: int = 10, *, autocommit: bool = False) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 15, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            # WAL lets the CLI write while the server reads; FKs are off by default in SQLite.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=15000")
            cur.close()

        return engine
    if autocommit:
        # set once per connection, never reset; with no transaction to end, nothing to roll back
        engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size, isolation_level="AUTOCOMMIT",
                               pool_reset_on_return=None)
    else:
        engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size)
    _ping_when_idle(engine)
    return engine


#: a pooled connection unused for this long is tested before it is handed out
PING_AFTER_IDLE_SECONDS = 1.0


def _ping_when_idle(engine: Engine) -> None:
    """SQLAlchemy's pool_pre_ping, but only for a connection that has sat idle: one that was in use
    a moment ago is very likely alive, and pinging it would add a round trip to every request.
    A dead connection that slips through fails its request with a 503 (idp.errors) and is
    replaced; one found dead here is replaced before anyone uses it."""

    @event.listens_for(engine, "checkin")
    def _note_idle(_dbapi_conn, record):
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_conn, record, _proxy):
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception:  # noqa: BLE001 - any failure to answer means the same: a new connection
            alive = False
        if not alive:
            raise sa_exc.DisconnectionError("connection found dead after idling")  # the pool reconnects


def server_gone(error: sa_exc.DBAPIError) -> bool:
    """Whether a database error means the server cannot be reached (down, restarting, the
    connection cut), rather than a statement it refused."""
    return isinstance(error, (sa_exc.OperationalError, sa_exc.InterfaceError)) or error.connection_invalidated


def _share_disconnects(*engines: Engine) -> None:
    """When one engine finds the server gone, SQLAlchemy discards the rest of that engine's pool;
    the other engine's connections went to the same server, so they are discarded too, rather
    than each failing one more request with a 503 after the server is back."""

    def _discard_siblings(context) -> None:
        if context.is_disconnect:
            for engine in engines:
                if engine is not context.engine:
                    engine.dispose()

    for engine in engines:
        event.listen(engine, "handle_error", _discard_siblings)


class Database:
    """One engine and one scoped session per app; the session ends with the app context. On
    PostgreSQL also a pool of connections in autocommit, for the busiest statements that stand
    alone (``autocommit``)."""

    def __init__(self, url: str, pool_size: int = 10) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size)
        factory = sessionmaker(self.engine, expire_on_commit=False)
        event.listen(factory, "before_commit", _run_before_commit)
        event.listen(factory, "after_commit", _run_after_commit)
        event.listen(factory, "after_soft_rollback", _forget_commit_actions)
        self.session = scoped_session(factory)
        self._autocommit_engine = make_engine(url, pool_size, autocommit=True) if self.is_postgres else None
        self._autocommit = threading.local()
        if self._autocommit_engine is not None:
            _share_disconnects(self.engine, self._autocommit_engine)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @property
    def engines(self) -> tuple[Engine, ...]:
        """Every engine the app runs statements on (to watch or count them all)."""
        return (self.engine,) if self._autocommit_engine is None else (self.engine, self._autocommit_engine)

    def remove(self, _exc=None) -> None:
        try:
            self.session.remove()
        except sa_exc.DBAPIError as error:
            if not server_gone(error):
                raise
            # The server dropped the connection after this request's work (it restarted): it has
            # ended whatever transaction was open itself, and the answer already decided stands.
            self.session.registry.clear()
        connection = getattr(self._autocommit, "connection", None)
        if connection is not None:
            self._autocommit.connection = None
            connection.close()

    def autocommit(self) -> Connection:
        """A connection in autocommit for this request (the same one until the app context ends):
        each statement is its own transaction, with no BEGIN before it and no COMMIT or ROLLBACK
        round trip after, and its pool neither sets nor resets anything per checkout. For the
        busiest reads (userinfo and a refresh read one row) and for a write that is a single
        atomic statement (a refresh's rotation). Not for anything that must commit with other
        changes: that is the session's. On SQLite, in process, a round trip costs nothing and this
        is the session's own connection, in its transaction."""
        if self._autocommit_engine is None:
            return self.session.connection()
        connection = getattr(self._autocommit, "connection", None)
        if connection is None or connection.closed:
            connection = self._autocommit.connection = self._autocommit_engine.connect()
        return connection

    #: set by ``dispose``: the app is finished with (its background pollers stop visiting it)
    closed = False

    def dispose(self) -> None:
        self.closed = True
        self.remove()
        self.engine.dispose()
        if self._autocommit_engine is not None:
            self._autocommit_engine.dispose()


csrf = CSRFProtect()
babel = Babel()

RATE_LIMITS_ATTR = "_idp_rate_limits"


def rate_limited(limit_value, **kwargs):
    """Mark a view for rate limiting (Flask-Limiter arguments). Each app applies the marks with its
    own Limiter (``apply_rate_limits``), so apps in one process never share counters or storage."""

    def mark(view):
        setattr(view, RATE_LIMITS_ATTR, [*getattr(view, RATE_LIMITS_ATTR, []), (limit_value, kwargs)])
        return view

    return mark


def apply_rate_limits(app: Flask) -> None:
    """Wrap every marked view of the app with the app's own limiter (after blueprints are registered).

    There are no default limits: each limited view checks its limits in its own decorator. So the
    limiter's global request hooks would only cost time on every request (the token endpoint
    included) and are removed; its per-request state lives on the request context and goes with it."""
    limiter = app.extensions["idp.limiter"]
    for endpoint, view in list(app.view_functions.items()):
        for limit_value, kwargs in getattr(view, RATE_LIMITS_ATTR, []):
            view = limiter.limit(limit_value, **kwargs)(view)
        app.view_functions[endpoint] = view
    def _not_limiters(funcs):
        return [f for f in funcs if getattr(f, "__self__", None) is not limiter
                and limiter not in getattr(f, "args", ())]

    for registry in (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs):
        registry[None] = _not_limiters(registry.get(None, []))


def init_app(app: Flask) -> None:
    settings = app.config["IDP_SETTINGS"]
    database = Database(settings.database_url, settings.database.pool_size)
    app.extensions["idp.db"] = database
    app.teardown_appcontext(database.remove)
    store = app.extensions["idp.store"] = store_from_settings(settings)

    csrf.init_app(app)
    redis_url = settings.store.redis_url
    storage_options = {}
    if redis_url:
        # a limit that cannot be checked fails closed (503, idp.errors), never silently open, and
        # as soon as the store's own calls would: a Redis that hangs holds no request longer
        storage_options = {"wrap_exceptions": True, "socket_timeout": SOCKET_TIMEOUT,
                           "socket_connect_timeout": SOCKET_TIMEOUT}
    if redis_url.startswith("redis+sentinel:"):
        storage_options["use_replicas"] = False  # count on the primary: a replica may lag behind it
        storage_options["sentinel_kwargs"] = {"socket_timeout": SOCKET_TIMEOUT,
                                              "socket_connect_timeout": SOCKET_TIMEOUT}
    limiter = app.extensions["idp.limiter"] = Limiter(
        key_func=get_remote_address, app=app, default_limits=[], headers_enabled=False,
        storage_uri=redis_url or "memory://", key_prefix=settings.store.prefix + "rl",
        storage_options=storage_options)
    if isinstance(store, RedisStore):
        store.follow_primary_with(getattr(limiter.storage, "storage", None))


def _db() -> Database:
    return current_app.extensions["idp.db"]


def _store() -> Store:
    return current_app.extensions["idp.store"]


db: Database = LocalProxy(_db)  # type: ignore[assignment]
store: Store = LocalProxy(_store)  # type: ignore[assignment]


# ------------------------------------------------------------------ typed accessors for the app's state
def settings():
    """The running app's settings (idp.config.Settings)."""
    return current_app.config["IDP_SETTINGS"]


def pepper() -> str:
    """The key of the keyed hash for high-entropy secrets (idp.secrets.fast_hash)."""
    return current_app.extensions["idp.pepper"]


def keys():
    """This process's view of the signing keys (idp.oidc.keys.KeyCache)."""
    return current_app.extensions["idp.keys"]


def client_cache():
    """This process's cache of registered clients (idp.oidc.clients.ClientCache)."""
    return current_app.extensions["idp.clients"]


def authorization_server():
    """The app's OAuth 2.0 / OpenID Connect server (idp.oidc.server)."""
    return current_app.extensions["idp.oauth"]


def client_ip() -> str | None:
    """The caller's address (ProxyFix has already applied trusted X-Forwarded-For)."""
    return request.remote_addr if request else None


def request_id() -> str | None:
    """This request's id (set by logs.RequestLog), or None outside a request."""
    return request.environ.get(REQUEST_ID) if request else None
