"""The accessibility helpers find what they are for: a page with WCAG failures fails the check (so
a clean result on the provider's pages means something), and screenshots come out at both widths."""

from __future__ import annotations

import pytest
from PIL import Image

from tests.browser.a11y import assert_accessible, axe_violations, screenshots

BROKEN = """<!doctype html><html><head><title>Broken</title></head><body><main>
<h1>Form</h1><input id="nameless"><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">
<p style="color:#aaa;background:#fff">Pale text that is too faint to read</p>
<a href="#"></a></main></body></html>"""


def test_a_page_with_wcag_failures_fails_the_check(browser):
    page = browser.new_page()
    page.set_content(BROKEN)
    found = {v["id"] for v in axe_violations(page)}
    assert {"html-has-lang", "label", "image-alt", "color-contrast", "link-name"} <= found, found
    with pytest.raises(AssertionError, match="label"):
        assert_accessible(page, "broken page")
    page.close()


def test_screenshots_at_a_laptop_and_a_phone_width(browser, tmp_path):
    page = browser.new_page(viewport={"width": 800, "height": 600})
    page.set_content("<!doctype html><html lang='en'><title>t</title><body><main><h1>Hello</h1></main></body></html>")
    taken = screenshots(page, tmp_path, "hello")
    assert [p.name for p in taken] == ["hello-1280.png", "hello-390.png"]
    assert [Image.open(p).width for p in taken] == [1280, 390]
    assert page.viewport_size == {"width": 800, "height": 600}
    page.close()
