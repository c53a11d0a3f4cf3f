"""Whose pages these are: [branding] names and logo in every page's header and title (in Welsh on
Welsh pages), checked when the settings load; GOV.UK's crown and typeface nowhere; the header's
navigation for a signed-in person; and the assets the pages load are the ones shipped."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from flask import render_template_string

from idp import config, create_app

LOGO_SVG = (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">'
            b'<rect width="10" height="10"/></svg>')
STATIC = Path(__file__).resolve().parents[2] / "idp" / "static"


def _logo(tmp_path, name="board.svg", data=LOGO_SVG) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _title(page: str) -> str:
    return html.unescape(re.search(r"<title>(.*?)</title>", page, re.DOTALL).group(1)).strip()


# ------------------------------------------------------------------ settings
@pytest.mark.parametrize("branding, complaint", [
    ({"service_name": "  "}, "[branding] service_name: expected a name"),
    ({"board_name": "Line one\nline two"}, "[branding] board_name: expected one line"),
    ({"service_name_cy": "x" * 81}, "[branding] service_name_cy: expected one line of at most 80"),
    ({"board_name_cy": "Bwrdd\u202eevil"}, "[branding] board_name_cy: expected one line"),
    ({"logo": "logo.gif"}, "[branding] logo: expected a .svg, .png, .webp file"),
    ({"logo": "/nowhere/logo.svg"}, "[branding] logo: no such file"),
])
def test_bad_branding_settings_stop_start_up_naming_the_key(branding, complaint):
    with pytest.raises(config.ConfigError) as refused:
        config.load(None, env={}, branding=branding)
    assert complaint in str(refused.value)


def test_a_logo_over_256_kb_is_refused(tmp_path):
    big = _logo(tmp_path, "big.png", b"\x89PNG" + b"\0" * (256 * 1024))
    with pytest.raises(config.ConfigError, match=r"\[branding\] logo: expected at most 256 KB"):
        config.load(None, env={}, branding={"logo": str(big)})


def test_branding_from_the_environment(tmp_path):
    settings = config.load(None, env={"IDP_BRANDING_BOARD_NAME": "Bwrdd Arholi Cymru",
                                      "IDP_BRANDING_LOGO": str(_logo(tmp_path))})
    assert settings.branding.board_name == "Bwrdd Arholi Cymru"
    assert settings.logo_path == (tmp_path / "board.svg").resolve()


# ------------------------------------------------------------------ pages
def test_the_header_shows_the_boards_names_and_logo_in_the_pages_language(make_settings, tmp_path):
    app = create_app(make_settings(branding={
        "service_name": "Results services", "service_name_cy": "Gwasanaethau canlyniadau",
        "board_name": "Example Exam Board <EEB>", "board_name_cy": "Bwrdd Arholi Enghreifftiol",
        "logo": str(_logo(tmp_path))}))
    client = app.test_client()

    page = client.get("/signin?ui_locales=en").get_data(as_text=True)
    assert _title(page).endswith("– Results services")
    assert "Example Exam Board &lt;EEB&gt;" in page and "<EEB>" not in page  # text, never markup
    logo = re.search(r'<img class="idp-header__logo" src="([^"]+)" alt="">', page)
    assert logo, "the logo is drawn beside the board's name (so its alternative text is empty)"
    assert re.search(r'class="govuk-service-navigation__service-name">\s*<a [^>]*>\s*Results services\s*</a>',
                     page)

    welsh = client.get("/signin?ui_locales=cy").get_data(as_text=True)
    assert _title(welsh).endswith("– Gwasanaethau canlyniadau")
    assert "Bwrdd Arholi Enghreifftiol" in welsh and "Example Exam Board" not in welsh

    served = client.get(html.unescape(logo.group(1)))
    assert served.status_code == 200 and served.mimetype == "image/svg+xml" and served.data == LOGO_SVG
    assert served.cache_control.max_age == 31536000  # its URL changes with its content
    assert client.get("/branding/logo?v=old").cache_control.max_age == 300
    app.extensions["idp.db"].dispose()
    app.extensions["idp.store"].close()


def test_by_default_the_service_name_alone_and_its_welsh_from_the_catalogue(client):
    page = client.get("/signin?ui_locales=en").get_data(as_text=True)
    assert _title(page) == "Sign in – Exam board services"
    assert '<span class="idp-header__board-name">Exam board services</span>' in page
    assert "<img" not in page and "govuk-service-navigation" not in page  # nothing to add to the header
    assert client.get("/branding/logo").status_code == 404
    welsh = client.get("/signin?ui_locales=cy").get_data(as_text=True)
    assert _title(welsh) == "Mewngofnodi – Gwasanaethau'r bwrdd arholi"


def test_no_crown_no_gov_uk_font_and_only_shipped_assets(client):
    page = client.get("/signin").get_data(as_text=True)
    assert "govuk-crest" not in page and "govuk-logo" not in page and "Crown copyright" not in page
    assets = re.findall(r'(?:href|src)="(/static/[^"?]+)', page)
    # (webauthn.js: "Sign in with a passkey" and the passkey autofill)
    assert sorted(assets) == ["/static/govuk/idp.min.css", "/static/init.js", "/static/js-enabled.js",
                              "/static/webauthn.js"]
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
    css = (STATIC / "govuk" / "idp.min.css").read_text(encoding="utf-8-sig")
    assert "GDS Transport" not in css and "@font-face" not in css
    assert not [u for u in re.findall(r"url\(([^)]*)\)", css) if not u.strip("\"'").startswith("data:")]
    # no inline script: everything runs from files the CSP allows
    assert not re.search(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", page)
    init = (STATIC / "init.js").read_text()
    assert 'from "./govuk/govuk-frontend.min.js"' in init


def test_the_header_navigation_for_a_signed_in_person(app):
    # "Manage users" leads to the centre console (idp.web.console, endpoint users.index)
    class Person:
        name = "Ada <b>Lovelace</b>"

    layout = '{% extends "base.html" %}{% block content %}<h1>Page</h1>{% endblock %}'
    with app.test_request_context("/account/profile"):
        plain = render_template_string(layout)
        signed_in = render_template_string(layout, person=Person())
        manager = render_template_string(layout, person=Person(), may_manage_users=True)
    assert "Sign out" not in plain and "My account" not in plain
    assert "Ada &lt;b&gt;Lovelace&lt;/b&gt;" in signed_in
    assert re.search(r'<a class="govuk-service-navigation__link" href="/account" aria-current="true">',
                     signed_in)
    assert 'href="/users"' not in signed_in  # only for someone who may manage users
    assert re.search(r'<form class="idp-service-navigation__form" method="post" action="/signout">\s*'
                     r'<input type="hidden" name="csrf_token" value="[^"]+">', signed_in)
    assert re.search(r'href="/users"[^>]*>\s*Manage users\s*<', manager)
    assert re.search(r'href="/services"[^>]*>\s*All services\s*<', signed_in)  # (the page exists now)
