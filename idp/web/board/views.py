"""The board console's home page; importing this module registers every part's routes on the
blueprint (the parts are modules of their own)."""

from __future__ import annotations

from . import audit, centres, clients, keys, people  # noqa: F401 - their routes join the blueprint
from .base import board_page, bp, render

__all__ = ["bp"]


@bp.get("")
@board_page("home")
def index(viewer):
    return render(viewer, "board/index.html", status=200)
