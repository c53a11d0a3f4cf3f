"""What the provider is given before it is measured (used by compare.py; not a test): the shipped
policies with the sign-in rate limits out of the way, people with an authenticator app, and refresh
tokens minted as the token endpoint would."""

from __future__ import annotations

import re
import shutil
from pathlib import Path


def benchmark_policies(folder: Path) -> Path:
    """The shipped policies with the per-IP and per-address sign-in limits out of the way (one IP
    signs everyone in); the per-account second-factor limit stays (each person answers a few codes)."""
    from idp import policy

    folder.mkdir(parents=True, exist_ok=True)
    for item in policy.default_dir().glob("*.toml"):
        shutil.copy(item, folder / item.name)
    security = (folder / "security.toml").read_text()
    raised, count = re.subn(r'^(sign_in_per_(?:ip|email)|mfa_per_ip) = ".*"$', r'\1 = "1000000 per minute"',
                            security, flags=re.MULTILINE)
    if count != 3:
        raise RuntimeError("policies/security.toml no longer has sign_in_per_ip, sign_in_per_email and mfa_per_ip")
    (folder / "security.toml").write_text(raised)
    return folder


def make_people(provider, count: int) -> list[dict]:
    """People of one centre, each with a password (hashed once at the shipped argon2id parameters:
    every verification costs the same) and an authenticator app as their second factor."""
    from unittest import mock

    from idp.accounts import passwords
    from tests.support import PASSWORD

    with provider.app().app_context():
        shared_hash = passwords.hash_password(PASSWORD)
    people = []
    with mock.patch.object(passwords, "hash_password", lambda _password: shared_hash):
        for i in range(count):
            email = f"eo{i}.bench@centre.example"
            person = provider.make_account(email=email, password=PASSWORD, role="eo", centre="12345", mfa=False)
            people.append({**person, "password": PASSWORD, "totp_secret": provider.add_totp(email)})
    return people
