"""Close's ids in what people paste, and links back to Close's pages. Pure.

People paste whatever their browser shows: an opportunity id, or the address of a lead page
with the opportunity open in it (https://app.close.com/lead/lead_…/opportunity/oppo_…/,
sometimes with a #fragment or a query), or a whole sentence from a chat. Only the ids
matter, and an opportunity's id starts `oppo_`.

Close documents no address for an opportunity's own page. The console links to
https://app.close.com/opportunity/<id>/ (the form other integrations link to) and, when the
lead is known, to the lead's page with the opportunity open in it, the address Close's app
shows (https://app.close.com/lead/<lead id>/opportunity/<id>/).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

CLOSE_APP = "https://app.close.com"
# Close's ids: a prefix, an underscore, then letters and digits.
_OPPORTUNITY = re.compile(r"(?<![A-Za-z0-9])oppo_[A-Za-z0-9]+")
_LEAD = re.compile(r"(?<![A-Za-z0-9])lead_[A-Za-z0-9]+")
MAX_QUERY_CHARS = 2_000  # a pasted address, not a document


@dataclass(frozen=True)
class Query:
    """What someone typed or pasted in the deal search, read."""

    text: str
    opportunity_id: str | None = None
    lead_id: str | None = None
    problem: str | None = None  # said to the person when there is no opportunity to show


def read_query(text: str) -> Query:
    """The opportunity (and lead) ids in `text`; a problem to show when there is none."""
    text = text.strip()[:MAX_QUERY_CHARS]
    if not text:
        return Query(text)
    plain = unquote(text)
    opportunities = list(dict.fromkeys(_OPPORTUNITY.findall(plain)))
    leads = _LEAD.findall(plain)
    lead = leads[0] if leads else None
    if not opportunities:
        if lead is not None:
            problem = (
                f"That is a lead ({lead}), not an opportunity: open the opportunity in Close "
                "(its address then ends in /opportunity/oppo_…/) and paste that, or its oppo_ id."
            )
        else:
            problem = (
                "No opportunity id in that: paste an id that starts with oppo_, or the address "
                "of the opportunity in Close."
            )
        return Query(text, lead_id=lead, problem=problem)
    several = None
    if len(opportunities) > 1:
        several = f"Several opportunity ids in that; showing the first, {opportunities[0]}."
    return Query(text, opportunity_id=opportunities[0], lead_id=lead, problem=several)


def opportunity_url(opportunity_id: str) -> str:
    return f"{CLOSE_APP}/opportunity/{opportunity_id}/"


def lead_url(lead_id: str, opportunity_id: str | None = None) -> str:
    """The lead's page, with the opportunity open in it when given (the address Close's app
    shows for an opportunity on its lead)."""
    if opportunity_id:
        return f"{CLOSE_APP}/lead/{lead_id}/opportunity/{opportunity_id}/"
    return f"{CLOSE_APP}/lead/{lead_id}/"
