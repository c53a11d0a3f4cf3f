"""gunicorn uses its C HTTP parser (gunicorn_h1c, a dependency) when it can: part of every request's
cost. If an upgrade made gunicorn refuse the installed parser, it would fall back silently."""

from gunicorn.config import Config
from gunicorn.http import message


def test_gunicorn_picks_the_c_parser_with_default_settings():
    assert message._check_fast_parser(Config()) is True
