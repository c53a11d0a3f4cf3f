"""A running provider for relying-party tests: the app from the shared fixtures (so it runs on
every backend), served over HTTP by a thread. Kit side: examboard_rp, which never imports idp."""

from __future__ import annotations

import pytest

from idp import create_app
from tests.clients.live import ThreadedProvider
from tests.conftest import BACKENDS


@pytest.fixture
def backend() -> str:
    """The kit against a provider is about tokens, keys and HTTP, not about the provider's storage
    (the integration tests run that on both backends): one backend here, PostgreSQL + Redis when
    they are configured (as in CI and production), else the embedded one."""
    return BACKENDS[-1]


@pytest.fixture
def make_provider(make_settings, tmp_path, keys_dir):
    """make_provider(keys={"access_token_alg": "RS256"}, ...) -> a running ThreadedProvider."""
    started = []

    def start(**sections) -> ThreadedProvider:
        def build(issuer: str):
            settings = make_settings(server={"issuer": issuer}, **sections)
            app = create_app(settings)
            app.config["TESTING"] = True
            return app

        live = ThreadedProvider(build, keys_dir=keys_dir)
        started.append(live)
        return live

    yield start
    for live in started:
        live.close()


@pytest.fixture
def provider(make_provider) -> ThreadedProvider:
    return make_provider()


@pytest.fixture
def rp(provider):
    """A service registered at the provider, and an Exams Officer (eo@centre.example) to sign in."""
    provider.person("eo@centre.example")
    return provider.client()


@pytest.fixture
def rs(provider, rp):
    """The kit as that service builds it: the provider's issuer, the service's client_id as audience."""
    from examboard_rp import ResourceServer

    return ResourceServer(provider.issuer, audience=rp.client_id)


class FakeClock:
    """A monotonic clock the test moves (the kit's cache and rate-limit clock)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
