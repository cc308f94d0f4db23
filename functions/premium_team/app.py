"""`GET /team`, gated by an organization plan: `plan = "org:team"` (a user plan named team never matches)."""

from typing import Any

from paygate.http import error_response, json_response
from paygate.infra.catalog_file import load_catalog
from paygate.service.context import caller_from_event
from paygate.settings import catalog_path


def handler(event: dict, context: Any) -> dict:
    caller = caller_from_event(event)
    if caller is None:
        return error_response(401, "unauthenticated", "this route is served behind the paygate authorizer")
    if caller.org_id is None:
        # Clerk only puts organization plans in a token with an active organization; anything else is odd.
        return error_response(403, "no_active_organization", "the team page needs an active organization")
    plan = load_catalog(catalog_path()).plans.get("team")
    return json_response(
        200,
        {
            "team": {"org_id": caller.org_id, "org_slug": caller.org_slug, "role": caller.grants.org_role},
            "seats": plan.limits.get("seats") if plan else None,
            "granted_by": caller.source.value,
        },
    )
