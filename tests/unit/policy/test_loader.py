"""idp/policy: the shipped policies match DESIGN.md §1, and a broken policy folder stops start-up
with a PolicyError naming the file and the key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from idp import policy
from idp.policy import PolicyError

SHIPPED = Path(__file__).resolve().parents[3] / "policies"

ALL_PROFILES = {
    "resources", "a2c_keys", "iamis", "access_arrangements", "entries.make", "entries.view",
    "results.embargoed", "results.view", "scripts.view", "training.book", "users.manage",
}
USER_ON_REQUEST = {"iamis", "access_arrangements", "entries.view", "results.view", "scripts.view",
                   "training.book"}
USER_NEVER = {"a2c_keys", "entries.make", "results.embargoed", "users.manage"}


@pytest.fixture(scope="module")
def shipped() -> policy.Policy:
    return policy.load(SHIPPED)


# ----------------------------------------------------------------- the shipped catalogue
def test_default_dir_is_the_shipped_folder():
    assert policy.default_dir() == SHIPPED
    loaded = policy.load()
    assert loaded.dir == SHIPPED
    assert set(loaded.profiles) == ALL_PROFILES


def test_roles(shipped):
    assert set(shipped.roles) == {"board", "helpdesk", "eo", "admin", "user"}
    assert shipped.role("board").centre is False and shipped.role("helpdesk").centre is False
    assert shipped.operator_role == "board"
    assert shipped.role("board").can == {"manage_centres", "manage_clients", "manage_keys", "read_audit"}
    assert shipped.role("helpdesk").can == {"read_audit"}
    assert shipped.role("board").reason_required and shipped.role("helpdesk").reason_required
    assert not any(shipped.role(r).reason_required for r in ("eo", "admin", "user"))
    assert all(shipped.role(r).centre for r in ("eo", "admin", "user"))
    eo, admin = shipped.role("eo"), shipped.role("admin")
    assert (eo.limit_per_centre, eo.exact_per_centre) == (1, True)
    assert (admin.limit_per_centre, admin.limit_counts_invited) == (3, True)
    assert eo.holds_all_profiles and not admin.holds_all_profiles


def test_who_may_do_what(shipped):
    board, eo, admin, user = (shipped.role(r) for r in ("board", "eo", "admin", "user"))
    assert board.may["invite"] == {"board", "helpdesk", "eo"}  # DESIGN: board accounts are created by board staff
    helpdesk = shipped.role("helpdesk")
    assert helpdesk.may["unlock"] == helpdesk.may["resend"] == {"eo", "admin", "user"}
    assert not any(helpdesk.may[a] for a in ("invite", "edit", "delete", "replace", "grant", "change_role",
                                            "reset_mfa"))
    assert board.may["replace"] == {"eo"}
    assert eo.may["invite"] == admin.may["invite"] == {"admin", "user"}
    assert eo.may["grant"] == admin.may["grant"] == {"admin", "user"}
    assert "eo" not in admin.may["edit"] and "eo" not in admin.may["delete"]
    assert all(targets == frozenset() for targets in user.may.values())
    assert set(user.may) == {"invite", "resend", "edit", "delete", "replace", "grant", "change_role",
                             "reset_mfa", "unlock", "disable"}
    assert eo.may["disable"] == admin.may["disable"] == {"admin", "user"}  # the EO is the board's to stop
    assert helpdesk.may["disable"] == frozenset()


def test_catalogue_is_bilingual(shipped):
    assert set(shipped.profiles) == ALL_PROFILES
    for profile in shipped.profiles.values():
        assert profile.name and profile.name_cy and profile.name != profile.name_cy, profile.id
        assert profile.description and profile.description_cy, profile.id
    for role in shipped.roles.values():
        assert role.name and role.name_cy


@pytest.mark.parametrize("role", ["eo", "admin"])
def test_eo_and_admin_default_to_every_profile(shipped, role):
    assert shipped.default_profiles(role) == ALL_PROFILES
    assert shipped.allowed_profiles(role) == ALL_PROFILES


def test_user_profiles(shipped):
    assert shipped.default_profiles("user") == {"resources"}
    assert shipped.allowed_profiles("user") == {"resources"} | USER_ON_REQUEST
    for pid in USER_NEVER:
        assert shipped.profiles[pid].availability("user") == "never", pid
        assert pid not in shipped.allowed_profiles("user")
    for pid in USER_ON_REQUEST:
        assert shipped.profiles[pid].availability("user") == "allowed", pid


def test_board_holds_no_centre_profiles(shipped):
    assert shipped.default_profiles("board") == frozenset()
    assert shipped.allowed_profiles("board") == frozenset()
    assert shipped.profiles["resources"].availability("nobody") == "never"


def test_with_implied(shipped):
    assert shipped.with_implied([]) == frozenset()
    assert shipped.with_implied(["entries.make"]) == {"entries.make", "entries.view"}
    assert shipped.with_implied(["results.embargoed"]) == {"results.embargoed", "results.view"}
    assert shipped.with_implied({"resources", "entries.view"}) == {"resources", "entries.view"}
    assert shipped.with_implied(ALL_PROFILES) == ALL_PROFILES
    assert isinstance(shipped.with_implied(["resources"]), frozenset)


def test_implied_profiles_stay_within_each_role(shipped):
    for role in shipped.roles:
        allowed = shipped.allowed_profiles(role)
        assert shipped.with_implied(allowed) == allowed, role
        defaults = shipped.default_profiles(role)
        assert shipped.with_implied(defaults) <= allowed, role


def test_security_numbers(shipped):
    assert shipped.sec("password").min_length == 10
    assert shipped.sec("lockout").max_failures == 3
    assert shipped.sec("lockout").lock_seconds == 3600
    assert shipped.sec("invite").expires_days == 60
    assert shipped.sec("reset_code").lifetime_seconds == 600
    assert shipped.sec("reset_code").max_attempts == 5
    assert shipped.sec("reset_code").attempt_window_seconds == 3600
    assert shipped.sec("mfa").max_failures == 5
    alphabet = shipped.sec("invite").temporary_password_alphabet
    assert not set(alphabet) & set("0O1lI")
    with pytest.raises(AttributeError):
        shipped.sec("password").no_such_number  # noqa: B018


# ----------------------------------------------------------------- a broken copy
@pytest.fixture
def folder(tmp_path) -> Path:
    path = tmp_path / "policies"
    shutil.copytree(SHIPPED, path)
    return path


def edit(path: Path, old: str, new: str, after: str | None = None) -> None:
    """Replace ``old`` (which must be unique, or unique after the line ``after``) with ``new``."""
    text = path.read_text()
    start = 0
    if after is not None:
        assert text.count(after) == 1, after
        start = text.index(after) + len(after)
    else:
        assert text.count(old) == 1, old
    index = text.index(old, start)
    path.write_text(text[:index] + new + text[index + len(old):])


def assert_policy_error(folder: Path, filename: str, *fragments: str) -> str:
    with pytest.raises(PolicyError) as info:
        policy.load(folder)
    message = str(info.value)
    assert str(folder / filename) in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert "\n" not in message
    return message


def test_unchanged_copy_loads(folder):
    copy = policy.load(folder)
    assert copy.dir == folder
    assert set(copy.profiles) == ALL_PROFILES


# roles.toml
def test_role_unknown_key(folder):
    edit(folder / "roles.toml", "[roles.admin]\n", '[roles.admin]\ncolour = "red"\n')
    assert_policy_error(folder, "roles.toml", "roles.admin.colour", "unknown key")


def test_role_missing_key(folder):
    edit(folder / "roles.toml", "holds_all_profiles = true\n", "")
    assert_policy_error(folder, "roles.toml", "roles.eo.holds_all_profiles", "missing")


def test_role_wrong_type(folder):
    edit(folder / "roles.toml", "limit_per_centre = 3", 'limit_per_centre = "3"')
    assert_policy_error(folder, "roles.toml", "roles.admin.limit_per_centre", "int")


def test_role_bool_is_not_an_int(folder):
    edit(folder / "roles.toml", "limit_per_centre = 3", "limit_per_centre = true")
    assert_policy_error(folder, "roles.toml", "roles.admin.limit_per_centre")


def test_role_negative_limit(folder):
    edit(folder / "roles.toml", "limit_per_centre = 3", "limit_per_centre = -3")
    assert_policy_error(folder, "roles.toml", "roles.admin.limit_per_centre", "0 or more")


def test_role_unknown_role_in_may(folder):
    edit(folder / "roles.toml", 'invite = ["board", "helpdesk", "eo"]', 'invite = ["board", "eo", "superuser"]')
    assert_policy_error(folder, "roles.toml", "roles.board.may.invite", "superuser")


def test_role_unknown_action(folder):
    edit(folder / "roles.toml", "[roles.user.may]\n", '[roles.user.may]\nimpersonate = ["admin"]\n')
    assert_policy_error(folder, "roles.toml", "roles.user.may.impersonate", "unknown action")


def test_role_may_not_a_list(folder):
    edit(folder / "roles.toml", 'replace = ["eo"]', 'replace = "eo"')
    assert_policy_error(folder, "roles.toml", "roles.board.may.replace", "list")


def test_role_exact_needs_limit_one(folder):
    edit(folder / "roles.toml", "limit_per_centre = 1", "limit_per_centre = 2")
    assert_policy_error(folder, "roles.toml", "roles.eo.exact_per_centre")


def test_role_manage_requires_unknown_profile(folder):
    edit(folder / "roles.toml", 'manage_requires = "users.manage"', 'manage_requires = "users.admin"',
         after="[roles.admin]\n")
    assert_policy_error(folder, "roles.toml", "roles.admin.manage_requires", "users.admin")


def test_exactly_one_operator_role(folder):
    edit(folder / "roles.toml", "operator = false\nreason_required = true\ncan = [\"read_audit\"]",
         "operator = true\nreason_required = true\ncan = [\"read_audit\"]")
    assert_policy_error(folder, "roles.toml", "operator = true")


def test_unknown_capability(folder):
    edit(folder / "roles.toml", 'can = ["read_audit"]', 'can = ["read_audit", "launch_missiles"]')
    assert_policy_error(folder, "roles.toml", "roles.helpdesk.can", "launch_missiles")


def test_roles_file_extra_top_level_table(folder):
    (folder / "roles.toml").write_text((folder / "roles.toml").read_text() + '\n[extra]\nx = 1\n')
    assert_policy_error(folder, "roles.toml", "[roles]")


def test_roles_file_missing(folder):
    (folder / "roles.toml").unlink()
    assert_policy_error(folder, "roles.toml", "not found")


def test_roles_file_invalid_toml(folder):
    edit(folder / "roles.toml", "[roles.admin]\n", "[roles.admin\n")
    assert_policy_error(folder, "roles.toml", "not valid TOML")


# profiles.toml
def test_profile_unknown_key(folder):
    edit(folder / "profiles.toml", "[profiles.iamis]\n", "[profiles.iamis]\nprice = 3\n")
    assert_policy_error(folder, "profiles.toml", "profiles.iamis.price", "unknown key")


@pytest.mark.parametrize("bad", ['"results view"', '"Results"', '"results\\u00e9"', '"' + "a" * 65 + '"'])
def test_profile_id_is_a_token(folder, bad):
    edit(folder / "profiles.toml", "[profiles.iamis]\n", f"[profiles.{bad}]\n")
    assert_policy_error(folder, "profiles.toml", "a profile id is lower-case letters")


def test_profile_missing_key(folder):
    edit(folder / "profiles.toml", 'description_cy = "Defnyddio IAMIS ar gyfer pob pwnc."\n', "")
    assert_policy_error(folder, "profiles.toml", "profiles.iamis.description_cy", "missing")


def test_profile_wrong_type(folder):
    edit(folder / "profiles.toml", 'implies = ["entries.view"]', 'implies = "entries.view"')
    assert_policy_error(folder, "profiles.toml", "profiles.entries.make.implies", "list")


def test_profile_unknown_role(folder):
    edit(folder / "profiles.toml", 'user = "default" }', 'user = "default", guest = "allowed" }')
    assert_policy_error(folder, "profiles.toml", "profiles.resources.roles.guest", "unknown role")


def test_profile_bad_availability(folder):
    edit(folder / "profiles.toml", 'user = "default" }', 'user = "sometimes" }')
    assert_policy_error(folder, "profiles.toml", "profiles.resources.roles.user", "sometimes")


def test_profile_implies_unknown_profile(folder):
    edit(folder / "profiles.toml", 'implies = ["results.view"]', 'implies = ["results.viewing"]')
    assert_policy_error(folder, "profiles.toml", "profiles.results.embargoed.implies", "results.viewing")


def test_profile_implies_profile_role_may_never_hold(folder):
    # resources is on for users by default; a2c_keys is never theirs
    edit(folder / "profiles.toml", "implies = []", 'implies = ["a2c_keys"]', after="[profiles.resources]\n")
    assert_policy_error(folder, "profiles.toml", "profiles.resources.implies", "a2c_keys", "user")


def test_profiles_file_empty(folder):
    (folder / "profiles.toml").write_text("# nothing\n")
    assert_policy_error(folder, "profiles.toml", "[profiles]")


def test_with_implied_transitive_and_cyclic(folder):
    edit(folder / "profiles.toml", "implies = []", 'implies = ["entries.make"]',
         after='[profiles."training.book"]\n')
    edit(folder / "profiles.toml", 'roles = { eo = "default", admin = "default", user = "allowed" }',
         'roles = { eo = "default", admin = "default", user = "never" }', after='[profiles."training.book"]\n')
    edit(folder / "profiles.toml", "implies = []", 'implies = ["training.book"]',
         after='[profiles."entries.view"]\n')
    edit(folder / "profiles.toml", 'roles = { eo = "default", admin = "default", user = "allowed" }',
         'roles = { eo = "default", admin = "default", user = "never" }', after='[profiles."entries.view"]\n')
    loaded = policy.load(folder)
    # training.book -> entries.make -> entries.view -> training.book (a cycle must still terminate)
    assert loaded.with_implied(["training.book"]) == {"training.book", "entries.make", "entries.view"}


# security.toml
def test_security_min_length_below_8(folder):
    edit(folder / "security.toml", "min_length = 10", "min_length = 7")
    assert_policy_error(folder, "security.toml", "password.min_length")


def test_security_max_below_min(folder):
    edit(folder / "security.toml", "max_length = 128", "max_length = 9")
    assert_policy_error(folder, "security.toml", "password.min_length")


def test_security_lockout_needs_one_failure(folder):
    edit(folder / "security.toml", "max_failures = 3", "max_failures = 0")
    assert_policy_error(folder, "security.toml", "lockout.max_failures")


def test_security_wrong_type(folder):
    edit(folder / "security.toml", "lock_seconds = 3600", 'lock_seconds = "3600"')
    assert_policy_error(folder, "security.toml", "lockout.lock_seconds", "int")


def test_security_string_expected(folder):
    edit(folder / "security.toml", 'mfa_per_ip = "30 per minute"', "mfa_per_ip = 30")
    assert_policy_error(folder, "security.toml", "rate_limits.mfa_per_ip", "str")


def test_security_mfa_budget_positive(folder):
    edit(folder / "security.toml", "max_failures = 5", "max_failures = 0")
    assert_policy_error(folder, "security.toml", "mfa.max_failures")


def test_security_negative(folder):
    edit(folder / "security.toml", "lifetime_seconds = 600", "lifetime_seconds = -600")
    assert_policy_error(folder, "security.toml", "reset_code.lifetime_seconds", "0 or more")


def test_security_unknown_key(folder):
    edit(folder / "security.toml", "\n[lockout]\n", "\n[lockout]\nmax_failure = 3\n")
    assert_policy_error(folder, "security.toml", "lockout.max_failure", "unknown key")


def test_security_missing_key(folder):
    edit(folder / "security.toml", "recovery_codes = 10\n", "")
    assert_policy_error(folder, "security.toml", "mfa.recovery_codes", "missing")


def test_security_unknown_section(folder):
    (folder / "security.toml").write_text((folder / "security.toml").read_text() + "\n[captcha]\nx = 1\n")
    assert_policy_error(folder, "security.toml", "captcha", "unknown section")


def test_security_missing_section(folder):
    text = (folder / "security.toml").read_text()
    (folder / "security.toml").write_text(text[:text.index("[rate_limits]")])
    assert_policy_error(folder, "security.toml", "rate_limits", "missing")


def test_security_short_alphabet(folder):
    edit(folder / "security.toml",
         'temporary_password_alphabet = "ABCDEFGHJKMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz23456789"',
         'temporary_password_alphabet = "ABCDEFGHJKMNPQRSTUVWXYZAAAAAAAAAAAAA"')
    assert_policy_error(folder, "security.toml", "invite.temporary_password_alphabet", "32")


@pytest.mark.parametrize("value", ["10 per fortnight", "ten per minute", "", "per minute"])
def test_security_rate_limit_must_parse(folder, value):
    """A limit the rate limiter could not read is refused at start-up, not when someone signs in."""
    edit(folder / "security.toml", 'par_per_client = "600 per minute"', f'par_per_client = "{value}"')
    assert_policy_error(folder, "security.toml", "rate_limits.par_per_client")
