"""A session's browser as My account names it ("Chrome on Windows"), read from the User-Agent
header it signed in with by ua-parser's maintained rules."""

from __future__ import annotations

import functools

from flask_babel import gettext as _
from ua_parser import Parser, basic, caching, load_builtins

#: ua-parser's names that have a newer one people know
_SYSTEM_NAMES = {"Mac OS X": "macOS"}


@functools.cache
def _parser() -> Parser:
    # The pure-Python matcher (about 9 MB once loaded, against 34 MB for ua-parser's native one,
    # for the few lines of one page), built the first time a page needs it, remembering the
    # browsers seen lately.
    return Parser(caching.CachingResolver(basic.Resolver(load_builtins()), caching.Lru(256)))


def _known(found) -> str | None:
    family = getattr(found, "family", None)
    return None if not family or family == "Other" else family


def describe(user_agent: str | None) -> str:
    """"Chrome on Windows", "Firefox", "A browser on Android", or "An unknown browser"."""
    if not user_agent:
        return _("An unknown browser")
    parser = _parser()
    browser = _known(parser.parse_user_agent(user_agent))
    system = _known(parser.parse_os(user_agent))
    system = _SYSTEM_NAMES.get(system, system)
    if browser and system:
        return _("%(browser)s on %(system)s", browser=browser, system=system)
    if browser:
        return browser
    if system:
        return _("A browser on %(system)s", system=system)
    return _("An unknown browser")
