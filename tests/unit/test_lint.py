"""The code passes the lint rules pyproject.toml selects (ruff: pyflakes, import order, bugbear,
pyupgrade, pycodestyle's errors), so an unused import, a shadowed loop variable or a bare
``except`` is found by the tests rather than by a reader."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_code_passes_the_lint_rules():
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise",
                           "idp", "tests", "scripts"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
