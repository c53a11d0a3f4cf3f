"""Accessibility checks and screenshots for pages in real Chromium.

axe-core (npm, pinned in frontend/package-lock.json, installed by README's test command:
``npm ci --prefix frontend``) runs inside the page and reports every violation of the WCAG 2.2 AA
rules it can test. It is put in the page through the DevTools protocol, so the page's own CSP
(script-src 'self') still holds for everything the page does itself."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

AXE = Path(__file__).resolve().parents[2] / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
#: axe-core's tags for the WCAG 2.0, 2.1 and 2.2 success criteria at levels A and AA
WCAG_22_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
#: a laptop; and a 390 px phone as Chromium emulates one (meta viewport honoured, 3 device px per px)
SCREENS = {
    1280: {"viewport": {"width": 1280, "height": 800}, "device_scale_factor": 1},
    390: {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3, "is_mobile": True,
          "has_touch": True},
}

#: the (width, language) pairs every page is seen in: each page in both languages and at both widths,
#: as two runs rather than four. Welsh goes on the phone because its longer words are the likelier
#: to overflow a narrow screen; axe-core's findings do not otherwise depend on the pairing, and the
#: full cross product doubled the browser tests' time.
SCREEN_LANGUAGES = [(1280, "en"), (390, "cy")]

_RUN_AXE = """async (tags) => {
  const results = await axe.run(document, {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]});
  return results.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => ({target: n.target.join(" "), html: n.html.slice(0, 200), summary: n.failureSummary}))
  }));
}"""


@functools.cache
def _axe_source() -> str:
    if not AXE.exists():
        pytest.fail(f"axe-core is not installed ({AXE}): run `npm ci --prefix frontend --no-audit --no-fund` "
                    "(README's test command does)")
    return AXE.read_text()


def axe_violations(page, tags=WCAG_22_AA) -> list[dict]:
    """axe-core's violations of ``tags`` on the page as it is now."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(_axe_source())
    return page.evaluate(_RUN_AXE, list(tags))


def describe(violations: list[dict]) -> str:
    lines = []
    for v in violations:
        lines.append(f"{v['id']} ({v['impact']}): {v['help']}")
        lines.extend(f"    {n['target']}: {n['html']}\n      {n['summary']}" for n in v["nodes"])
    return "\n".join(lines)


def assert_accessible(page, where: str = "") -> None:
    """No WCAG 2.2 A/AA violation that axe-core finds on the page."""
    violations = axe_violations(page)
    assert not violations, f"{where or page.url}: accessibility violations\n{describe(violations)}"


def screenshots(page, directory: Path, name: str, widths=(1280, 390)) -> list[Path]:
    """Full-page screenshots of the page at each width (the viewport is put back afterwards)."""
    directory.mkdir(parents=True, exist_ok=True)
    before = page.viewport_size
    taken = []
    for width in widths:
        page.set_viewport_size({"width": width, "height": SCREENS.get(width, SCREENS[1280])["viewport"]["height"]})
        path = directory / f"{name}-{width}.png"
        page.screenshot(path=str(path), full_page=True)
        taken.append(path)
    if before:
        page.set_viewport_size(before)
    return taken
