"""The cold-start baseline: the smallest useful Lambda handler that logs with Powertools and
talks to DynamoDB - what a hand-written webhook or authorizer function starts with."""

import boto3
from aws_lambda_powertools import Logger

logger = Logger(service="baseline")
dynamodb = boto3.client("dynamodb")


def handler(event: dict, context: object) -> dict:
    logger.info("called")
    return {"statusCode": 200}
