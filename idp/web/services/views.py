"""All services: the client services registered with a launch address (``initiate_login_uri``)
that the signed-in person's access profiles open (idp.oidc.clients.services_for), each a link that
starts it, and whom to ask when one they need is missing (the policy says whether their access is
given at their centre)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import Blueprint, redirect, url_for

from ... import policy
from ...admin import people
from ...extensions import settings
from ...oidc import clients
from ..pages import in_page_language, page, signed_in

bp = Blueprint("services", __name__)


@dataclass(frozen=True)
class Service:
    name: str
    description: str
    start_url: str


def start_url(initiate_login_uri: str) -> str:
    """The service's launch address with ``iss`` added: a third-party-initiated login (OpenID
    Connect Core §4), so the service knows which provider to send the person to."""
    parts = urlsplit(initiate_login_uri)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "iss"]
    query.append(("iss", settings().server.issuer))
    return urlunsplit(parts._replace(query=urlencode(query)))


@bp.get("/services")
def index():
    entry = signed_in()
    if entry is None:
        return redirect(url_for("signin.signin"))
    party = people.party_of(entry.account)
    found = [Service(name=row.client_name, description=in_page_language(row.description, row.description_cy),
                     start_url=start_url(row.initiate_login_uri))
             for row in clients.services_for(party.profiles)]
    return page("services/index.html", services=found,
                ask_the_board=not policy.checks().access_given_at_centre(party))
