"""The rules page (not built yet)."""

from __future__ import annotations

from flask import Blueprint, render_template


def add_routes(bp: Blueprint) -> None:
    bp.add_url_rule("/rules", "rules", _page)


def _page() -> str:
    return render_template("console/stub.html", title="rules")
