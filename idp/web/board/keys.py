"""The provider's signing keys: each key's state and when it changes, a warning when one is due for
rotation, rotate and retire (after a confirmation page)."""

from __future__ import annotations

from flask import flash, redirect, url_for
from flask_babel import gettext as _

from ... import protocol
from ...admin import errors
from ...admin import keys as admin_keys
from .base import board_page, bp, render
from .forms import RetireKeyForm, RotateKeyForm


@bp.get("/keys")
@board_page("keys")
def keys(viewer):
    return render(viewer, "board/keys.html", overview=admin_keys.overview(viewer.actor),
                  algorithms=protocol.SIGNING_ALGORITHMS, status=200)


@bp.route("/keys/rotate/<alg>", methods=["GET", "POST"])
@board_page("keys")
def rotate_key(viewer, alg):
    overview = admin_keys.overview(viewer.actor)
    if alg not in protocol.SIGNING_ALGORITHMS:
        raise errors.NotFound(_("There is no such signing algorithm."))
    form, error = RotateKeyForm(data={"alg": alg}), None
    if form.validate_on_submit():
        try:
            info = admin_keys.rotate(viewer.actor, alg)
        except errors.Conflict as exc:
            error = exc.message
        else:
            flash(_("A new %(alg)s key has been published. It starts signing in %(minutes)d minutes, once "
                    "services have had time to fetch it; the key it replaces stays published until the tokens "
                    "it signed have expired.", alg=alg, minutes=max(0, (info.signs_from - info.created_at) // 60)))
            return redirect(url_for("board.keys"), code=303)
    current = [k for k in overview.keys if k.alg == alg and k.state == "signing"]
    return render(viewer, "board/key_rotate.html", form, error=error, alg=alg, current=current)


@bp.route("/keys/<kid>/retire", methods=["GET", "POST"])
@board_page("keys")
def retire_key(viewer, kid):
    key = next((k for k in admin_keys.overview(viewer.actor).keys if k.kid == kid), None)
    if key is None:
        raise errors.NotFound(_("There is no signing key with that id."))
    form, error = RetireKeyForm(), None
    if form.validate_on_submit():
        try:
            admin_keys.retire(viewer.actor, kid, immediately=form.immediately.data == "yes")
        except errors.Conflict as exc:
            error = exc.message
        else:
            flash(_("The key has been withdrawn: tokens it signed no longer work.") if form.immediately.data == "yes"
                  else _("The key no longer signs. It stays published until the tokens it signed have expired."))
            return redirect(url_for("board.keys"), code=303)
    return render(viewer, "board/key_retire.html", form, error=error, key=key)
