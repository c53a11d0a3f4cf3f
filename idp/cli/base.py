"""What every `idp` command shares: settings from ``--config`` (else ``IDP_CONFIG``, else the
defaults relative to the working directory), an app to act in, one JSON object printed per
success, one readable line on stderr per failure (exit 2 for bad settings, 1 for a refusal)."""

from __future__ import annotations

import functools
import json
import sys

import click
from sqlalchemy.exc import OperationalError

from .. import config as config_module
from ..config import ConfigError, mask_url
from ..policy import PolicyError
from ..store import StoreUnavailable

CONFIG_OPTION = click.option("--config", "config_path", type=click.Path(dir_okay=False),
                             default=None, help="TOML settings file (default: $IDP_CONFIG or built-in defaults).")


def fail(message: str, code: int = 2) -> None:
    click.echo(f"idp: error: {message}", err=True)
    sys.exit(code)


def load_settings(config_path, **overrides) -> config_module.Settings:
    try:
        return config_module.load(config_path, **overrides)
    except ConfigError as exc:
        fail(str(exc))


def make_app(settings):
    from .. import create_app
    from ..oidc.keys import KeyringError

    try:
        return create_app(settings)
    except (ConfigError, PolicyError, KeyringError) as exc:
        fail(str(exc))


def with_app(func):
    """Decorator: the command gets a Flask app (built from --config) with an app context pushed."""

    @CONFIG_OPTION
    @functools.wraps(func)
    def wrapper(config_path, **kwargs):
        app = make_app(load_settings(config_path))
        with app.app_context():
            try:
                return func(app, **kwargs)
            except OperationalError as exc:
                fail(f"cannot reach the database at {mask_url(app.config['IDP_SETTINGS'].database_url)} "
                     f"({exc.orig.__class__.__name__}: {str(exc.orig).strip().splitlines()[0]})", 1)
            except StoreUnavailable as exc:  # nothing was committed: a change that needs the store fails whole
                fail(f"cannot reach the store ({exc}); try again once it answers", 1)

    return wrapper


def emit(obj) -> None:
    click.echo(json.dumps(obj, indent=2, default=str))




def refusals(action):
    """Run ``action()``; an administrative refusal is one line on stderr and exit status 1."""
    from ..admin.errors import AdminError
    from ..i18n import english

    try:
        return action()
    except AdminError as exc:
        fail(english(exc.message), 1)


def operator():
    """Board staff acting through the command line (the policy's board role)."""
    from ..admin.people import operator as board_operator

    return board_operator()
