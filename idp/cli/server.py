"""`idp setup`, `idp serve`, `idp db ...` and `idp keys ...`: running the provider and its keys."""

from __future__ import annotations

import functools
import os
import sys

import click
from sqlalchemy.exc import OperationalError

from .. import config as config_module
from .. import protocol
from ..config import ConfigError, mask_url
from .base import CONFIG_OPTION, emit, fail, load_settings, make_app, with_app

HTTP_SERVERS = ("granian", "gunicorn")


def setup(settings) -> list:
    """Migrate the schema to head and generate any missing signing keys. Idempotent."""
    from .. import migrations
    from ..extensions import make_engine
    from ..oidc.keys import KeyFolder

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    try:
        migrations.upgrade(engine)
    except OperationalError as exc:
        fail(f"cannot reach the database at {mask_url(settings.database_url)} "
             f"({str(exc.orig).strip().splitlines()[0]})", 1)
    finally:
        engine.dispose()
    return KeyFolder(settings.keys_dir, settings.keys.publish_delay).ensure()


@click.command("setup")
@CONFIG_OPTION
def setup_command(config_path):
    """Create or migrate the database and generate missing signing keys (run before gunicorn)."""
    settings = load_settings(config_path)
    make_app(settings)  # validates policies and keys before touching anything
    created = setup(settings)
    emit({"database": mask_url(settings.database_url), "keys_created": [k.kid for k in created]})


@click.command()
@CONFIG_OPTION
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Processes; more than one needs PostgreSQL and Redis.")
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64))
@click.option("--certfile", type=click.Path(exists=True, dir_okay=False), help="Serve HTTPS with this certificate.")
@click.option("--keyfile", type=click.Path(exists=True, dir_okay=False),
              help="The certificate's private key (PKCS#8 PEM for granian).")
@click.option("--http-server", type=click.Choice(HTTP_SERVERS), default="granian", show_default=True,
              help="granian (Rust HTTP server, measured faster: tests/perf/README.md) or gunicorn (gthread).")
def serve(config_path, host, port, workers, threads, certfile, keyfile, http_server):
    """Serve the provider: granian (or gunicorn), WORKERS processes of THREADS threads each."""
    settings = load_settings(config_path)
    if not settings.server.issuer:
        scheme = "https" if certfile else "http"
        shown = "localhost" if host in {"127.0.0.1", "0.0.0.0", "::", "::1", "localhost"} else host
        try:
            settings = config_module.with_issuer(settings, f"{scheme}://{shown}:{port}")
        except ConfigError as exc:
            fail(f"{exc}; set [server] issuer or IDP_ISSUER")
        config_module.remember_served_issuer(settings)
    if workers > 1 and not (settings.store.redis_url and not settings.database_url.startswith("sqlite")):
        fail("--workers > 1 needs PostgreSQL ([database] url) and Redis ([store] redis_url): "
             "lockout, codes and sessions must be shared between processes")
    make_app(settings)
    setup(settings)

    click.echo(f"Issuer:    {settings.server.issuer}")
    click.echo(f"Discovery: {settings.server.issuer}/.well-known/openid-configuration")
    click.echo(f"Database:  {mask_url(settings.database_url)}")
    click.echo(f"Keys:      {settings.keys_dir}")
    click.echo("Next, in another terminal in this folder:")
    click.echo("  idp board create --email you@board.example --given-name You --family-name Here")
    click.echo(f"    (the invite, with a temporary password, lands in {settings.mail_outbox_dir}; "
               f"sign in at {settings.server.issuer}/signin)")
    click.echo("  idp client create --name NAME --redirect-uri URI   (a relying party; point it at Discovery)")
    sys.stdout.flush()
    os.environ[config_module.SERVING_ENV] = "1"  # the workers serve, and keep house (idp.create_app)
    if http_server == "granian":
        _serve_granian(config_path, settings, host, port, workers, threads, certfile, keyfile)
    else:
        _serve_gunicorn(settings, host, port, workers, threads, certfile, keyfile)


def _serve_granian(config_path, settings, host, port, workers, threads, certfile, keyfile) -> None:
    """granian's workers are processes of their own that build the app from the environment
    (``idp:create_app()``): the settings this command resolved reach them as IDP_CONFIG and
    IDP_ISSUER, so every worker serves exactly what was printed above."""
    import os
    from pathlib import Path

    from granian import Granian
    from granian.constants import Interfaces, SSLProtocols

    from .. import metrics, serving

    if config_path:
        os.environ["IDP_CONFIG"] = str(Path(config_path).resolve())
    os.environ["IDP_ISSUER"] = settings.server.issuer
    if settings.metrics.listen:
        # as idp.serving's gunicorn hooks do: an empty folder before any worker starts (workers
        # inherit PROMETHEUS_MULTIPROC_DIR), and the exporter in this, the parent, process
        metrics.reset(metrics.prepare(settings))
        serving.start_exporter(settings)
    Granian("idp:create_app", factory=True, interface=Interfaces.WSGI, address=host, port=port,
            workers=workers, blocking_threads=threads, log_access=False,  # the app writes its own access line
            ssl_cert=Path(certfile) if certfile else None, ssl_key=Path(keyfile) if keyfile else None,
            ssl_protocol_min=SSLProtocols.tls12, respawn_failed_workers=True, workers_kill_timeout=10).serve()


def _serve_gunicorn(settings, host, port, workers, threads, certfile, keyfile) -> None:
    from gunicorn.app.base import BaseApplication

    from .. import serving

    class _Gunicorn(BaseApplication):
        def load_config(self):
            options = {"bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
                       "workers": workers, "threads": threads, "worker_class": "gthread",
                       "accesslog": None, "timeout": 30, "graceful_timeout": 10,
                       **serving.hooks(lambda: settings)}  # metrics ([metrics] listen): idp.serving
            if certfile:
                options.update(certfile=certfile, keyfile=keyfile)
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self):
            from .. import create_app

            return create_app(settings)

    _Gunicorn().run()


