"""Answers with the event it got and the environment it ran in."""

import json
import os

NAMES = (
    "TABLE_NAME",
    "GRACE_PERIOD_DAYS",
    "PLAIN_SETTING",
    "WEBHOOK_SECRET",
    "WEBHOOK_SECRET_ARN",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "CLERK_ISSUER",
    "PAYGATE_LOCAL_DIR",
)


def handler(event, context):
    if event.get("rawPath") == "/items/raw":
        return {"no": "statusCode"}
    if event.get("rawPath") == "/items/crash":
        raise ValueError("the function failed")
    env = {name: os.environ.get(name) for name in NAMES}
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json", "x-echo": "yes"},
        "cookies": ["a=1", "b=2"],
        "body": json.dumps({"event": event, "env": env}),
    }
