"""Welsh is complete: every message the code and the templates can show is in the Welsh catalogue,
translated; the compiled catalogue is the one committed; no template shows text that is not a
message of the catalogue (docs/translations.md)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from io import BytesIO
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po
from jinja2 import Environment, nodes

ROOT = Path(__file__).resolve().parents[3]
PO = ROOT / "idp/translations/cy/LC_MESSAGES/messages.po"
MO = PO.with_suffix(".mo")
TEMPLATES = ROOT / "idp/templates"
#: the keywords scripts/translations extracts with, besides Babel's own (_, gettext, ngettext, N_...)
KEYWORDS = {"_l": None, "lazy_gettext": None, "lazy_ngettext": (1, 2)}
#: the convention for a translation no Welsh speaker has read yet
MACHINE_DRAFTED = "machine-drafted: review"

#: text a template may show as it is: each language's own name, in that language
NOT_TRANSLATED = {"Cymraeg", "English"}
#: a block that fills a class attribute ({% block column %}govuk-grid-column-full{% endblock %})
CLASS_NAMES = re.compile(r"^(govuk|idp)-[a-z0-9_!-]+$")
LETTERS = re.compile(r"[^\W\d_]")
#: attributes a person reads (or hears, from a screen reader)
READ_ATTRIBUTES = {"alt", "title", "aria-label", "placeholder"}
#: keys of the GOV.UK components' parameters whose values are shown ({"text": ...})
SHOWN_KEYS = {"text", "html", "titleText", "label", "hint", "caption", "legend", "message", "value_text"}
#: calls whose string arguments are messages of the catalogue, or not shown at all
GETTEXT_CALLS = {"_", "gettext", "ngettext", "pgettext", "url_for"}


def _catalogue() -> Catalog:
    with PO.open("rb") as file:
        return read_po(file)


def _msgids(catalog) -> set[str]:
    return {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}


def _extracted() -> set[str]:
    with (ROOT / "babel.cfg").open() as file:
        method_map, options_map = parse_mapping_cfg(file)
    keywords = {**DEFAULT_KEYWORDS, **KEYWORDS}
    return {msgid if isinstance(msgid, str) else msgid[0]
            for _file, _line, msgid, _comments, _context in
            extract_from_dir(str(ROOT), method_map, options_map, keywords=keywords)}


# ------------------------------------------------------------------ the catalogue
def test_every_message_has_a_welsh_translation():
    untranslated = [m.id for m in _catalogue()
                    if m.id and (m.fuzzy or not (all(m.string) if isinstance(m.string, tuple) else m.string))]
    assert not untranslated, f"{len(untranslated)} messages have no Welsh (or only a fuzzy guess): {untranslated[:20]}"


def test_translations_keep_the_placeholders():
    problems = [(message.id, [str(e) for e in errors]) for message, errors in _catalogue().check()]
    assert not problems, problems


def test_every_message_of_the_code_and_templates_is_in_the_catalogue():
    in_code, in_catalogue = _extracted(), _msgids(_catalogue())
    missing, unused = sorted(in_code - in_catalogue), sorted(in_catalogue - in_code)
    assert not missing, f"not in messages.po (run scripts/translations update, then translate): {missing[:20]}"
    assert not unused, f"in messages.po but no longer used (run scripts/translations update): {unused[:20]}"


def test_no_obsolete_entries():
    assert not _catalogue().obsolete, "remove the #~ entries (scripts/translations update drops them)"


def test_the_compiled_catalogue_is_up_to_date():
    expected = BytesIO()
    write_mo(expected, _catalogue())

    def entries(data: bytes) -> dict:
        frozen = lambda value: tuple(value) if isinstance(value, list) else value  # noqa: E731 - plural forms
        return {frozen(m.id): frozen(m.string) for m in read_mo(BytesIO(data)) if m.id}

    assert entries(MO.read_bytes()) == entries(expected.getvalue()), \
        "messages.mo is older than messages.po: run scripts/translations compile"


def test_machine_drafted_translations_are_marked_in_a_way_the_review_finds():
    # docs/translations.md tells the reviewer to look for exactly this comment
    marks = [c for m in _catalogue() for c in m.user_comments if "machine" in c.lower()]
    assert all(c.strip() == MACHINE_DRAFTED for c in marks), sorted(set(marks))


# ------------------------------------------------------------------ text in the templates
class _VisibleText(HTMLParser):
    """The text of an HTML template that a person reads, with every Jinja tag cut out."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hidden = 0  # inside <script> or <style>
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self.hidden += 1
        for name, value in attrs:
            if name in READ_ATTRIBUTES and value:
                self.check(value)

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self.hidden -= 1

    def handle_data(self, data):
        if not self.hidden:
            self.check(data)

    def check(self, text: str) -> None:
        self.found.extend(_words_outside_tags(text))


