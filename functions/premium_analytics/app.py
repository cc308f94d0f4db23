"""`GET /pro/analytics`, gated by feature: `feature = "analytics"`."""

from typing import Any

from paygate.http import error_response, json_response
from paygate.service.context import caller_from_event


def handler(event: dict, context: Any) -> dict:
    caller = caller_from_event(event)
    if caller is None:
        return error_response(401, "unauthenticated", "this route is served behind the paygate authorizer")
    # has() inside a route, for what the gate leaves open: whose analytics to show.
    scope = "organization" if caller.has(feature="org:analytics") else "user"
    subject = caller.org_id if scope == "organization" else caller.user_id
    return json_response(200, {"analytics": {"scope": scope, "subject": subject}, "granted_by": caller.source.value})
