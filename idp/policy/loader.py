"""Load and validate policies/*.toml into frozen objects.

Every error names the file, the key and the reason, so a bad policy stops
start-up with one line (exit 2) instead of surfacing as a wrong decision later.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..i18n import Bilingual

ACTIONS = ("invite", "resend", "edit", "delete", "replace", "grant", "change_role", "reset_mfa", "unlock",
           "disable")
#: what a role may do beyond people: run centres, client services, signing keys; read the whole audit trail
CAPABILITIES = ("manage_centres", "manage_clients", "manage_keys", "read_audit")
AVAILABILITY = ("default", "allowed", "never")

#: an access profile id (idp.centres.grants stores them, tokens carry them)
PROFILE_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


class PolicyError(Exception):
    """A policy file is missing, malformed or inconsistent."""


@dataclass(frozen=True)
class Role:
    id: str
    name: str
    name_cy: str
    centre: bool
    limit_per_centre: int
    exact_per_centre: bool
    limit_counts_invited: bool
    same_centre_only: bool
    manage_requires: str
    holds_all_profiles: bool
    may: dict[str, frozenset[str]]
    #: the role the command line acts as (board staff at the server's shell)
    operator: bool = False
    #: every action of this role is audited with a reason the person gives
    reason_required: bool = False
    can: frozenset[str] = frozenset()

    @property
    def label(self) -> Bilingual:
        """The role's name in the language a message is shown in."""
        return Bilingual(self.name, self.name_cy)


@dataclass(frozen=True)
class Profile:
    id: str
    name: str
    name_cy: str
    description: str
    description_cy: str
    implies: tuple[str, ...]
    roles: dict[str, str]  # role -> "default" | "allowed" | "never"

    def availability(self, role: str) -> str:
        return self.roles.get(role, "never")

    @property
    def label(self) -> Bilingual:
        """The profile's name in the language a message is shown in."""
        return Bilingual(self.name, self.name_cy)


@dataclass(frozen=True)
class Section:
    """A table of numbers/strings from security.toml, read as attributes."""

    values: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None


SECURITY_SCHEMA: dict[str, dict[str, type]] = {
    "password": {"min_length": int, "max_length": int, "argon2_memory_kib": int,
                 "argon2_time_cost": int, "argon2_parallelism": int},
    "lockout": {"max_failures": int, "lock_seconds": int},
    "invite": {"expires_days": int, "temporary_password_length": int,
               "temporary_password_alphabet": str},
    "reset_code": {"digits": int, "lifetime_seconds": int, "max_attempts": int, "attempt_window_seconds": int,
                   "max_emails": int, "email_window_seconds": int},
    "otp": {"digits": int, "lifetime_seconds": int, "max_attempts": int, "attempt_window_seconds": int,
            "resend_interval_seconds": int, "max_sends": int, "send_window_seconds": int},
    "mfa": {"max_failures": int, "fresh_seconds": int, "recovery_codes": int, "totp_valid_window": int},
    "session": {"idle_timeout_seconds": int, "absolute_timeout_seconds": int, "kept_after_end_days": int},
    "remember_device": {"days": dict},
    "rate_limits": {"sign_in_per_ip": str, "sign_in_per_email": str, "forgot_password_per_ip": str,
                    "mfa_per_ip": str, "mfa_per_account": str, "par_per_client": str,
                    "refused_admin_actions_per_account": str},
}

#: the longest a device may be remembered for (a second factor at least this often)
MAX_REMEMBER_DAYS = 90

ROLE_SCHEMA: dict[str, type] = {
    "name": str, "name_cy": str, "centre": bool, "limit_per_centre": int, "exact_per_centre": bool,
    "limit_counts_invited": bool, "same_centre_only": bool, "manage_requires": str,
    "holds_all_profiles": bool, "may": dict, "operator": bool, "reason_required": bool, "can": list,
}
PROFILE_SCHEMA: dict[str, type] = {
    "name": str, "name_cy": str, "description": str, "description_cy": str, "implies": list,
    "roles": dict,
}


def _read(path: Path) -> dict:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise PolicyError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{path}: not valid TOML ({exc})") from None


def _check_table(path: Path, where: str, table: Any, schema: dict[str, type]) -> dict:
    if not isinstance(table, dict):
        raise PolicyError(f"{path}: {where}: expected a table")
    for key in table:
        if key not in schema:
            raise PolicyError(f"{path}: {where}.{key}: unknown key (expected one of: {', '.join(schema)})")
    for key, tp in schema.items():
        if key not in table:
            raise PolicyError(f"{path}: {where}.{key}: missing")
        value = table[key]
        if type(value) is not tp:
            raise PolicyError(f"{path}: {where}.{key}: expected {tp.__name__}, got {value!r}")
        if tp is int and value < 0:
            raise PolicyError(f"{path}: {where}.{key}: must be 0 or more, got {value}")
    return table


