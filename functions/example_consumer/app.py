"""An example subscriber to paygate's events: logs what an application would do with each one.

Copy it as a start. EventBridge delivers at least once and does not promise order: deduplicate on
``detail.id`` and, per payer, ignore an event whose ``detail.sequence`` is lower than one already
handled (docs/events.md).
"""

from typing import Any

from aws_lambda_powertools import Logger

logger = Logger(service="paygate-example-consumer")


def actions(event: dict[str, Any]) -> list[str]:
    """What an application would do for one event (EventBridge's envelope: ``detail-type``, ``detail``)."""
    detail = event["detail"]
    who = f"{detail['payer']['type']} {detail['payer']['id']}"
    match event["detail-type"]:
        case "Entitlements Changed":
            done = [f"send the welcome email for plan {p} to {who}" for p in detail["plans"]["added"]]
            done += [f"provision feature {f} for {who}" for f in detail["features"]["added"]]
            done += [f"lock feature {f} for {who}" for f in detail["features"]["removed"]]
            ending = [w for w in detail["access_windows"] if w["ends_at"] is not None]
            done += [f"tell {who} that plan {w['plan']} ends at {w['ends_at']}" for w in ending]
            return done
        case "Grace Period Started":
            return [f"ask {who} to update their payment method before {detail['grace_ends_at']}"]
        case "Payment Failed":
            return [f"email {who} that a payment of {detail['amount']} {detail['currency']} failed"]
        case "Credits Low":
            return [f"warn {who} that {detail['name'] or detail['credit_entitlement_id']} is low ({detail['balance']})"]
    return []


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    done = actions(event)
    logger.info(
        "paygate event",
        extra={"detail_type": event["detail-type"], "id": event["detail"]["id"], "would": done},
    )
    return {"id": event["detail"]["id"], "would": done}
