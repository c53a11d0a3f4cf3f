"""The authenticator-app set-up page as a phone camera meets it: Chromium renders the page, a
screenshot of the whole page (not the SVG alone) goes to a maintained QR decoder (zxing-cpp), and what
it reads must be the otpauth:// URI that the key printed on the page implies, on a laptop and on a
phone-sized screen, in English and in Welsh. The decoded URI then sets the method up, as an app would."""

from __future__ import annotations

import io
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
import pytest
import zxingcpp
from PIL import Image

from tests.browser.journey import authorize_url, password_steps
from tests.support import make_account, make_client

EMAIL = "exams.officer@st-davids-high-school.example.org.uk"  # a long address: a denser code
LABEL = "QR code for your authenticator app"
SCREENS = {
    # a laptop; and a 390 px phone as Chromium emulates one (meta viewport honoured, 3 device px per px)
    1280: {"viewport": {"width": 1280, "height": 800}, "device_scale_factor": 1},
    390: {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3, "is_mobile": True,
          "has_touch": True},
}
#: a module this many CSS px wide or more is read by a phone camera held at a laptop screen
MIN_MODULE_PX = 4
QUIET_ZONE_MODULES = 4


def _open_totp_setup(app, issuer, browser, width, lang):
    with app.app_context():
        make_account(email=EMAIL, mfa=False)
        rp = make_client(redirect_uri=f"{issuer}/rp-callback")
    context = browser.new_context(**SCREENS[width])
    context.set_default_timeout(30_000)  # CI shares two cores with the rest of the suite
    page = context.new_page()
    page.goto(authorize_url(issuer, rp, ui_locales=lang))
    password_steps(page, EMAIL)
    page.wait_for_url("**/signin/mfa/setup")
    page.click("a[href$='/signin/mfa/setup/totp']")
    page.wait_for_url("**/signin/mfa/setup/totp")
    return context, page


def _decode(png: bytes) -> list:
    return zxingcpp.read_barcodes(Image.open(io.BytesIO(png)).convert("L"),
                                  formats=zxingcpp.BarcodeFormat.QRCode)


def _symbol_box(found, scale: float) -> tuple[float, float, float, float, float]:
    """(left, top, right, bottom, module size) of the decoded symbol, in CSS px."""
    corners = found.position
    xs = [corners.top_left.x, corners.top_right.x, corners.bottom_left.x, corners.bottom_right.x]
    ys = [corners.top_left.y, corners.top_right.y, corners.bottom_left.y, corners.bottom_right.y]
    modules = 17 + 4 * int(found.extra["Version"])
    left, top, right, bottom = min(xs) / scale, min(ys) / scale, max(xs) / scale, max(ys) / scale
    return left, top, right, bottom, (right - left) / modules


def _translated(app, lang: str, message: str) -> str:
    from flask_babel import force_locale, gettext

    with app.test_request_context("/"), force_locale(lang):
        return gettext(message)


@pytest.mark.parametrize("lang", ["en", "cy"])
@pytest.mark.parametrize("width", [1280, 390])
def test_the_qr_code_on_the_page_reads_as_the_key_shown(live, browser, tmp_path, width, lang):
    app, issuer = live
    issuer_name = app.config["IDP_SETTINGS"].mfa.issuer_name
    context, page = _open_totp_setup(app, issuer, browser, width, lang)
    assert page.locator("html").get_attribute("lang") == lang
    secret = page.locator("code.secret").inner_text().strip()
    assert len(secret) == 32

    png = page.screenshot(full_page=True)
    (tmp_path / f"totp-setup-{width}-{lang}.png").write_bytes(png)
    found = _decode(png)
    assert len(found) == 1, f"no single QR code in the screenshot ({len(found)} found): {tmp_path}"
    decoded = found[0].text

    # what an authenticator app files the key under, and the key itself
    with app.app_context():
        from idp.mfa import totp

        assert decoded == totp.provisioning_uri(secret, EMAIL)
    parts = urlsplit(decoded)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    assert unquote(parts.path) == f"/{issuer_name}:{EMAIL}"
    assert parse_qs(parts.query) == {"secret": [secret], "issuer": [issuer_name]}

    # big enough for a camera, whole, with its quiet zone, crisp, and nothing pushed off a phone screen
    scale = SCREENS[width]["device_scale_factor"]
    left, top, right, bottom, module = _symbol_box(found[0], scale)
    assert module >= MIN_MODULE_PX, f"modules are {module:.2f} px"
    box = page.locator(".qr svg").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= width
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    for margin in (left - box["x"], top - box["y"], box["x"] + box["width"] - right,
                   box["y"] + box["height"] - bottom):
        assert margin >= (QUIET_ZONE_MODULES - 0.5) * module, f"quiet zone {margin / module:.1f} modules"
    symbol = Image.open(io.BytesIO(png)).convert("RGB").crop(
        (round(left * scale), round(top * scale), round(right * scale), round(bottom * scale)))
    assert sorted(colour for _, colour in symbol.getcolors()) == [(11, 12, 12), (255, 255, 255)], \
        "modules drawn with blurred (anti-aliased) edges"

    # a screen reader names the image; the typed key is the text alternative for the key itself
    label = _translated(app, lang, LABEL)
    assert page.get_by_role("img", name=label, exact=True).is_visible()

    # the app that scanned it gives a code that sets the method up
    page.fill("#code", pyotp.parse_uri(decoded).now())
    page.click("button[type=submit]")
    page.wait_for_url("**/signin/mfa/recovery-codes")
    context.close()
