"""The authenticator-app QR code's SVG scales whole: a viewBox, no fixed size, its quiet zone drawn."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import segno

from idp.mfa import totp

URI = ("otpauth://totp/Exam%20board%20services:exams.officer%40st-davids-high-school.example.org.uk"
       "?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Exam%20board%20services")


def test_the_svg_has_a_view_box_and_no_fixed_pixel_size():
    svg = ET.fromstring(totp.qr_svg(URI))
    assert svg.tag.rsplit("}", 1)[-1] == "svg"
    assert "width" not in svg.attrib and "height" not in svg.attrib
    assert "style" not in svg.attrib  # the CSP (style-src 'self') would drop an inline style anyway
    assert not [e for e in svg.iter() if "transform" in e.attrib]  # no scale() standing in for a size
    x, y, width, height = (float(n) for n in svg.attrib["viewBox"].split())
    symbol = segno.make(URI, error="m").symbol_size(scale=1, border=0)[0]
    assert (x, y) == (0, 0)
    assert width == height == symbol + 2 * totp.QUIET_ZONE == symbol + 8


def test_the_quiet_zone_is_drawn_light_across_the_whole_view_box():
    svg = ET.fromstring(totp.qr_svg(URI))
    size = svg.attrib["viewBox"].split()[2]
    background, modules = [e for e in svg.iter() if e.tag.rsplit("}", 1)[-1] == "path"]
    assert background.attrib["fill"].lower() in ("#fff", "#ffffff")
    assert background.attrib["d"] == f"M0 0h{size}v{size}h-{size}z"
    # the dark modules start 4 modules in, never in the margin
    first_move = re.match(r"M(\d+(?:\.\d+)?) (\d+(?:\.\d+)?)", modules.attrib["d"])
    assert float(first_move.group(1)) >= totp.QUIET_ZONE and float(first_move.group(2)) >= totp.QUIET_ZONE
