"""The account columns UserInfo reads are the ones whose changes it is told of: a column added to
the claims' read but not to ``CLAIM_COLUMNS`` would leave a copy saying what the row no longer does
(and ``updated_at`` not moving with it)."""

from __future__ import annotations

from sqlalchemy import Column
from sqlalchemy.sql.visitors import iterate

from idp.accounts import claims_copies
from idp.accounts.models import CLAIM_COLUMNS, STANDING_COLUMNS, Account
from idp.oidc import tokens

#: read, never changed: the row's key
UNCHANGING = {"id"}


def _account_columns_read() -> set[str]:
    return {element.name for element in iterate(tokens._SUBJECT_QUERY)
            if isinstance(element, Column) and element.table is Account.__table__}


def test_every_account_column_userinfo_reads_is_watched():
    read = _account_columns_read()
    assert {"sub", "given_name", "email", "status", "centre_id", "updated_at"} <= read  # the walk sees them
    assert read - UNCHANGING <= set(claims_copies._ACCOUNT_CLAIMS)


def test_the_claim_columns_are_the_accounts_and_not_what_a_sign_in_writes():
    columns = set(Account.__table__.c.keys())
    assert set(CLAIM_COLUMNS) | set(STANDING_COLUMNS) <= columns
    assert not {"last_sign_in_at", "password_hash", "password_changed_at", "version"} & set(claims_copies._ACCOUNT_CLAIMS)
