"""Rate limits are counted under the app's own store prefix. idp/extensions.py says several apps can
live in one process (the tests do exactly that) and the test conftest gives each test its own Redis
prefix "so nothing leaks between tests"; the per-email sign-in limit must therefore start from zero
for a second app with another prefix."""

from __future__ import annotations

from idp import create_app

EMAIL = "someone@centre.example"


def test_a_second_app_does_not_inherit_the_first_apps_rate_limit_counts(make_settings, browser, kit):
    first = kit.build_app(make_settings())
    person = browser(first)
    answers = [person.forgot(EMAIL).status_code for _ in range(11)]  # sign_in_per_email: 10 per minute
    assert answers == [303] * 10 + [429]
    first.extensions["idp.db"].dispose()
    first.extensions["idp.store"].close()

    # a second provider, as tests/conftest.py builds one: its own store prefix
    settings = make_settings()
    second = create_app(settings)
    second.config["TESTING"] = True
    try:
        answer = browser(second).forgot(EMAIL)
        assert answer.status_code == 303, (
            f"HTTP {answer.status_code}: the second app (store prefix {settings.store.prefix!r}) is counted "
            f"against the first app's rate-limit keys")
    finally:
        second.extensions["idp.db"].dispose()
        second.extensions["idp.store"].close()
