"""Reads the table, and logs one JSON line. ``?endpoint=`` sends the read to another DynamoDB instead: the
tests give it one that takes the connection and never answers, so the function hangs in its store call."""

import json
import os

import boto3
from botocore.config import Config


def handler(event, context):
    endpoint = (event.get("queryStringParameters") or {}).get("endpoint")
    config = Config(connect_timeout=2, read_timeout=120, retries={"total_max_attempts": 1})
    # Without an endpoint of its own, the client takes AWS_ENDPOINT_URL_DYNAMODB: DynamoDB Local.
    client = boto3.client("dynamodb", endpoint_url=endpoint, config=config)
    print(json.dumps({"level": "INFO", "message": "store read", "path": event["rawPath"]}))
    try:
        found = client.get_item(TableName=os.environ["TABLE_NAME"], Key={"pk": {"S": "stub"}, "sk": {"S": "stub"}})
    except Exception as exc:  # noqa: BLE001 - the hung store's connection is closed by the test
        return {"statusCode": 503, "body": json.dumps({"error": type(exc).__name__})}
    return {"statusCode": 200, "body": json.dumps({"found": "Item" in found, "pid": os.getpid()})}
