"""One module per console page: each gathers its data (through adapters and processing) and
renders its template. `add_routes` mounts them all on the console's blueprint."""

from __future__ import annotations

from flask import Blueprint

from service.console.pages import deal, overview, parked, playground, report, rules, sweeps

# The navigation, in order: (endpoint, label).
NAVIGATION = (
    ("console.overview", "Overview"),
    ("console.deal", "A deal"),
    ("console.rules", "Rules"),
    ("console.parked", "Parked"),
    ("console.sweeps", "Sweeps"),
    ("console.report", "Hygiene report"),
    ("console.playground", "Playground"),
)


def add_routes(bp: Blueprint) -> None:
    for page in (overview, deal, rules, parked, sweeps, report, playground):
        page.add_routes(bp)
