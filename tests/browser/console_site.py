"""What the console's browser tests share: one provider served on localhost for a whole test module
(starting it for each test would cost seconds a test on CI's two cores), people
who sign in with an authenticator app (a code pyotp computes), and a page that checks itself as it
goes (WCAG 2.2 AA by axe-core, no sideways scrolling, no script or CSP errors).

Tests of a module share the provider's database, so each test makes its own centre and people."""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import pyotp
import pytest
from werkzeug.serving import make_server

from idp import config as config_module
from tests.background import Served
from tests.browser.a11y import SCREENS, assert_accessible
from tests.conftest import BACKENDS, REDIS_URL, _truncate_pg
from tests.support import PASSWORD, add_totp, make_account, make_centre

#: CI shares two cores with the rest of the suite: waits are generous, never part of an assertion
TIMEOUT_MS = 30_000


@dataclass
class Site:
    app: object
    issuer: str


@pytest.fixture(scope="module")
def site(tmp_path_factory, keys_template, sqlite_template, pg_database, test_policies_dir):
    """The provider on http://localhost:<port> for the module, on one backend: PostgreSQL + Redis
    when configured, else the embedded one (as every browser test: tests/browser/conftest.py)."""
    from idp import create_app

    backend = BACKENDS[-1]
    data_dir = tmp_path_factory.mktemp("console-site")
    keys = data_dir / "keys"
    shutil.copytree(keys_template, keys)
    server = make_server("127.0.0.1", 0, None, threaded=True)
    sections = {
        "server": {"issuer": f"http://localhost:{server.server_port}", "data_dir": str(data_dir),
                   "secret_key": "test-secret-key"},
        "keys": {"dir": str(keys)},
        "logging": {"level": "WARNING", "format": "text"},
        "policies": {"dir": str(test_policies_dir)},
    }
    if backend == "embedded":
        shutil.copy(sqlite_template, data_dir / "idp.sqlite3")
        sections["database"] = {"url": f"sqlite:///{data_dir / 'idp.sqlite3'}"}
    else:
        sections["database"] = {"url": pg_database}
        sections["store"] = {"redis_url": REDIS_URL, "prefix": f"t:{uuid.uuid4().hex[:12]}:"}
    app = create_app(config_module.load(None, env={}, **sections))
    server.app = app
    served = Served(server)
    yield Site(app, sections["server"]["issuer"])
    served.stop()
    app.extensions["idp.db"].dispose()
    app.extensions["idp.store"].close()
    if backend != "embedded":
        _truncate_pg(pg_database)


@pytest.fixture
def shots():
    """IDP_TEST_SCREENSHOTS names a folder to keep a screenshot of every page checked."""
    folder = os.environ.get("IDP_TEST_SCREENSHOTS")
    if not folder:
        return None
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return path


def new_centre(site, name: str = "Test Centre") -> str:
    """A centre of this test's own (a fresh number), for a module whose tests share a database."""
    from idp.centres.models import Centre
    from idp.extensions import db

    with site.app.app_context():
        taken = {c for (c,) in db.session.query(Centre.number)}
        number = next(f"{n:05d}" for n in range(10000, 99999) if f"{n:05d}" not in taken)
        make_centre(number, name)
    return number


def person(site, email: str, role: str, centre: str | None, **fields) -> str:
    """An active account that signs in with an authenticator app; returns its TOTP secret."""
    from idp.extensions import db

    with site.app.app_context():
        account = make_account(email, role=role, centre=centre, mfa=False, **fields)
        secret = add_totp(account)
        db.session.commit()
    return secret


