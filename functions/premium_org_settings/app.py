"""`PUT /org/settings`, gated by permission: `permission = "org:settings:manage"`.

The permission only exists while the organization's plan has the `settings` feature (Clerk ties
permissions to plan features), so a downgrade closes this route without a code change.
"""

import json
from typing import Any

from paygate.http import error_response, json_response, request_body
from paygate.service.context import caller_from_event

MAX_BODY_BYTES = 8 * 1024
MAX_NAME_LENGTH = 100


def handler(event: dict, context: Any) -> dict:
    caller = caller_from_event(event)
    if caller is None or caller.org_id is None:
        return error_response(401, "unauthenticated", "this route is served behind the paygate authorizer")
    body = request_body(event)
    if len(body) > MAX_BODY_BYTES:
        return error_response(413, "body_too_large", f"the body exceeds {MAX_BODY_BYTES} bytes")
    try:
        settings = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return error_response(400, "invalid_json", "the body is not valid JSON")
    if not isinstance(settings, dict):
        return error_response(400, "invalid_settings", "the body must be a JSON object", field="body")
    unknown = sorted(set(settings) - {"display_name"})
    if unknown:
        return error_response(400, "invalid_settings", f"unknown setting(s) {unknown}", field=unknown[0])
    name = settings.get("display_name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_LENGTH:
        message = f"display_name must be a non-empty string of at most {MAX_NAME_LENGTH} characters"
        return error_response(400, "invalid_settings", message, field="display_name")
    # An application would save the settings here; the example answers what it would save.
    return json_response(
        200,
        {"org_id": caller.org_id, "settings": {"display_name": name.strip()}, "updated_by": caller.user_id},
    )
