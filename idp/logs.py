"""Structured logs: one JSON object per line, each request tagged with a request id."""

from __future__ import annotations

import json
import logging
import os
import sys
import time

from flask import Flask

from . import metrics

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                    + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "pid": os.getpid(),
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _RESERVED and k != "message"})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: str = "INFO", fmt: str = "json") -> None:
    # The logging module's own optimisation (its docs, "Optimization"): no stack walk to find the
    # caller of every log call. (Thread and process fields stay: gunicorn's own format uses them.)
    logging._srcfile = None
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.idp_stream = True
    root = logging.getLogger()
    # replace the handler an earlier configure() added, and only it: handlers the host process added
    # (gunicorn's, a test runner's) stay
    root.handlers[:] = [handler] + [h for h in root.handlers if not getattr(h, "idp_stream", False)]
    root.setLevel(level)
    # alembic announces every plugin it loads at INFO; only its real work is worth a line
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


log = logging.getLogger("idp.request")

#: where the request id lives for the rest of the request (``extensions.request_id``)
REQUEST_ID = "idp.request_id"


class RequestLog:
    """WSGI middleware: a request id on every request and response, and one access line each.

    At the WSGI layer rather than as Flask hooks because it runs on every request (the token
    endpoint's included) and needs nothing from Flask. Every response passes through here,
    error pages too. Only the path is logged, never the query string (it may carry a code)."""

    def __init__(self, wsgi_app) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        incoming = environ.get("HTTP_X_REQUEST_ID", "")
        # accept a caller's id only if it is short and plain, so it cannot inject into logs
        request_id = incoming if 0 < len(incoming) <= 64 and incoming.replace("-", "").isalnum() \
            else os.urandom(16).hex()
        environ[REQUEST_ID] = request_id

        def start(status, headers, exc_info=None):
            headers.append(("X-Request-Id", request_id))
            seconds = time.perf_counter() - started
            metrics.observe_request(environ, int(status[:3]), seconds)
            if log.isEnabledFor(logging.INFO):
                access_line({
                    "request_id": request_id, "method": environ.get("REQUEST_METHOD"),
                    "path": environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace"),
                    "status": int(status[:3]), "ms": round(seconds * 1000, 2),
                })
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start)


def init_app(app: Flask) -> None:
    settings = app.config["IDP_SETTINGS"]
    configure(settings.logging.level, settings.logging.format)
    metrics.enable(settings)
    app.wsgi_app = RequestLog(app.wsgi_app)


def access_line(fields: dict) -> None:
    """One JSON line per request, written straight to the log stream: the same shape as other log
    lines, without a LogRecord per request (this runs on every request, the token endpoint's too)."""
    handler = next((h for h in logging.getLogger().handlers if getattr(h, "idp_stream", False)), None)
    if handler is None or not isinstance(handler.formatter, JsonFormatter):
        log.info("request", extra=fields)
        return
    now = time.time()
    entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z",
             "level": "INFO", "logger": "idp.request", "pid": os.getpid(), "message": "request", **fields}
    line = json.dumps(entry) + "\n"
    with handler.lock:
        handler.stream.write(line)
