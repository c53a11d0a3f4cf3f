"""How My account names a session's browser from its User-Agent (ua-parser's rules)."""

from __future__ import annotations

import pytest
from flask import Flask
from flask_babel import Babel

from idp.web.signin.devices import describe


@pytest.fixture(scope="module")
def page():
    app = Flask(__name__)
    Babel(app)
    with app.test_request_context():
        yield


@pytest.mark.parametrize("user_agent,named", [
    (("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
     "Safari/537.36"), "Chrome on Windows"),
    (("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
     "Safari/537.36 Edg/131.0.0.0"), "Edge on Windows"),
    (("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 "
     "Safari/605.1.15"), "Safari on macOS"),
    (("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile "
     "Safari/537.36"), "Chrome Mobile on Android"),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "Firefox on Linux"),
    ("curl/8.5.0", "curl"),
    ("", "An unknown browser"),
    (None, "An unknown browser"),
    ("\u202e<script>" * 30, "An unknown browser"),
])
def test_named(page, user_agent, named):
    assert describe(user_agent) == named
