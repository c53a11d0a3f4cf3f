"""Client services (relying parties) as board staff manage them: list, register (what `idp client
create` covers, and a logo), change, rotate the secret with a grace period, disable and enable,
delete, the registration as the TOML `idp client import` reads; initial access tokens for RFC 7591
self-registration. Every rule about the metadata is idp.oidc.clients' (through idp.admin.clients):
the form only gathers it. And each service's logo, served from this provider's own origin."""

from __future__ import annotations

import json

from flask import Response, abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms.fields.choices import SelectChoice

from ... import policy, protocol
from ...admin import clients as admin_clients
from ...admin import errors
from ...extensions import settings
from ...i18n import english
from ...oidc import clients as registry
from .base import board_page, bp, form_error, render
from .forms import ClientForm, ConfirmForm, InitialTokenForm, RevokeTokenForm, RotateSecretForm

AUTH_METHOD_NAMES = {
    protocol.CLIENT_SECRET_BASIC: _l("A secret, sent with HTTP Basic authentication (client_secret_basic)"),
    protocol.CLIENT_SECRET_POST: _l("A secret, sent in the request body (client_secret_post)"),
    protocol.PRIVATE_KEY_JWT: _l("A JWT signed with its own private key (private_key_jwt)"),
    protocol.NONE: _l("Nothing: a public client, such as an app on a phone, using PKCE (none)"),
}
GRANT_NAMES = {
    protocol.AUTHORIZATION_CODE: _l("People sign in to it (authorization_code)"),
    protocol.REFRESH_TOKEN: _l("It keeps people signed in with refresh tokens (refresh_token)"),
    protocol.CLIENT_CREDENTIALS: _l("It calls other services as itself (client_credentials)"),
}
SCOPE_NAMES = {
    "openid": _l("openid: who the person is (needed for sign-in)"),
    "profile": _l("profile: their name"), "email": _l("email: their email address"),
    "phone": _l("phone: their phone number"),
    protocol.ACCESS_SCOPE: _l("access: their account type, centre and access profiles"),
    protocol.OFFLINE_ACCESS_SCOPE: _l("offline_access: refresh tokens that keep working after the person signs out"),
}
#: the registry's field names (the start of each of its messages) on the form's fields
FIELD_OF = {
    "redirect_uri": "redirect_uris", "post_logout_redirect_uri": "post_logout_redirect_uris",
    "response_types": "grant_types", "authorization_code": "redirect_uris", "give": "jwks",
    "private_key_jwt": "jwks_uri", "a": "token_endpoint_auth_method", "scope": "scopes",
}


def _choices(form: ClientForm) -> None:
    form.grant_types.choices = [SelectChoice(g, str(GRANT_NAMES[g])) for g in protocol.GRANT_TYPES]
    form.token_endpoint_auth_method.choices = [SelectChoice(m, str(AUTH_METHOD_NAMES[m]))
                                               for m in protocol.AUTH_METHODS]
    form.scopes.choices = [SelectChoice(s, str(SCOPE_NAMES[s])) for s in protocol.SUPPORTED_SCOPES if s in SCOPE_NAMES]
    form.id_token_signed_response_alg.choices = [
        SelectChoice("", _("The default (%(alg)s)", alg=protocol.DEFAULT_ID_TOKEN_ALGORITHM)),
        *(SelectChoice(a, a) for a in protocol.SIGNING_ALGORITHMS)]
    form.allowed_profiles.choices = [SelectChoice(p, p) for p in policy.current().profiles]


def _fill(form: ClientForm, meta: dict) -> None:
    """The form as it shows an existing registration."""
    for name in ("client_name", "description", "description_cy", "token_endpoint_auth_method", "jwks_uri"):
        getattr(form, name).data = meta.get(name) or ""
    form.initiate_login_uri.data = meta.get("initiate_login_uri") or ""
    form.backchannel_logout_uri.data = meta.get("backchannel_logout_uri") or ""
    form.backchannel_logout_session_required.data = bool(meta.get("backchannel_logout_session_required"))
    form.redirect_uris.data = "\n".join(meta.get("redirect_uris") or [])
    form.post_logout_redirect_uris.data = "\n".join(meta.get("post_logout_redirect_uris") or [])
    form.grant_types.data = list(meta.get("grant_types") or [])
    form.require_pushed_authorization_requests.data = bool(meta.get("require_pushed_authorization_requests"))
    form.dpop_bound_access_tokens.data = bool(meta.get("dpop_bound_access_tokens"))
    scopes = (meta.get("scope") or "").split()
    form.scopes.data = [s for s in scopes if s != protocol.ADMIN_API_SCOPE]
    form.admin_api.data = protocol.ADMIN_API_SCOPE in scopes
    form.jwks.data = json.dumps(meta["jwks"], indent=2) if meta.get("jwks") else ""
    form.id_token_signed_response_alg.data = meta.get("id_token_signed_response_alg") or ""
    profiles = meta.get("allowed_profiles")
    form.all_profiles.data = "all" if profiles is None else "some"
    form.allowed_profiles.data = list(profiles or [])


