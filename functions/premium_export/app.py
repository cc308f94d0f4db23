"""`GET /pro/export`, gated by feature: `feature = "export"` (a user's or an organization's plan)."""

import csv
import io
from typing import Any

from paygate.http import error_response
from paygate.service.context import caller_from_event


def handler(event: dict, context: Any) -> dict:
    caller = caller_from_event(event)
    if caller is None:
        return error_response(401, "unauthenticated", "this route is served behind the paygate authorizer")
    # Whose data is exported follows the grant: the organization's when its plan has the feature.
    owner = caller.org_id if caller.org_id and caller.has(feature="org:export") else caller.user_id
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["owner", "feature", "granted_by"])
    for feature in caller.feature_slugs():
        writer.writerow([owner, feature, caller.source.value])
    return {
        "statusCode": 200,
        "headers": {"content-type": "text/csv", "content-disposition": 'attachment; filename="export.csv"'},
        "body": out.getvalue(),
    }
