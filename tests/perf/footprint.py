"""What a request or a sign-in leaves behind or costs, besides time (used by compare.py; not a test).

- ``redis_keys`` / ``new_keys``: the Redis keys one complete sign-in leaves under the provider's
  prefix, each with its kind (random parts replaced by ``*``), type, ttl and MEMORY USAGE bytes.
- ``session_row_bytes``: the size of the newest ``sso_sessions`` row as PostgreSQL stores it.
- ``count_round_trips``: SQL statements and Redis round trips per request, counted once per endpoint
  in this process through the Flask test client against the same app the server runs (same settings,
  same PostgreSQL database and Redis prefix); not under load, and the second of two identical calls,
  so per-process caches are warm as they are in a running server.
"""

from __future__ import annotations

import re
import threading
from contextlib import contextmanager


# ======================================================================== Redis keys
def redis_keys(redis_client, prefix: str) -> set[str]:
    return {k.decode() if isinstance(k, bytes) else k for k in redis_client.scan_iter(match=prefix + "*", count=1000)}


_RANDOM_PART = re.compile(r"[A-Za-z0-9_\-]{16,}|\d{6,}")


def key_kind(key: str, prefix: str) -> str:
    return _RANDOM_PART.sub("*", key[len(prefix):])


def new_keys(redis_client, prefix: str, keys: set[str]) -> list[dict]:
    found = []
    for key in sorted(keys):
        kind = redis_client.type(key)
        found.append({"kind": key_kind(key, prefix), "type": kind.decode() if isinstance(kind, bytes) else kind,
                      "ttl": redis_client.ttl(key), "bytes": redis_client.memory_usage(key) or 0})
    return found


def session_row_bytes(database_url: str) -> int | None:
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return conn.scalar(text("SELECT pg_column_size(s.*) FROM sso_sessions s ORDER BY created_at DESC LIMIT 1"))
    finally:
        engine.dispose()


# ======================================================================== round trips per request
class TestClientTransport:
    """The sign-in script's transport over the Flask test client (no cookie handling of its own)."""

    def __init__(self, app, base_url: str) -> None:
        self.client, self.base_url, self.requests = app.test_client(use_cookies=False), base_url, 0

    def request(self, method: str, path: str, headers: dict, body=None):
        self.requests += 1
        response = self.client.open(path, method=method, base_url=self.base_url, data=body,
                                    headers={k: v for k, v in headers.items() if k != "Host"})
        found: dict[str, list[str]] = {}
        for name, value in response.headers.items():
            found.setdefault(name.lower(), []).append(value)
        return response.status_code, found, response.get_data()


@contextmanager
def count_round_trips(app):
    """Counts SQL statements and Redis round trips (a command, or a pipeline) made by this thread
    (the server's background threads are not counted)."""
    import redis
    from sqlalchemy import event

    counts = {"sql": 0, "redis": 0}
    me = threading.get_ident()
    engines = app.extensions["idp.db"].engines
    command, pipeline = redis.Redis.execute_command, redis.client.Pipeline.execute

    def on_sql(*_args, **_kwargs):
        if threading.get_ident() == me:
            counts["sql"] += 1

    def counted_command(self, *args, **kwargs):
        if threading.get_ident() == me:
            counts["redis"] += 1
        return command(self, *args, **kwargs)

    def counted_pipeline(self, *args, **kwargs):
        if threading.get_ident() == me and self.command_stack:
            counts["redis"] += 1
        return pipeline(self, *args, **kwargs)

    for engine in engines:
        event.listen(engine, "before_cursor_execute", on_sql)
    redis.Redis.execute_command, redis.client.Pipeline.execute = counted_command, counted_pipeline
    try:
        yield counts
    finally:
        redis.Redis.execute_command, redis.client.Pipeline.execute = command, pipeline
        for engine in engines:
            event.remove(engine, "before_cursor_execute", on_sql)


def round_trips_per_request(app, base_url: str, calls: dict) -> dict:
    """{name: {"sql": n, "redis": n, "requests": n}} for each ``calls[name](transport)``, run twice
    (each call must be repeatable, e.g. with a fresh refresh token); the second run counts."""
    found = {}
    for name, call in calls.items():
        transport = TestClientTransport(app, base_url)
        call(transport)
        transport.requests = 0
        with count_round_trips(app) as counts:
            call(transport)
        found[name] = {**counts, "requests": transport.requests}
    return found