def _defaults(form: ClientForm) -> None:
    form.token_endpoint_auth_method.data = protocol.CLIENT_SECRET_BASIC
    form.grant_types.data = list(protocol.DEFAULT_GRANT_TYPES)
    form.scopes.data = protocol.DEFAULT_CLIENT_SCOPE.split()
    form.all_profiles.data = "all"


def _metadata(form: ClientForm) -> dict:
    """The registration the form describes, in RFC 7591's names (checked by the registry, not here)."""
    scopes = list(form.scopes.data or []) + ([protocol.ADMIN_API_SCOPE] if form.admin_api.data else [])
    meta = {
        "client_name": form.client_name.data or "", "description": form.description.data or "",
        "description_cy": form.description_cy.data or "",
        "initiate_login_uri": (form.initiate_login_uri.data or "").strip() or None,
        "redirect_uris": form.lines("redirect_uris"),
        "post_logout_redirect_uris": form.lines("post_logout_redirect_uris"),
        "grant_types": list(form.grant_types.data or []),
        "token_endpoint_auth_method": form.token_endpoint_auth_method.data or "",
        "require_pushed_authorization_requests": bool(form.require_pushed_authorization_requests.data),
        "dpop_bound_access_tokens": bool(form.dpop_bound_access_tokens.data),
        "backchannel_logout_session_required": bool(form.backchannel_logout_session_required.data),
        "scope": " ".join(scopes),
        "allowed_profiles": None if form.all_profiles.data != "some" else list(form.allowed_profiles.data or []),
    }
    for name in ("backchannel_logout_uri", "jwks_uri", "id_token_signed_response_alg"):
        value = (getattr(form, name).data or "").strip()
        if value:
            meta[name] = value
    if (form.jwks.data or "").strip():
        try:
            meta["jwks"] = json.loads(form.jwks.data)
        except ValueError:
            raise errors.Invalid(_("The JWK Set is not valid JSON: paste the whole document, from { to }."),
                                 "jwks") from None
    return meta


def _logo_upload() -> bytes | None:
    """The uploaded logo's bytes (at most one byte more than a logo may have: the registry says
    it is too large), or None when no file was chosen."""
    upload = request.files.get("logo")
    if upload is None or not upload.filename:
        return None
    return upload.stream.read(registry.MAX_LOGO_BYTES + 1)


def _registry_error(form: ClientForm, exc: errors.AdminError) -> tuple[str | None, str | None]:
    """(the page's error, the field it is about) for a refusal of the registry, whose messages
    start with the name of the metadata field they are about."""
    if exc.field == "invalid_logo":
        return exc.message, "logo"
    if exc.field in form:
        form[exc.field].errors = [*(form[exc.field].errors or []), exc.message]
        return None, None
    words = english(exc.message)  # the registry's English names the field first, in any language
    first = words.split(" ", 1)[0]
    name = FIELD_OF.get(first, first)
    if name == "scopes" and protocol.ADMIN_API_SCOPE in words:
        name = "admin_api"
    if name in form:
        form[name].errors = [*(form[name].errors or []), exc.message]
        return None, None
    return exc.message, None


def _client_form_page(viewer, template: str, form, **context):
    return render(viewer, template, form, auth_method_names=AUTH_METHOD_NAMES, **context)


# ------------------------------------------------------------------ list, register, change
@bp.get("/services")
@board_page("clients")
def clients(viewer):
    rows = admin_clients.list_all(viewer.actor)
    return render(viewer, "board/clients.html", rows=rows, status=200)


@bp.route("/services/new", methods=["GET", "POST"])
@board_page("clients")
def new_client(viewer):
    form = ClientForm()
    _choices(form)
    error = error_field = None
    if request.method == "GET":
        _defaults(form)
    if form.validate_on_submit():
        try:
            created = admin_clients.create(viewer.actor, _metadata(form), logo=_logo_upload())
        except errors.Invalid as exc:
            error, error_field = _registry_error(form, exc)
        else:
            return render(viewer, "board/client_secret.html", ConfirmForm(), client=created.client,
                          secret=created.client_secret, registered=True, status=200)
    return _client_form_page(viewer, "board/client_form.html", form, error=error, error_field=error_field,
                             client=None)


@bp.get("/services/<client_id>")
@board_page("clients")
def client(viewer, client_id):
    row = admin_clients.get(viewer.actor, client_id)
    return render(viewer, "board/client.html", ConfirmForm(), client=row, meta=registry.describe(row),
                  logo=registry.logo_of(client_id), auth_method_names=AUTH_METHOD_NAMES, status=200)


