"""Accounts: the sign-in journey, passwords, lockout, sessions, my account."""

# every session's changes to people are watched from the first import (see the module)
from . import claims_copies  # noqa: F401
