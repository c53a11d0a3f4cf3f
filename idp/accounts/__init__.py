"""Accounts: the sign-in journey, passwords, lockout, sessions, my account."""
