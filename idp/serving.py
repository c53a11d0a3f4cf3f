"""How the provider is served: gunicorn's hooks and the Prometheus exporter.

Use it as gunicorn's configuration module (``idp serve`` does the same by itself)::

    gunicorn -c python:idp.serving -w 4 -k gthread --threads 4 -b 127.0.0.1:8000 'idp:create_app()'

With ``[metrics] listen`` set, the gunicorn master empties the metrics folder before the first
worker starts, serves /metrics on ``listen`` (a thread of the master, so no worker's load delays
a scrape and the public listener never has the path), and forgets a worker's live values when it
exits. The workers count (idp.metrics) into that folder. Without the setting the hooks do nothing.

Only the names of gunicorn settings below are read by gunicorn: keep other module names private.
"""

from __future__ import annotations

import logging
import os
import time

from . import config as config_module
from . import metrics

log = logging.getLogger(__name__)

# ------------------------------------------------------------------ the exporter
class _KeyAges:
    """A collector run at each scrape: the age and state of every signing key in the key folder,
    read as ``idp keys list`` reads it (so no worker has to report it)."""

    def __init__(self, settings) -> None:
        self.settings = settings

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        from .oidc.keys import KeyFolder

        ages = GaugeMetricFamily("idp_signing_key_age_seconds", "Seconds since each signing key was made",
                                 labels=["kid", "alg", "state"])
        try:
            ring = KeyFolder(self.settings.keys_dir, self.settings.keys.publish_delay).load()
        except Exception as exc:  # noqa: BLE001 - a scrape reports what it can; the log says why
            log.warning("metrics: cannot read the key folder (%s)", exc)
            return
        now = int(time.time())
        for info in ring.infos:
            state = ring.state(info, self.settings.max_jwt_lifetime, now)
            ages.add_metric([info.kid, info.alg, state], now - info.created_at)
        yield ages


class _ThisProcess:
    def __init__(self, source) -> None:
        self.source = source

    def collect(self):
        return self.source.collect()


def registry(settings):
    """Every worker's values added up (multiprocess mode), plus the key ages."""
    import os

    from prometheus_client import REGISTRY, CollectorRegistry, multiprocess

    collected = CollectorRegistry()
    if os.environ.get(metrics.MULTIPROC_ENV):
        multiprocess.MultiProcessCollector(collected)
    else:  # one process counting in memory (a single-process server, or tests)
        collected.register(_ThisProcess(REGISTRY))
    collected.register(_KeyAges(settings))
    return collected


def start_exporter(settings):
    """Serve /metrics on ``[metrics] listen`` in a daemon thread; returns the HTTP server."""
    from prometheus_client import start_http_server

    host, port = config_module.listen_address(settings.metrics.listen)
    server, _thread = start_http_server(port, addr=host, registry=registry(settings))
    log.info("metrics: serving /metrics on %s", settings.metrics.listen)
    return server


# ------------------------------------------------------------------ gunicorn hooks
def hooks(load_settings) -> dict:
    """gunicorn's hooks for the settings ``load_settings()`` returns (in the master process)."""
    exporter = []

    def on_starting(server) -> None:
        os.environ[config_module.SERVING_ENV] = "1"  # the workers serve (idp.create_app)
        settings = load_settings()
        if settings.metrics.listen:
            metrics.reset(metrics.prepare(settings))  # before any worker writes there

    def when_ready(server) -> None:
        settings = load_settings()
        if settings.metrics.listen and not exporter:
            exporter.append(start_exporter(settings))

    def post_fork(server, worker) -> None:
        # a worker is a copy of the master: it must not keep the exporter's listening socket open
        for http_server in exporter:
            http_server.socket.close()

    def child_exit(server, worker) -> None:
        if exporter:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(worker.pid)

    return {"on_starting": on_starting, "when_ready": when_ready, "post_fork": post_fork,
            "child_exit": child_exit}


_hooks = hooks(config_module.load)
on_starting = _hooks["on_starting"]
when_ready = _hooks["when_ready"]
post_fork = _hooks["post_fork"]
child_exit = _hooks["child_exit"]