class Visit:
    """One person's browser at one screen width and language; ``check`` runs the page's checks."""

    def __init__(self, browser, site, *, width: int = 1280, lang: str = "en", shots: Path | None = None,
                 name: str = "") -> None:
        self.context = browser.new_context(**SCREENS[width])
        self.context.set_default_timeout(TIMEOUT_MS)
        self.page = self.context.new_page()
        self.site, self.width, self.lang, self.shots, self.name = site, width, lang, shots, name
        self.problems: list[str] = []
        self.seen = 0
        self.page.on("console", lambda m: self.problems.append(m.text)
                     if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
        self.page.on("pageerror", lambda e: self.problems.append(str(e)))
        self.page.on("response", lambda r: self.problems.append(f"{r.status} {r.url}")
                     if r.status >= 400 and r.request.resource_type != "document" else None)

    def goto(self, path: str, check: str | None = None):
        self.page.goto(self.site.issuer + path)
        if check:
            self.check(check)
        return self.page

    def check(self, name: str) -> None:
        page = self.page
        page.wait_for_load_state()
        assert page.locator("html").get_attribute("lang") == self.lang, name
        assert "govuk-frontend-supported" in (page.locator("body").get_attribute("class") or ""), name
        assert_accessible(page, f"{name} ({self.width} px, {self.lang})")
        assert page.evaluate("document.documentElement.scrollWidth") <= self.width, \
            f"{name}: wider than the screen: {too_wide(page, self.width)}"
        if self.shots:
            page.screenshot(path=str(self.shots / f"{self.name}-{self.seen:02d}-{name}-{self.width}-{self.lang}.png"),
                            full_page=True)
        self.seen += 1

    def sign_in(self, email: str, secret: str) -> None:
        """The sign-in pages: email, password, a code from the authenticator app."""
        page = self.page
        page.goto(f"{self.site.issuer}/signin?ui_locales={self.lang}")
        page.fill("#email", email)
        page.click("main button[type=submit]")
        page.fill("#password", PASSWORD)
        page.click("main button[type=submit]")
        page.wait_for_url("**/signin/mfa")
        page.fill("#code", pyotp.TOTP(secret).now())
        page.click("main button[type=submit]")
        page.wait_for_url("**/account")

    def banner(self) -> str:
        return self.page.locator(".govuk-notification-banner").inner_text()

    def close(self) -> None:
        assert not self.problems, self.problems
        self.context.close()


def too_wide(page, width: int) -> list[str]:
    """The innermost elements that reach past the right edge of the screen (what to fix)."""
    return page.evaluate("""w => [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > w && ![...e.children].some(c => c.getBoundingClientRect().right > w))
        .slice(0, 5).map(e => e.tagName.toLowerCase() + '.' + [...e.classList].join('.') + ' ' + JSON.stringify(e.textContent.trim().slice(0, 60)))""", width)


def lock(site, email: str) -> None:
    """Lock the account as wrong passwords do (the lockout's own functions)."""
    from idp import policy
    from idp.accounts import lockout
    from idp.accounts.models import Account
    from idp.extensions import db

    with site.app.app_context():
        account = db.session.query(Account).filter_by(email_key=Account.key_for(email)).one()
        for _ in range(policy.current().sec("lockout").max_failures):
            slot = lockout.reserve_password(email)
            lockout.password_failed(email, slot, subject=account.sub, centre=account.centre_number,
                                    reason="bad_credentials")
        db.session.commit()


def invited(site, email: str, *, by: str, role: str = "user", expired: bool = False, **fields) -> str:
    """Someone invited by ``by`` (no email sent); ``expired``: their invite has run out."""
    from datetime import timedelta

    from idp.accounts.models import Account
    from idp.admin import people
    from idp.clock import utcnow
    from idp.extensions import db

    with site.app.app_context():
        inviter = db.session.query(Account).filter_by(email_key=Account.key_for(by)).one()
        account = people.invite(people.party_of(inviter), email=email, role=role, centre=inviter.centre_number,
                                fields={"given_name": "Invited", "family_name": "Person", **fields}).account
        if expired:
            account.invite_expires_at = utcnow() - timedelta(days=1)
            db.session.commit()
        return account.sub


def sub_of(site, email: str) -> str:
    from idp.accounts.models import Account
    from idp.extensions import db

    with site.app.app_context():
        return db.session.query(Account.sub).filter_by(email_key=Account.key_for(email)).scalar()