CUT = "\x00"  # where a Jinja tag was


def _literal_text(env: Environment, source: str) -> str:
    """The template with every {{ }}, {% %} and {# #} replaced by CUT: what is left is shown as it is."""
    return "".join(value if kind == "data" else CUT for _line, kind, value in env.lex(source))


def _words_outside_tags(text: str) -> list[str]:
    pieces = (" ".join(piece.split()) for piece in text.split(CUT))
    return [p for p in pieces if LETTERS.search(p) and p not in NOT_TRANSLATED and not CLASS_NAMES.match(p)]


def _untranslated_constants(env: Environment, source: str) -> list[str]:
    """Strings written in a template's expressions that would be shown as they are: the value of a
    component's "text" (or "html", "label"...), or anything that reads like an English phrase, unless
    it is an argument of _() or ngettext()."""
    tree = env.parse(source)
    in_gettext = {id(const) for call in tree.find_all(nodes.Call)
                  if isinstance(call.node, nodes.Name) and call.node.name in GETTEXT_CALLS
                  for const in call.find_all(nodes.Const)}
    shown = {id(pair.value) for pair in tree.find_all(nodes.Pair)
             if isinstance(pair.key, nodes.Const) and pair.key.value in SHOWN_KEYS}
    found = []
    for const in tree.find_all(nodes.Const):
        value = const.value
        if not isinstance(value, str) or id(const) in in_gettext or not LETTERS.search(value):
            continue
        words = " ".join(re.sub(r"<[^>]*>", " ", value).split())
        if id(const) in shown and LETTERS.search(words) and words not in NOT_TRANSLATED:
            found.append(value)
        elif re.match(r"^[A-Z][a-z']+( [a-z']+)+", words):
            found.append(value)
    return found


def _template_paths() -> list[Path]:
    return sorted(p for p in TEMPLATES.rglob("*") if p.suffix in (".html", ".txt"))


@pytest.mark.parametrize("path", _template_paths(), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_templates_show_no_text_outside_the_catalogue(path):
    env = Environment(extensions=["jinja2.ext.i18n", "jinja2.ext.do", "jinja2.ext.loopcontrols"])
    source = path.read_text()
    if path.suffix == ".html":
        parser = _VisibleText()
        parser.feed(_literal_text(env, source))
        parser.close()
        found = parser.found
    else:  # a plain-text email: everything outside the tags is sent as it is
        found = _words_outside_tags(_literal_text(env, source))
    found += _untranslated_constants(env, source)
    assert not found, f"text in {path.name} that is not a message of the catalogue: {found}"


def _escaped_markup(env: Environment, source: str) -> list[str]:
    """Tags written as strings next to a message ("<span>" ~ _("Actions")): the message is Markup,
    so Jinja escapes a string joined to it, and the page shows the tag. The tags need |safe."""
    found = []
    for concat in env.parse(source).find_all(nodes.Concat):
        has_message = any(isinstance(n, nodes.Call) and isinstance(n.node, nodes.Name) and n.node.name in GETTEXT_CALLS
                          for n in concat.nodes)
        found += [n.value for n in concat.nodes
                  if has_message and isinstance(n, nodes.Const) and isinstance(n.value, str) and "<" in n.value]
    return found


@pytest.mark.parametrize("path", [p for p in _template_paths() if p.suffix == ".html"],
                         ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_tags_next_to_a_message_are_marked_safe(path):
    env = Environment(extensions=["jinja2.ext.i18n", "jinja2.ext.do", "jinja2.ext.loopcontrols"])
    assert not _escaped_markup(env, path.read_text())


def test_the_template_check_finds_text_outside_the_catalogue():
    env = Environment(extensions=["jinja2.ext.i18n"])
    parser = _VisibleText()
    parser.feed(_literal_text(env, '<p>{{ _("Fine") }} Not fine <img alt="Logo"></p><script>var x = "ok";</script>'))
    assert parser.found == ["Not fine", "Logo"]
    assert _untranslated_constants(env, '{{ govukButton({"text": "Save"}) }}{{ button(_("Save")) }}') == ["Save"]
    assert _untranslated_constants(env, '{% set x = "Some words here" %}') == ["Some words here"]
    assert _escaped_markup(env, '{{ "<b>" ~ _("Hi") ~ "</b>" }}{{ "<i>"|safe ~ _("Hi") ~ "</i>"|safe }}') == ["<b>", "</b>"]
