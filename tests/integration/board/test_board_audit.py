"""The whole audit trail in the board console: search by person (email address or sub), centre,
client service, event and dates, a page at a time; the matching rows as a streamed CSV whose cells
a spreadsheet never runs as formulas; the helpdesk may read it, centre staff may not."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from idp.admin import audit as admin_audit
from idp.admin import errors as admin_errors
from idp.admin import people
from idp.audit import AuditEvent
from idp.extensions import db
from tests.integration.board.conftest import BOARD, EO, HELPDESK, USER, text_of


@pytest.fixture
def trail(app, people_here, browser_for):
    """Board staff and the helpdesk signed in (their browsers), then a known trail: 60 events about
    the user, a few about the other centre, a client's, and one whose cells start like spreadsheet
    formulas."""
    browsers = {BOARD: browser_for(BOARD), HELPDESK: browser_for(HELPDESK)}
    with app.app_context():
        db.session.query(AuditEvent).delete()
        base = datetime(2026, 3, 1, 12, tzinfo=UTC)
        for n in range(60):
            db.session.add(AuditEvent(event="account.updated", outcome="success", actor=people_here[EO],
                                      subject=people_here[USER], centre="12345", at=base + timedelta(hours=n),
                                      details={"n": n}))
        for n in range(3):
            db.session.add(AuditEvent(event="signin.password", outcome="failure", subject=people_here["eo@other.example"],
                                      centre="67890", at=base + timedelta(days=10, hours=n), details={"reason": "bad"}))
        db.session.add(AuditEvent(event="client.registered", outcome="success", actor=people_here[BOARD],
                                  subject="results-rp", at=base + timedelta(days=20), details={"client_name": "Results"}))
        db.session.add(AuditEvent(event="token.grant_revoked", outcome="success", actor="client:results-rp",
                                  subject=people_here[USER], at=base + timedelta(days=21), details={}))
        db.session.add(AuditEvent(event="account.updated", outcome="success", actor="=HYPERLINK(\"http://x\")",
                                  subject="+1+1", centre="12345", ip="-2+3", at=base + timedelta(days=22),
                                  details={"note": "@SUM(A1)"}))
        db.session.commit()
    return browsers


def _count(page: str) -> int:
    import re

    return int(re.search(r"(\d+) events?", text_of(page)).group(1))


def test_search_filters_and_pages(app, browser_for, trail, people_here):
    board = trail[BOARD]
    first = board.page("/board/audit")
    assert _count(first) == 66 and "Next" in first
    assert _count(board.page(f"/board/audit?person={USER}")) == 61  # by email: rows by or about them
    assert _count(board.page(f"/board/audit?person={people_here[USER]}")) == 61  # by sub
    assert _count(board.page(f"/board/audit?person={EO}")) == 60
    assert _count(board.page("/board/audit?person=nobody@example.com")) == 0
    assert _count(board.page("/board/audit?centre=67890")) == 3
    assert _count(board.page("/board/audit?client=results-rp")) == 2
    assert _count(board.page("/board/audit?event=signin.password")) == 3
    assert _count(board.page("/board/audit?event=client.")) == 1  # a family of events
    assert _count(board.page("/board/audit?since=2026-03-02&until=2026-03-02")) == 24  # one London day (GMT)
    assert _count(board.page("/board/audit?centre=12345&event=account.updated&since=2026-03-03")) == 25
    second = board.page("/board/audit?page=2")
    assert "Previous" in second and "2026" in text_of(second)
    assert _count(board.page("/board/audit?page=999")) == 66  # past the end: an empty page, never a 500


@pytest.mark.parametrize("query, message", [
    ("centre=1234", "5 digits"), ("centre=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95", "5 digits"),
    ("since=2026-02-31", "Enter a real date"), ("since=31/03/2026", "Enter a date, like"),
    ("since=2026-03-05&until=2026-03-01", "The start of the time range must be before its end"),
    ("person=" + "p" * 300, "254 characters or fewer"), ("client=%00", "cannot be used here"),
])
def test_bad_searches_say_what_to_fix(browser_for, trail, query, message):
    refused = trail[BOARD].get(f"/board/audit?{query}", status=400)
    assert message in text_of(refused.get_data(as_text=True)), query


def test_csv_export_is_streamed_and_never_runs_as_formulas(app, browser_for, trail, people_here, audit_rows):
    board = trail[BOARD]
    response = board.get("/board/audit.csv?centre=12345")
    assert response.is_streamed and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="audit-')
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == list(admin_audit.CSV_COLUMNS) and len(rows) == 62
    dangerous = rows[1]  # newest first
    assert dangerous[3] == "'=HYPERLINK(\"http://x\")" and dangerous[5] == "'+1+1" and dangerous[8] == "'-2+3"
    assert dangerous[10] == '{"note": "@SUM(A1)"}'  # JSON starts with {: nothing to neutralise
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    assert rows[2][4] == USER or rows[2][6] == USER  # the people's email addresses beside their subs
    assert response.get_data(as_text=True).startswith('"at","event"')  # every cell quoted
    exported, = audit_rows(event="audit.exported")
    assert exported.actor == people_here[BOARD] and exported.details["filters"] == {"centre": "12345"}


def test_csv_export_of_many_rows_in_batches(app, browser_for, trail, monkeypatch):
    monkeypatch.setattr(admin_audit, "EXPORT_BATCH", 7)
    rows = list(csv.reader(io.StringIO(trail[BOARD].get("/board/audit.csv").get_data(as_text=True))))
    ids = [(r[0], r[1], r[10]) for r in rows[1:]]
    assert len(rows) == 67 and len(set(ids)) == 66  # no row twice, none missed


def test_the_helpdesk_reads_the_trail_and_centre_staff_do_not(app, browser_for, trail, people_here):
    assert _count(trail[HELPDESK].page("/board/audit")) == 66
    assert browser_for(EO).get("/board/audit", status=403)
    assert browser_for(EO).get("/board/audit.csv", status=403)
    with app.app_context():
        with pytest.raises(admin_errors.Denied):
            admin_audit.search(people.party_of(people.account_by_email(USER)), admin_audit.Filters())
        with pytest.raises(admin_errors.Denied):
            admin_audit.export(people.party_of(people.account_by_email(EO)), admin_audit.Filters())
