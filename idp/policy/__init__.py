"""The domain's rules as data (docs/domain.md): the only code that reads policies/*.toml.

``Policy`` holds the loaded catalogue; named checks ("may A invite B?") live in
``idp.policy.decisions`` and answer with a ``Decision`` a person can read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flask import current_app

from .loader import (
    PolicyError,
    Profile,
    Role,
    Section,
    check_cross_references,
    load_profiles,
    load_roles,
    load_security,
)

__all__ = ["Policy", "PolicyError", "Profile", "Role", "current", "default_dir", "load"]


@dataclass(frozen=True)
class Policy:
    dir: Path
    roles: dict[str, Role]
    profiles: dict[str, Profile]
    security: dict[str, Section]

    # ---- small, named lookups used everywhere ----
    @property
    def operator_role(self) -> str:
        """The board staff account type the command line acts as."""
        return next(r.id for r in self.roles.values() if r.operator)

    @property
    def centre_head_role(self) -> str:
        """The one-per-centre account type (the Exams Officer): what `idp eo` manages."""
        return next(r.id for r in self.roles.values() if r.exact_per_centre)

    def role(self, role_id: str) -> Role:
        return self.roles[role_id]

    def sec(self, section: str) -> Section:
        return self.security[section]

    def remember_device_days(self, role_id: str) -> int:
        """For how many days a person of this account type may have a device remembered after a
        second factor (0: not offered; an account type not named is not offered it)."""
        return self.sec("remember_device").days.get(role_id, 0)

    def default_profiles(self, role_id: str) -> frozenset[str]:
        return frozenset(p.id for p in self.profiles.values() if p.availability(role_id) == "default")

    def allowed_profiles(self, role_id: str) -> frozenset[str]:
        """Every profile the role may hold (its ceiling)."""
        return frozenset(p.id for p in self.profiles.values() if p.availability(role_id) != "never")

    def with_implied(self, profile_ids) -> frozenset[str]:
        """The profiles plus everything they imply, transitively."""
        out, todo = set(), list(profile_ids)
        while todo:
            pid = todo.pop()
            if pid in out:
                continue
            out.add(pid)
            todo.extend(self.profiles[pid].implies)
        return frozenset(out)


def default_dir() -> Path:
    """policies/ beside the package (a source checkout), else the copy bundled in the wheel."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here.parent / "policies", here / "_bundled" / "policies"):
        if (candidate / "roles.toml").is_file():
            return candidate
    raise PolicyError(f"no policies folder found beside {here}")


def load(directory: str | Path | None = None) -> Policy:
    path = Path(directory) if directory else default_dir()
    roles_path = path / "roles.toml"
    roles = load_roles(roles_path)
    profiles = load_profiles(path / "profiles.toml", roles)
    check_cross_references(roles_path, roles, profiles)
    security = load_security(path / "security.toml")
    for role_id in security["remember_device"].days:
        if role_id not in roles:
            raise PolicyError(f"{path / 'security.toml'}: remember_device.days.{role_id}: unknown account type")
    return Policy(dir=path, roles=roles, profiles=profiles, security=security)


def current() -> Policy:
    """The policy of the running app."""
    return current_app.extensions["idp.policy"]


def checks():
    """The named checks over the running app's policy."""
    from .decisions import Checks

    return Checks(current())
