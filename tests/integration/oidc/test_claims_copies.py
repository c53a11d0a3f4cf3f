"""UserInfo answers from the store's copy of the person while it is current, and every change to
what the claims are made of is seen by the very next call, in every process: a name, a role, the
profiles, an email, an account disabled, unlocked or deleted, a centre suspended; a reader that
raced a change cannot bring the old values back; a change whose version cannot be written is not
committed; a copy of another layout, or garbled, is read afresh."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text, update

from idp import create_app
from idp.accounts import claims_copies
from idp.accounts.models import Account
from idp.admin import centres as centre_admin
from idp.admin import people
from idp.centres.models import AccessGrant, Centre
from idp.extensions import db, store
from idp.oidc import tokens
from idp.store import StoreUnavailable
from tests.integration.oidc.test_client_cache import statements
from tests.support import code_flow, make_account, make_client

#: copies are kept only in a store every process shares (with the embedded in-process store, every
#: call reads: test_token_path_reads.py)
pytestmark = pytest.mark.shared_store

SCOPE = "openid profile email phone access"


@pytest.fixture
def signed_in(app, client):
    with app.app_context():
        account = make_account("teacher@centre.example", role="user", profiles=["resources", "results.view"])
        rp = make_client(grant_types=["authorization_code"], scope=SCOPE)
    issued = code_flow(client, rp, scope=SCOPE, email="teacher@centre.example")
    return account.sub, {"Authorization": f"Bearer {issued['access_token']}"}


def _userinfo(client, bearer):
    return client.get("/userinfo", headers=bearer)


def _reads(app, client, bearer) -> tuple[int, dict | None]:
    """How many SQL statements one UserInfo call made, and what it answered (None: refused)."""
    with statements(app) as seen:
        answer = _userinfo(client, bearer)
    return len(seen), answer.get_json() if answer.status_code == 200 else None


def test_the_second_call_reads_nothing_and_says_the_same(app, client, signed_in):
    _sub, bearer = signed_in
    first = _reads(app, client, bearer)
    second = _reads(app, client, bearer)
    assert first[0] == 1 and second[0] == 0
    assert second[1] == first[1] and first[1]["profiles"] == ["resources", "results.view"]
    assert first[1]["name"] == "Ada Lovelace" and isinstance(first[1]["updated_at"], int)


def _exams_officer():
    """The centre's Exams Officer: the one who may change a User's type and access."""
    return people.party_of(make_account("eo@centre.example", mfa=False))


def _held(sub: str) -> Account:
    return db.session.scalar(select(Account).where(Account.sub == sub))


def _drop_grant_of_someone_not_loaded(sub: str) -> None:
    """A grant deleted with its holder not in the session (nothing says whose it is at flush)."""
    account_id = db.session.scalar(select(Account.id).where(Account.sub == sub))
    db.session.expunge_all()
    db.session.delete(db.session.get(AccessGrant, (account_id, "results.view")))
    db.session.commit()


def _set(sub: str, **values) -> None:
    account = _held(sub)
    for name, value in values.items():
        setattr(account, name, value)
    db.session.commit()


def _suspend_centre(_sub: str) -> None:
    db.session.scalar(select(Centre).where(Centre.number == "12345")).suspended = True
    db.session.commit()


#: through the administration services (which may also end the person's tokens), and straight
#: through the ORM (nothing but the copy's versions can tell UserInfo then)
CHANGES = {
    "name": (lambda sub: people.update_fields(people.operator(), sub, {"given_name": "Grace"}),
             lambda said: said["given_name"] == "Grace" and said["name"] == "Grace Lovelace"),
    "profiles": (lambda sub: people.set_profiles(_exams_officer(), sub, ["resources"]),
                 lambda said: said["profiles"] == ["resources"]),
    "role": (lambda sub: people.change_role(_exams_officer(), sub, "admin"),
             lambda said: said["role"] == "admin"),
    "email": (lambda sub: people.change_email(people.operator(), sub, "new@centre.example", reason="test"),
              lambda said: said is None or said["email"] == "new@centre.example"),
    "disabled": (lambda sub: people.disable(people.operator(), sub, reason="left the centre"),
                 lambda said: said is None),
    "deleted": (lambda sub: people.delete(people.operator(), sub), lambda said: said is None),
    "centre suspended": (lambda sub: centre_admin.set_centre_suspended(people.operator(), "12345", True),
                         lambda said: said is None),
    "orm: phone": (lambda sub: _set(sub, phone="+447700900123"), lambda said: said["phone_number"] == "+447700900123"),
    "orm: language": (lambda sub: _set(sub, language="cy"), lambda said: said["locale"] == "cy"),
    "orm: disabled": (lambda sub: _set(sub, status="disabled"), lambda said: said is None),
    "orm: grant added": (lambda sub: (db.session.add(AccessGrant(account_id=_held(sub).id, profile="scripts.view",
                                                                 granted_by="test")), db.session.commit()),
                         lambda said: said["profiles"] == ["resources", "results.view", "scripts.view"]),
    "orm: grant of someone not loaded dropped": (_drop_grant_of_someone_not_loaded,
                                                 lambda said: said["profiles"] == ["resources"]),
    "orm: centre suspended": (_suspend_centre, lambda said: said is None),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_every_change_is_seen_by_the_next_call(app, client, signed_in, change):
    sub, bearer = signed_in
    assert _reads(app, client, bearer)[0] == 1
    assert _reads(app, client, bearer)[0] == 0  # answered from the copy
    make, seen_in = CHANGES[change]
    with app.app_context():
        make(sub)
    _count, said = _reads(app, client, bearer)
    assert seen_in(said), said


def _signed_in_again(sub: str) -> None:
    """What a sign-in, a new password and a version claimed for a change write to the account."""
    from idp.accounts import passwords
    from idp.clock import utcnow

    account = _held(sub)
    account.last_sign_in_at = utcnow()
    account.given_name = account.given_name  # set to what it was: no change
    passwords.set_password(account, "a completely new passphrase 42")
    db.session.commit()


def test_what_says_nothing_new_about_the_person_leaves_the_copy_and_updated_at(app, client, signed_in):
    """A sign-in, a new password: UserInfo keeps answering from the copy, and ``updated_at`` (the
    claim that tells relying parties the person's details changed) stays; a new name moves both."""
    sub, bearer = signed_in
    _reads(app, client, bearer)
    count, before = _reads(app, client, bearer)
    assert count == 0
    with app.app_context():
        _signed_in_again(sub)
    count, after = _reads(app, client, bearer)
    assert count == 0 and after == before
    with app.app_context():
        assert claims_copies.COPIES.get(sub) is not None
        _set(sub, updated_at=datetime(1990, 1, 1, tzinfo=UTC))  # so that its move is seen within a second
    assert _reads(app, client, bearer)[1]["updated_at"] == 631152000
    with app.app_context():
        _set(sub, family_name="Byron")
    count, renamed = _reads(app, client, bearer)
    assert count == 1 and renamed["family_name"] == "Byron" and renamed["updated_at"] > 631152000
    with app.app_context():  # the profiles they hold are claims too
        _set(sub, updated_at=datetime(1990, 1, 1, tzinfo=UTC))
        people.set_profiles(_exams_officer(), sub, ["resources"])
    said = _reads(app, client, bearer)[1]
    assert said["profiles"] == ["resources"] and said["updated_at"] > 631152000


def test_a_deleted_persons_details_leave_the_store_with_the_commit(app, client, signed_in):
    sub, bearer = signed_in
    _userinfo(client, bearer)
    with app.app_context():
        assert claims_copies.COPIES.get(sub) is not None
        people.delete(people.operator(), sub)
        assert claims_copies.COPIES.get(sub) is None


def test_a_change_made_in_another_process_is_seen(app, client, signed_in, make_settings):
    """Two apps on the same database and store, as two workers: the copy is the store's, and so is
    the version that ends it."""
    sub, bearer = signed_in
    assert _userinfo(client, bearer).get_json()["given_name"] == "Ada"
    other = create_app(make_settings(store={"prefix": app.config["IDP_SETTINGS"].store.prefix}))
    try:
        with other.app_context():
            people.update_fields(people.operator(), sub, {"family_name": "Hopper"})
    finally:
        other.extensions["idp.db"].dispose()
        other.extensions["idp.store"].close()
    assert _userinfo(client, bearer).get_json()["family_name"] == "Hopper"


def test_a_reader_that_raced_a_change_cannot_bring_back_the_old_values(app, client, signed_in):
    """A reader fetched the versions and read the person, then a change committed, then the reader
    stored its copy: the copy is under a version no longer current, and is not used."""
    sub, bearer = signed_in
    with app.app_context():
        before = store.get_many(*claims_copies.keys(sub))
        stale = db.autocommit().execute(tokens._SUBJECT_QUERY, {"sub": sub}).first()
        people.update_fields(people.operator(), sub, {"given_name": "Grace"})
        subject = tokens.ClaimsSubject(*stale[:-1])
        claims_copies.keep_copy(sub, before, tokens._copy_of_subject(subject, frozenset(stale[-1].split())))
    assert _userinfo(client, bearer).get_json()["given_name"] == "Grace"


def test_a_reader_between_the_flush_and_the_commit_keeps_no_copy(app, client, signed_in):
    """A reader that fetched the versions after the change's flush and read the database before its
    commit (the old values, on PostgreSQL) finds the change in progress, and keeps nothing."""
    sub, bearer = signed_in
    with app.app_context():
        _held(sub).given_name = "Grace"
        db.session.flush()
        between = store.get_many(*claims_copies.keys(sub))
        stale = db.autocommit().execute(tokens._SUBJECT_QUERY, {"sub": sub}).first()
        assert stale.given_name == "Ada"
        db.session.commit()
        claims_copies.keep_copy(sub, between, tokens._copy_of_subject(tokens.ClaimsSubject(*stale[:-1]),
                                                                     frozenset(stale[-1].split())))
        assert claims_copies.COPIES.get(sub) is None
    assert _userinfo(client, bearer).get_json()["given_name"] == "Grace"


def test_a_change_whose_end_is_not_recorded_makes_userinfo_read(app, client, signed_in, monkeypatch):
    """The store fails after the commit, before the change's end is recorded: its count stays up,
    and UserInfo reads the database, keeping no copy, until the count expires."""
    sub, bearer = signed_in
    assert _reads(app, client, bearer)[0] == 1
    assert _reads(app, client, bearer)[0] == 0

    def unreachable(*_args, **_kwargs):
        raise StoreUnavailable("Redis: ConnectionError")

    monkeypatch.setattr(claims_copies.VERSIONS, "put", unreachable)
    with app.app_context():
        people.update_fields(people.operator(), sub, {"given_name": "Grace"})
    monkeypatch.undo()
    for _ in range(3):
        count, said = _reads(app, client, bearer)
        assert count == 1 and said["given_name"] == "Grace"


def test_two_changes_at_once_keep_copies_away_until_both_have_ended(app, client, signed_in):
    """The first change ends while the second is still in progress: readers read, and keep
    nothing, until the second has ended too; then the second's values are what is said."""
    from sqlalchemy.orm import Session

    sub, bearer = signed_in
    with app.app_context():
        second = Session(db.engine)
    try:
        with app.app_context():
            _held(sub).given_name = "Grace"
            db.session.flush()
            # the second adds a grant (the first holds the account row, not its key)
            holder_id = db.session.scalar(select(Account.id).where(Account.sub == sub))
            holder = second.get(Account, holder_id)  # at hand: the grant counts for this person, not everyone
            second.add(AccessGrant(account_id=holder_id, profile="scripts.view", granted_by="test"))
            second.flush()
            db.session.commit()  # the first ends, the second has not
            assert claims_copies.IN_PROGRESS.get(sub) == "1" and holder.sub == sub
        for _ in range(2):
            count, said = _reads(app, client, bearer)
            assert count == 1 and said["given_name"] == "Grace" and "scripts.view" not in said["profiles"]
        with app.app_context():
            assert claims_copies.COPIES.get(sub) is None
            second.commit()
            assert claims_copies.IN_PROGRESS.get(sub) == "0"
    finally:
        with app.app_context():
            second.close()  # (a failed assertion must not leave its locks to the teardown)
    assert _reads(app, client, bearer)[1]["profiles"] == ["resources", "results.view", "scripts.view"]
    assert _reads(app, client, bearer)[0] == 0


def test_a_change_rolled_back_settles_the_versions_too(app, client, signed_in):
    sub, bearer = signed_in
    with app.app_context():
        _held(sub).given_name = "Grace"
        db.session.flush()
        db.session.rollback()
    assert _reads(app, client, bearer)[0] == 1  # (the rolled-back change gave a new version)
    count, said = _reads(app, client, bearer)
    assert count == 0 and said["given_name"] == "Ada"


def test_a_savepoint_rolled_back_leaves_the_outer_change_changing(app, client, signed_in):
    """A savepoint ends inside the change's transaction: the change stays in progress until the
    outer transaction ends, so no copy is kept from a read in between."""
    sub, bearer = signed_in
    with app.app_context():
        _held(sub).given_name = "Grace"
        db.session.flush()
        with db.session.begin_nested() as savepoint:
            _held(sub).family_name = "Hopper"
            db.session.flush()
            savepoint.rollback()
        assert claims_copies.IN_PROGRESS.get(sub) == "1"
        db.session.commit()
        assert claims_copies.IN_PROGRESS.get(sub) == "0"
    assert _userinfo(client, bearer).get_json()["given_name"] == "Grace"


def test_a_change_whose_version_cannot_be_written_is_not_committed(app, client, signed_in, monkeypatch):
    sub, bearer = signed_in
    assert _userinfo(client, bearer).get_json()["given_name"] == "Ada"

    def unreachable(*_args, **_kwargs):
        raise StoreUnavailable("Redis: ConnectionError")

    with app.app_context():
        monkeypatch.setattr(claims_copies.IN_PROGRESS, "add_to", unreachable)
        with pytest.raises(StoreUnavailable):
            people.update_fields(people.operator(), sub, {"given_name": "Grace"})
        db.session.rollback()
        monkeypatch.undo()
        assert db.session.query(Account.given_name).filter_by(sub=sub).scalar() == "Ada"
    assert _userinfo(client, bearer).get_json()["given_name"] == "Ada"


def test_a_bulk_statement_that_names_no_one_ends_every_copy(app, client, signed_in):
    sub, bearer = signed_in
    _userinfo(client, bearer)
    with app.app_context():
        db.session.execute(update(Account).where(Account.sub == sub).values(job_role="Exams Officer")
                           .execution_options(synchronize_session=False))
        db.session.commit()
    assert _reads(app, client, bearer)[0] == 1


def test_sql_text_that_writes_ends_every_copy(app, client, signed_in):
    sub, bearer = signed_in
    _userinfo(client, bearer)
    with app.app_context():
        db.session.execute(text("UPDATE accounts SET given_name = 'Grace' WHERE sub = :sub"), {"sub": sub})
        db.session.commit()
    count, said = _reads(app, client, bearer)
    assert count == 1 and said["given_name"] == "Grace"


def test_a_centre_renamed_leaves_the_copies_alone(app, client, signed_in):
    """A centre's name is in no claim: renaming it is no reason to read everyone again."""
    _sub, bearer = signed_in
    _userinfo(client, bearer)
    with app.app_context():
        centre_admin.rename_centre(people.operator(), "12345", "Renamed Academy")
    assert _reads(app, client, bearer)[0] == 0


def test_a_bulk_statement_that_names_its_people_ends_only_theirs(app, client, signed_in):
    sub, bearer = signed_in
    with app.app_context():
        other = make_account("other@centre.example").sub
    _userinfo(client, bearer)
    with app.app_context():
        db.session.execute(update(Account).where(Account.sub == other).values(job_role="Teacher")
                           .execution_options(synchronize_session=False, claims_of=[other]))
        db.session.commit()
    assert _reads(app, client, bearer)[0] == 0


@pytest.mark.parametrize("garbage", ["", "not json", "[1, 2]", '{"a": 1}', '["subject-0", [], []]',
                                     '["subject-1", [null, null, null, null, null, 1e300, null, null, null, null], []]',
                                     '["subject-1", [null, null, null, null, null, "x", null, null, null, null], []]',
                                     '["subject-1", [1, 2], []]', '["subject-1", null, null]'])
def test_a_copy_of_another_layout_is_read_afresh(app, client, signed_in, garbage):
    sub, bearer = signed_in
    expected = _userinfo(client, bearer).get_json()
    with app.app_context():
        values = store.get_many(*claims_copies.keys(sub))
        claims_copies.keep_copy(sub, values, garbage)
    count, said = _reads(app, client, bearer)
    assert count == 1 and said == expected


def test_calls_at_once_agree_with_a_change_made_meanwhile(app, client, signed_in):
    """Ten calls in parallel while the name changes: each says the old name or the new, and every
    call after the change has committed says the new one."""
    sub, bearer = signed_in
    answers: list[str] = []

    def call():
        answers.append(app.test_client().get("/userinfo", headers=bearer).get_json()["given_name"])

    threads = [threading.Thread(target=call) for _ in range(10)]
    for thread in threads:
        thread.start()
    with app.app_context():
        people.update_fields(people.operator(), sub, {"given_name": "Grace"})
    for thread in threads:
        thread.join()
    assert set(answers) <= {"Ada", "Grace"}
    after = [app.test_client().get("/userinfo", headers=bearer).get_json()["given_name"] for _ in range(5)]
    assert after == ["Grace"] * 5