@bp.route("/services/<client_id>/edit", methods=["GET", "POST"])
@board_page("clients")
def edit_client(viewer, client_id):
    row = admin_clients.get(viewer.actor, client_id)
    form = ClientForm()
    _choices(form)
    error = error_field = None
    if request.method == "GET":
        _fill(form, registry.describe(row))
    if form.validate_on_submit():
        try:
            updated = admin_clients.update(viewer.actor, client_id, _metadata(form), logo=_logo_upload(),
                                           remove_logo=bool(form.remove_logo.data))
        except errors.Invalid as exc:
            error, error_field = _registry_error(form, exc)
        else:
            if updated.client_secret:  # it now authenticates with a secret: a new one, shown once
                return render(viewer, "board/client_secret.html", ConfirmForm(), client=updated.client,
                              secret=updated.client_secret, registered=False, status=200)
            flash(_("The changes have been saved."))
            return redirect(url_for("board.client", client_id=client_id), code=303)
    return _client_form_page(viewer, "board/client_form.html", form, error=error, error_field=error_field,
                             client=row, logo=registry.logo_of(client_id))


# ------------------------------------------------------------------ secret, disable, delete, TOML
@bp.route("/services/<client_id>/secret", methods=["GET", "POST"])
@board_page("clients")
def rotate_secret(viewer, client_id):
    row = admin_clients.get(viewer.actor, client_id)
    form, error = RotateSecretForm(), None
    if form.validate_on_submit():
        try:
            secret = admin_clients.rotate_secret(viewer.actor, client_id, grace_seconds=int(form.grace.data))
        except errors.Invalid as exc:
            error = exc.message
        else:
            return render(viewer, "board/client_secret.html", ConfirmForm(), client=row, secret=secret,
                          registered=False, grace=int(form.grace.data), status=200)
    return render(viewer, "board/client_rotate.html", form, error=error, client=row)


@bp.route("/services/<client_id>/status", methods=["GET", "POST"])
@board_page("clients")
def client_status(viewer, client_id):
    """Disable an enabled service, or enable a disabled one, after a confirmation page."""
    row = admin_clients.get(viewer.actor, client_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        disable = not row.disabled
        admin_clients.set_disabled(viewer.actor, client_id, disable)
        flash(_("%(name)s has been disabled: it cannot get tokens, and its tokens stop working.", name=row.client_name)
              if disable else _("%(name)s has been enabled again.", name=row.client_name))
        return redirect(url_for("board.client", client_id=client_id), code=303)
    return render(viewer, "board/client_status.html", form, client=row)


@bp.route("/services/<client_id>/delete", methods=["GET", "POST"])
@board_page("clients")
def delete_client(viewer, client_id):
    row = admin_clients.get(viewer.actor, client_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        name = row.client_name
        admin_clients.delete(viewer.actor, client_id)
        flash(_("%(name)s has been deleted. Its tokens no longer work.", name=name))
        return redirect(url_for("board.clients"), code=303)
    return render(viewer, "board/client_delete.html", form, client=row)


@bp.get("/services/<client_id>/toml")
@board_page("clients")
def client_toml(viewer, client_id):
    text = admin_clients.declaration(viewer.actor, client_id)
    if request.args.get("download") == "1":
        response = Response(text, mimetype="application/toml")
        response.headers["Content-Disposition"] = f'attachment; filename="{client_id}.toml"'
        return response
    row = admin_clients.get(viewer.actor, client_id)
    return render(viewer, "board/client_toml.html", client=row, toml=text,
                  secret_env=admin_clients.secret_env_name(client_id), status=200)


# ------------------------------------------------------------------ initial access tokens
@bp.route("/services/initial-tokens", methods=["GET", "POST"])
@board_page("clients")
def initial_tokens(viewer):
    form, error = InitialTokenForm(), None
    if form.validate_on_submit():
        try:
            token = admin_clients.issue_initial_token(viewer.actor, lifetime_seconds=int(form.lifetime.data),
                                                      uses=int(form.uses.data))
        except errors.Invalid as exc:
            error = form_error(form, exc, {"lifetime": "lifetime", "uses": "uses"})
        else:
            return render(viewer, "board/initial_token.html", ConfirmForm(), token=token, status=200,
                          uses=int(form.uses.data), registration_endpoint=settings().server.issuer + "/register")
    return render(viewer, "board/initial_tokens.html", form, error=error,
                  tokens=admin_clients.initial_tokens(viewer.actor))


@bp.post("/services/initial-tokens/revoke")
@board_page("clients")
def revoke_initial_token(viewer):
    form = RevokeTokenForm()
    if form.validate_on_submit():
        admin_clients.revoke_initial_token(viewer.actor, form.token.data)
        flash(_("The initial access token has been revoked: it cannot register anything more."))
    return redirect(url_for("board.initial_tokens"), code=303)


# ------------------------------------------------------------------ logos (for anyone)
@bp.get("/services/<client_id>/logo")
def client_logo(client_id):
    """A client service's logo, from this provider's own origin (All services shows it to anyone
    signed in; it is no secret). The URL carries the image's digest, so a new logo is a new URL."""
    logo = registry.logo_of(client_id)
    if logo is None:
        abort(404)
    response = Response(logo.data, mimetype=logo.media_type)
    response.cache_control.public = True
    response.cache_control.max_age = 31536000 if request.args.get("v") == logo.digest else 300
    return response
