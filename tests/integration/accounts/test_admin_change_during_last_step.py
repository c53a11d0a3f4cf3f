"""An admin's change arriving while the sign-in's last step holds the account's row
(journey.complete): it waits, nothing deadlocks, nothing 500s, and it ends the new session."""

from __future__ import annotations

import threading

import pytest

from idp import journey
from idp.extensions import db
from tests.support import PASSWORD, make_account

VICTIM = "victim@centre.example"


@pytest.mark.shared_store
@pytest.mark.parametrize("change", ["disable", "reset_mfa"])
def test_an_admin_change_waiting_on_the_last_step(mail_app, browser, kit, monkeypatch, change):
    from idp.admin import people

    app = mail_app
    with app.app_context():
        sub = make_account(VICTIM, role="user").sub
    start = journey.sessions.start
    done = {}

    def change_meanwhile():
        with app.app_context():
            try:
                if change == "disable":
                    people.disable(people.operator(), sub, reason="misuse")
                elif change == "reset_mfa":
                    people.reset_mfa(people.operator(), sub, reason="misuse")
                else:
                    people.change_role(people.operator(), sub, "admin")
                done["ok"] = True
            except Exception as exc:  # noqa: BLE001
                done["error"] = repr(exc)
            finally:
                db.session.remove()

    def start_while_changing(*args, **kwargs):
        monkeypatch.setattr(journey.sessions, "start", start)
        other = threading.Thread(target=change_meanwhile)
        other.start()
        other.join(timeout=1.5)
        done["thread"] = other
        return start(*args, **kwargs)

    monkeypatch.setattr(journey.sessions, "start", start_while_changing)
    last = browser(app).sign_in_fully(VICTIM, PASSWORD)
    done["thread"].join(timeout=30)
    assert last.status_code == 303, last.status_code
    assert done.get("ok"), done.get("error")
    if change != "change_role":
        assert kit.live_sessions(app, VICTIM) == []
