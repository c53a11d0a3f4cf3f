"""The pages people use, one package per feature (views parse and render; the services decide):

    signin   the sign-in journey's own pages, forgotten password, My account, sign out
    mfa      second factors: the sign-in challenge, setting one up (at first sign-in or from My
             account), managing them
    console  the centre console ("Manage users"): a centre's people, invites, access, activity

``pages`` holds what every feature's views share. A feature's views never import another's.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from .console import views as console_views
    from .mfa import views as mfa_views
    from .signin import views as signin_views

    app.register_blueprint(signin_views.bp)
    app.register_blueprint(mfa_views.bp)
    app.register_blueprint(console_views.bp)