def load_roles(path: Path) -> dict[str, Role]:
    raw = _read(path)
    roles_raw = raw.get("roles")
    if set(raw) != {"roles"} or not isinstance(roles_raw, dict) or not roles_raw:
        raise PolicyError(f"{path}: expected only a non-empty [roles] table")
    roles: dict[str, Role] = {}
    for role_id, body in roles_raw.items():
        body = _check_table(path, f"roles.{role_id}", body, ROLE_SCHEMA)
        may = body["may"]
        for action in may:
            if action not in ACTIONS:
                raise PolicyError(f"{path}: roles.{role_id}.may.{action}: unknown action "
                                  f"(expected one of: {', '.join(ACTIONS)})")
        for action in ACTIONS:
            targets = may.get(action, [])
            if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
                raise PolicyError(f"{path}: roles.{role_id}.may.{action}: expected a list of role ids")
        for capability in body["can"]:
            if capability not in CAPABILITIES:
                raise PolicyError(f"{path}: roles.{role_id}.can: unknown capability {capability!r} "
                                  f"(expected some of: {', '.join(CAPABILITIES)})")
        fields = {k: v for k, v in body.items() if k not in ("may", "can")}
        roles[role_id] = Role(id=role_id, may={a: frozenset(may.get(a, [])) for a in ACTIONS},
                              can=frozenset(body["can"]), **fields)
    for role in roles.values():
        for action, targets in role.may.items():
            for target in targets:
                if target not in roles:
                    raise PolicyError(f"{path}: roles.{role.id}.may.{action}: unknown role {target!r}")
        if role.exact_per_centre and role.limit_per_centre != 1:
            raise PolicyError(f"{path}: roles.{role.id}.exact_per_centre: needs limit_per_centre = 1")
    operators = [r for r in roles.values() if r.operator]
    if len(operators) != 1 or operators[0].centre:
        raise PolicyError(f"{path}: roles: exactly one role must have operator = true, and centre = false "
                          f"(the board staff the command line acts as)")
    return roles


def load_profiles(path: Path, roles: dict[str, Role]) -> dict[str, Profile]:
    raw = _read(path)
    profiles_raw = raw.get("profiles")
    if set(raw) != {"profiles"} or not isinstance(profiles_raw, dict) or not profiles_raw:
        raise PolicyError(f"{path}: expected only a non-empty [profiles] table")
    profiles: dict[str, Profile] = {}
    for pid, body in profiles_raw.items():
        if not PROFILE_ID.fullmatch(pid):
            # ids travel in tokens and are stored space-separated: lower-case letters, digits, . _ -
            raise PolicyError(f"{path}: profiles.{pid!r}: a profile id is lower-case letters, digits, '.', "
                              f"'_' and '-' (no spaces), at most 64 characters")
        body = _check_table(path, f"profiles.{pid}", body, PROFILE_SCHEMA)
        for role_id, availability in body["roles"].items():
            if role_id not in roles:
                raise PolicyError(f"{path}: profiles.{pid}.roles.{role_id}: unknown role")
            if availability not in AVAILABILITY:
                raise PolicyError(f"{path}: profiles.{pid}.roles.{role_id}: expected one of "
                                  f"{', '.join(AVAILABILITY)}, got {availability!r}")
        profiles[pid] = Profile(id=pid, name=body["name"], name_cy=body["name_cy"],
                                description=body["description"], description_cy=body["description_cy"],
                                implies=tuple(body["implies"]), roles=dict(body["roles"]))
    for profile in profiles.values():
        for implied in profile.implies:
            if implied not in profiles:
                raise PolicyError(f"{path}: profiles.{profile.id}.implies: unknown profile {implied!r}")
            for role_id in roles:
                if (profile.availability(role_id) != "never"
                        and profiles[implied].availability(role_id) == "never"):
                    raise PolicyError(f"{path}: profiles.{profile.id}.implies: {implied!r} is never "
                                      f"allowed for {role_id!r}, but {profile.id!r} is")
    return profiles


def check_cross_references(roles_path: Path, roles: dict[str, Role], profiles: dict[str, Profile]) -> None:
    for role in roles.values():
        if role.manage_requires and role.manage_requires not in profiles:
            raise PolicyError(f"{roles_path}: roles.{role.id}.manage_requires: unknown profile "
                              f"{role.manage_requires!r}")


def _is_rate_limit(value: str) -> bool:
    """A limit the rate limiter can count (its own parser): checked when the policy is loaded, not
    when the first person is refused."""
    from limits import parse_many

    try:
        return bool(parse_many(value))
    except ValueError:
        return False


def load_security(path: Path) -> dict[str, Section]:
    raw = _read(path)
    for section in raw:
        if section not in SECURITY_SCHEMA:
            raise PolicyError(f"{path}: [{section}]: unknown section "
                              f"(expected one of: {', '.join(SECURITY_SCHEMA)})")
    out = {}
    for section, schema in SECURITY_SCHEMA.items():
        if section not in raw:
            raise PolicyError(f"{path}: [{section}]: missing")
        out[section] = Section(dict(_check_table(path, section, raw[section], schema)))
    pw = out["password"]
    if pw.min_length < 8 or pw.max_length < pw.min_length:
        raise PolicyError(f"{path}: password.min_length: must be at least 8 and at most max_length")
    for section in ("lockout", "mfa"):
        if out[section].max_failures < 1:
            raise PolicyError(f"{path}: {section}.max_failures: must be at least 1")
    for role_id, days in out["remember_device"].days.items():
        if type(days) is not int or not 0 <= days <= MAX_REMEMBER_DAYS:
            raise PolicyError(f"{path}: remember_device.days.{role_id}: expected 0 to {MAX_REMEMBER_DAYS} days, "
                              f"got {days!r}")
    for name, value in out["rate_limits"].values.items():
        if not _is_rate_limit(value):
            raise PolicyError(f"{path}: rate_limits.{name}: expected a limit such as \"10 per minute\", got {value!r}")
    if len(set(out["invite"].temporary_password_alphabet)) < 32:
        raise PolicyError(f"{path}: invite.temporary_password_alphabet: needs at least 32 distinct characters")
    return out
