"""Shared fixtures: every storage-touching test runs on each configured backend.

- ``embedded``: SQLite file + in-process store (always).
- ``pg-redis``: PostgreSQL + Redis, when IDP_TEST_DATABASE_URL and IDP_TEST_REDIS_URL are set
  (.ci/run sets them). If they are set but do not answer, the run stops with an error: never a skip.

Each xdist worker gets its own PostgreSQL database, migrated once; tests start from empty tables.
Each test gets its own Redis key prefix, so nothing leaks between tests or workers.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from idp import config as config_module
from idp import create_app, migrations
from idp.extensions import Base, make_engine
from idp.oidc.keys import KeyFolder

PG_URL = os.environ.get("IDP_TEST_DATABASE_URL", "")
REDIS_URL = os.environ.get("IDP_TEST_REDIS_URL", "")
BACKENDS = ["embedded"] + (["pg-redis"] if PG_URL or REDIS_URL else [])


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def pytest_sessionstart(session):
    if not (PG_URL or REDIS_URL):
        return
    if not (PG_URL and REDIS_URL):
        pytest.exit("set both IDP_TEST_DATABASE_URL and IDP_TEST_REDIS_URL, or neither", returncode=2)
    try:
        engine = create_engine(PG_URL)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        pytest.exit(f"PostgreSQL at {config_module.mask_url(PG_URL)} does not answer: {exc}", returncode=2)
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except Exception as exc:
        pytest.exit(f"Redis at {REDIS_URL} does not answer: {exc}", returncode=2)


def pytest_collection_modifyitems(config, items):
    """Tests marked ``shared_store`` are about several processes sharing PostgreSQL + Redis: they are
    not collected for the one-process embedded backend. Tests marked ``one_backend`` are about
    something storage does not change (the relying-party kit, how bad input is answered, who may
    open a page, what an address or a name becomes): they run on the last configured backend only,
    PostgreSQL + Redis in CI (the stricter of the two about input: it refuses a NUL in text). The
    rest run on both. Either way deselected, rather than reported as skipped."""
    keep, drop = [], []
    for item in items:
        backend = getattr(getattr(item, "callspec", None), "params", {}).get("backend")
        unwanted = (item.get_closest_marker("shared_store") and backend == "embedded") or \
            (item.get_closest_marker("one_backend") and backend not in (None, BACKENDS[-1]))
        (drop if unwanted else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


# ------------------------------------------------------------------ databases
@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once is much faster)."""
    path = tmp_path_factory.mktemp("sqlite") / "template.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    migrations.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_database():
    """This worker's own PostgreSQL database, migrated once and dropped at the end."""
    if not PG_URL:
        yield None
        return
    name = f"idp_test_{_worker()}_{os.getpid()}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        # a throwaway database: a commit need not wait for the disk (every test commits, and empties
        # the tables after itself)
        conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    url = create_engine(PG_URL).url.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    migrations.upgrade(engine)
    engine.dispose()
    yield url
    emptying = _EMPTYING_ENGINES.pop(url, None)
    if emptying is not None:
        emptying.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


_EMPTYING_ENGINES: dict = {}


def _truncate_pg(url: str) -> None:
    """Empty every table after a test. DELETE, children first, rather than TRUNCATE: a test leaves a
    handful of rows, and TRUNCATE makes new files for every table (and syncs them) each time."""
    engine = _EMPTYING_ENGINES.get(url)
    if engine is None:
        # pre_ping: a test may end every connection to its database (test_pool_ping does)
        engine = _EMPTYING_ENGINES[url] = create_engine(url, pool_size=1, pool_pre_ping=True)
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


# ------------------------------------------------------------------ keys
@pytest.fixture(scope="session")
def keys_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("keys-template")
    KeyFolder(path).ensure()
    return path


@pytest.fixture
def keys_dir(tmp_path, keys_template) -> Path:
    path = tmp_path / "keys"
    shutil.copytree(keys_template, path)
    return path