# ---------------------------------------------------------------- metrics
@click.group()
def metrics():
    """Prometheus metrics, for servers other than gunicorn (gunicorn: `-c python:idp.serving`)."""


@metrics.command("serve")
@CONFIG_OPTION
def metrics_serve(config_path):
    """Serve /metrics on [metrics] listen, adding up what every worker wrote to [metrics] dir."""
    import threading

    from .. import metrics as metrics_module
    from .. import serving

    settings = load_settings(config_path)
    if not settings.metrics.listen:
        fail("set [metrics] listen (IDP_METRICS_LISTEN) to the host:port to serve /metrics on")
    metrics_module.prepare(settings)
    serving.start_exporter(settings)
    click.echo(f"Serving /metrics on {settings.metrics.listen}")
    threading.Event().wait()


@metrics.command("reset")
@CONFIG_OPTION
def metrics_reset(config_path):
    """Empty [metrics] dir: run it before the server's first worker starts."""
    from .. import metrics as metrics_module

    settings = load_settings(config_path)
    path = metrics_module.folder(settings)
    metrics_module.reset(path)
    emit({"metrics_dir": str(path)})


# ---------------------------------------------------------------- database
@click.group()
def db():
    """Database schema."""


@db.command("upgrade")
@CONFIG_OPTION
@click.option("--revision", default="head", show_default=True)
def db_upgrade(config_path, revision):
    """Apply migrations."""
    from .. import migrations
    from ..extensions import make_engine

    settings = load_settings(config_path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    try:
        migrations.upgrade(engine, revision)
        emit({"database": mask_url(settings.database_url), "revision": migrations.current(engine)})
    except OperationalError as exc:
        fail(f"cannot reach the database at {mask_url(settings.database_url)} "
             f"({str(exc.orig).strip().splitlines()[0]})", 1)
    finally:
        engine.dispose()


@db.command("purge")
@with_app
def db_purge(app):
    """Delete rows nothing can use any more (expired refresh-token grants, old sessions, ...).
    Run it on a schedule, e.g. hourly; prints the rows deleted per table."""
    from ..admin import housekeeping

    emit(housekeeping.purge())


@db.command("current")
@CONFIG_OPTION
def db_current(config_path):
    """Show the schema revision and whether it is the newest."""
    from .. import migrations
    from ..extensions import make_engine

    settings = load_settings(config_path)
    engine = make_engine(settings.database_url)
    try:
        current = migrations.current(engine)
        head = migrations.head()
        emit({"database": mask_url(settings.database_url), "revision": current, "head": head,
              "up_to_date": current == head})
    except OperationalError as exc:
        fail(f"cannot reach the database at {mask_url(settings.database_url)} "
             f"({str(exc.orig).strip().splitlines()[0]})", 1)
    finally:
        engine.dispose()


# ---------------------------------------------------------------- keys
@click.group()
def keys():
    """Signing keys (RS256, ES256, EdDSA)."""


def _key_folder(settings):
    from ..oidc.keys import KeyFolder

    return KeyFolder(settings.keys_dir, settings.keys.publish_delay)


def _key_row(ring, info, settings) -> dict:
    from ..clock import from_timestamp

    def iso(t):
        return None if t is None else from_timestamp(t).isoformat()

    return {"kid": info.kid, "alg": info.alg, "state": ring.state(info, settings.max_jwt_lifetime),
            "created_at": iso(info.created_at), "signs_from": iso(info.signs_from),
            "retired_at": iso(info.retired_at)}


def _keys_command(func):
    @CONFIG_OPTION
    @functools.wraps(func)
    def wrapper(config_path, **kwargs):
        from ..oidc.keys import KeyringError

        settings = load_settings(config_path)
        try:
            return func(settings, _key_folder(settings), **kwargs)
        except KeyringError as exc:
            fail(str(exc), 1)

    return wrapper


@keys.command("list")
@_keys_command
def keys_list(settings, folder):
    """List keys with their state: published, signing, retiring, withdrawn."""
    ring = folder.load()
    emit([_key_row(ring, info, settings) for info in ring.infos])


@keys.command("generate")
@_keys_command
@click.option("--alg", type=click.Choice(protocol.SIGNING_ALGORITHMS), required=True)
@click.option("--now", "now_", is_flag=True, help="Sign with it at once, without waiting to be published.")
def keys_generate(settings, folder, alg, now_):
    """Add a key; it signs at once only if the algorithm has no key yet."""
    info = folder.generate(alg, now_=now_)
    emit(_key_row(folder.load(), info, settings))


@keys.command("rotate")
@_keys_command
@click.option("--alg", type=click.Choice(protocol.SIGNING_ALGORITHMS), required=True)
@click.option("--now", "now_", is_flag=True, help="Skip the publication delay (emergencies only).")
def keys_rotate(settings, folder, alg, now_):
    """Publish a successor; it takes over after the publication delay, and the old key
    stays in JWKS until the tokens it signed have expired."""
    info = folder.rotate(alg, now_=now_)
    emit(_key_row(folder.load(), info, settings))


@keys.command("retire")
@_keys_command
@click.argument("kid")
@click.option("--immediately", is_flag=True, help="Withdraw from JWKS now (a compromised key).")
@click.option("--force", is_flag=True, help="Allow retiring the last key of its algorithm.")
def keys_retire(settings, folder, kid, immediately, force):
    """Stop a key signing."""
    info = folder.retire(kid, immediately=immediately, force=force)
    emit(_key_row(folder.load(), info, settings))
