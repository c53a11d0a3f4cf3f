"""The pages people use, one package per feature (views parse and render; the services decide):

    signin    the sign-in journey's own pages, forgotten password, My account, sign out
    mfa       second factors: the sign-in challenge, setting one up (at first sign-in or from My
              account), managing them
    services  All services: the exam-board services the signed-in person can start
    console   the centre console ("Manage users"): a centre's people, invites, access, activity
    board     the board console: centres and Exams Officers, the helpdesk, client services, signing
              keys, the audit trail, board staff

``pages`` holds what every feature's views share, and what every page's header shows. A feature's
views never import another's.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from . import mail_notice, pages
    from .board import views as board_views
    from .console import views as console_views
    from .mfa import views as mfa_views
    from .services import views as services_views
    from .signin import views as signin_views

    pages.init_app(app)
    mail_notice.init_app(app)
    app.register_blueprint(signin_views.bp)
    app.register_blueprint(mfa_views.bp)
    app.register_blueprint(services_views.bp)
    app.register_blueprint(console_views.bp)
    app.register_blueprint(board_views.bp)
