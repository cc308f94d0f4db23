"""`GET /pro/dashboard`, gated by plan: `any = [{ plan = "pro" }, { plan = "org:team" }]` in paygate.toml.

The pattern every premium route follows: the authorizer has already decided, so the handler only
reads who the caller is and what they were granted from the authorizer context.
"""

from typing import Any

from paygate.http import error_response, json_response
from paygate.infra.catalog_file import load_catalog
from paygate.service.context import caller_from_event
from paygate.settings import catalog_path


def handler(event: dict, context: Any) -> dict:
    caller = caller_from_event(event)
    if caller is None:
        return error_response(401, "unauthenticated", "this route is served behind the paygate authorizer")
    catalog = load_catalog(catalog_path())
    # The most generous limit among the caller's plans, as the catalog declares them.
    limits: dict[str, int] = {}
    for slug in caller.plan_slugs():
        plan = catalog.plans.get(slug)
        for name, value in (plan.limits if plan else {}).items():
            limits[name] = max(value, limits.get(name, value))
    return json_response(
        200,
        {
            "dashboard": {"user_id": caller.user_id, "org_id": caller.org_id, "plans": caller.plan_slugs()},
            "limits": limits,
            "granted_by": caller.source.value,
        },
    )
