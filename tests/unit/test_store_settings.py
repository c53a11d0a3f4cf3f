"""[store] redis_url names one server, a Sentinel set-up or a Cluster; mistakes stop start-up with
a line naming the key (docs/operations.md, "Redis beyond one node")."""

from __future__ import annotations

import pytest

from idp import config
from idp.store import RedisStore, redis_client


@pytest.mark.parametrize("url", [
    "redis://127.0.0.1:6379/0", "rediss://:pw@redis.internal:6380/1", "unix:///run/redis.sock",
    "redis+sentinel://s1:26379,s2:26379,s3:26379/idp", "redis+sentinel://:pw@s1:26379/idp?db=2",
    "redis+cluster://n1:6379,n2:6379,n3:6379",
])
def test_accepted_urls(url):
    assert config.load(env={}, store={"redis_url": url}).store.redis_url == url


@pytest.mark.parametrize("url, message", [
    ("http://redis:6379", "expected a URL starting"),
    ("redis+sentinel://s1:26379,s2:26379", "name the Sentinel service"),
    ("redis+sentinel://s1,s2:26379/idp", "expected host:port"),
    ("redis+cluster://n1:6379,n2", "expected host:port"),
])
def test_refused_urls_name_the_key(url, message):
    with pytest.raises(config.ConfigError, match=r"\[store\] redis_url.*" + message):
        config.load(env={}, store={"redis_url": url})


def test_a_password_in_a_refused_url_is_not_repeated():
    with pytest.raises(config.ConfigError) as refused:
        config.load(env={}, store={"redis_url": "http://:hunter2@redis:6379"})
    assert "hunter2" not in str(refused.value)


def test_no_braces_in_the_prefix_and_no_waiting_on_a_cluster():
    with pytest.raises(config.ConfigError, match=r"\[store\] prefix"):
        config.load(env={}, store={"redis_url": "redis://r:6379", "prefix": "{idp}:"})
    with pytest.raises(config.ConfigError, match=r"\[store\] wait_for_replicas"):
        config.load(env={}, store={"redis_url": "redis+cluster://n1:6379", "wait_for_replicas": 1})
    with pytest.raises(ValueError):
        RedisStore("redis+cluster://127.0.0.1:7999", wait_for_replicas=1)


def test_clients_are_made_without_connecting():
    """A worker starts (and answers 503) while Redis is away: nothing connects before first use."""
    sentinel = redis_client("redis+sentinel://:pw@127.0.0.1:1,127.0.0.1:2/idp?db=3")
    assert sentinel.connection_pool.service_name == "idp"
    assert sentinel.connection_pool.connection_kwargs["db"] == 3
    cluster = RedisStore("redis+cluster://127.0.0.1:1,127.0.0.1:2")
    from idp.store import StoreUnavailable

    with pytest.raises(StoreUnavailable):
        cluster.get("anything")


def test_watching_a_cluster_that_is_away_starts_the_watch_and_raises_nothing():
    """The change notices' watch is started by a request (the client cache's first lookup): with
    the Cluster away it must not raise there (a 500); its thread retries until the Cluster is back."""
    cluster = RedisStore("redis+cluster://127.0.0.1:1,127.0.0.1:2")
    watch = cluster.watch("changes", lambda _message: None, lambda: None)
    try:
        assert not getattr(watch, "live", False)
    finally:
        cluster.close()
