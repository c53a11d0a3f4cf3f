"""The shape of the package, held by checks (docs/architecture.md explains the layers):

- import-linter's contracts in pyproject.toml: each layer imports only from the layers below it, no
  package imports another in a loop, only idp.oidc imports Authlib, no feature's views import
  another feature's;
- no domain service, policy or administration module reads Flask's ``request``: they take what
  they need as arguments, so the JSON API, the command line and the pages can all call them.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "idp"
#: where the rules live: none of these may depend on the request being served
REQUEST_FREE = ["accounts", "admin", "centres", "mfa", "policy", "journey.py", "events.py", "records.py",
                "protocol.py", "clock.py", "inputs.py", "outbound.py", "store.py", "secrets.py"]


def test_import_contracts_hold():
    # in a process of its own: import-linter sets up logging for its report
    done = subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports; "
                           f"sys.exit(lint_imports(config_filename={str(ROOT / 'pyproject.toml')!r}))"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]


def _modules(names):
    for name in names:
        path = PACKAGE / name
        yield from (sorted(path.rglob("*.py")) if path.is_dir() else [path])


def _reads_the_request(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ("flask", "flask.globals"):
            found += [f"line {node.lineno}: from {node.module} import request"
                      for alias in node.names if alias.name == "request"]
        if isinstance(node, ast.Attribute) and node.attr == "request" and \
                isinstance(node.value, ast.Name) and node.value.id == "flask":
            found.append(f"line {node.lineno}: flask.request")
    return found


@pytest.mark.parametrize("path", list(_modules(REQUEST_FREE)), ids=lambda p: str(p.relative_to(ROOT)))
def test_services_never_read_the_request(path):
    assert _reads_the_request(ast.parse(path.read_text())) == []


def test_the_check_notices_a_service_reading_the_request():
    bad = ast.parse("from flask import current_app, request\n")
    assert _reads_the_request(bad) == ["line 1: from flask import request"]


def test_the_project_documents_link_nothing_outside_the_repository():
    documents = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    assert len(documents) > 1, "docs/ is missing"
    for document in documents:
        for target in re.findall(r"\]\(([^)\s]+)", document.read_text()):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue  # a web address or an anchor, not a file
            resolved = (document.parent / target.split("#")[0]).resolve()
            assert resolved.is_relative_to(ROOT), f"{document.name} links outside the repository: {target}"
            assert resolved.exists(), f"{document.name} links to a missing file: {target}"