# ------------------------------------------------------------------ policies
@pytest.fixture(scope="session")
def test_policies_dir(tmp_path_factory) -> Path:
    """The shipped policies with cheaper argon2 parameters: every flow test hashes and verifies
    passwords, and at OWASP's parameters (~140 ms each here) that alone would take minutes.
    Tests about hashing itself use the shipped policies: make_settings(policies={"dir": ""})."""
    from idp import policy

    path = tmp_path_factory.mktemp("policies")
    for item in policy.default_dir().glob("*.toml"):
        shutil.copy(item, path / item.name)
    security = (path / "security.toml").read_text()
    security = security.replace("argon2_memory_kib = 19456", "argon2_memory_kib = 1024")
    (path / "security.toml").write_text(security)
    assert "argon2_memory_kib = 1024" in security
    return path


@pytest.fixture(scope="session")
def unlimited_policies_dir(tmp_path_factory, test_policies_dir) -> Path:
    """The test policies with every rate limit out of reach: for tests that send many requests
    on purpose (fuzzing), where the limits are not what is being tested."""
    import re

    path = tmp_path_factory.mktemp("policies-unlimited")
    for item in test_policies_dir.glob("*.toml"):
        shutil.copy(item, path / item.name)
    security = path / "security.toml"
    security.write_text(re.sub(r'^(\w+_per_\w+) = "[^"]+"', r'\1 = "1000000 per minute"',
                               security.read_text(), flags=re.M))
    return path


# ------------------------------------------------------------------ Redis beyond one node
@pytest.fixture(scope="session")
def sentinel_setup(tmp_path_factory):
    """A primary, a replica and three Sentinels of this test process's own (tests/redis_servers.py)."""
    from tests.redis_servers import SentinelSetup

    with SentinelSetup(tmp_path_factory.mktemp("sentinel")) as setup:
        yield setup


@pytest.fixture(scope="session")
def cluster_setup(tmp_path_factory):
    """A three-primary Redis Cluster of this test process's own (tests/redis_servers.py)."""
    from tests.redis_servers import ClusterSetup

    with ClusterSetup(tmp_path_factory.mktemp("cluster")) as setup:
        yield setup


# ------------------------------------------------------------------ settings and apps
@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def make_settings(tmp_path, keys_dir, sqlite_template, pg_database, backend, test_policies_dir):
    """Build settings for this test's backend; keyword sections override (``tokens={...}``)."""

    def build(**sections) -> config_module.Settings:
        data_dir = tmp_path / "var"
        data_dir.mkdir(exist_ok=True)
        base = {
            "server": {"issuer": "http://localhost", "data_dir": str(data_dir),
                       "secret_key": "test-secret-key"},
            "keys": {"dir": str(keys_dir)},
            "logging": {"level": "WARNING", "format": "text"},
            "policies": {"dir": str(test_policies_dir)},
        }
        if backend == "embedded":
            db_file = data_dir / "idp.sqlite3"
            if not db_file.exists():
                shutil.copy(sqlite_template, db_file)
            base["database"] = {"url": f"sqlite:///{db_file}"}
        else:
            base["database"] = {"url": pg_database}
            base["store"] = {"redis_url": REDIS_URL, "prefix": f"t:{uuid.uuid4().hex[:12]}:"}
        for section, values in sections.items():
            base.setdefault(section, {}).update(values)
        return config_module.load(None, env={}, **base)

    yield build
    if backend == "pg-redis":
        _truncate_pg(pg_database)


@pytest.fixture
def settings(make_settings) -> config_module.Settings:
    return make_settings()


@pytest.fixture
def app(settings):
    application = create_app(settings)
    application.config["TESTING"] = True
    yield application
    application.extensions["idp.db"].dispose()
    application.extensions["idp.store"].close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def app_context(app):
    with app.app_context():
        yield app
