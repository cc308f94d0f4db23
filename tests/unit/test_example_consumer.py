"""The example consumer in the template says what an application would do with each detail type."""

from paygate_dev.invoke import invoke


def envelope(detail_type: str, **detail) -> dict:
    payer = {"type": "user", "id": "user_1"}
    return {"detail-type": detail_type, "source": "paygate", "detail": {"id": "id-1", "payer": payer, **detail}}


def test_each_detail_type_becomes_an_action():
    changed = envelope(
        "Entitlements Changed",
        plans={"added": ["pro"], "removed": [], "current": ["pro"]},
        features={"added": ["export"], "removed": ["beta"], "current": ["export"]},
        access_windows=[{"plan": "pro", "ends_at": 1_800_000_000_000}],
    )
    assert invoke("ExampleConsumerFunction", changed)["would"] == [
        "send the welcome email for plan pro to user user_1",
        "provision feature export for user user_1",
        "lock feature beta for user user_1",
        "tell user user_1 that plan pro ends at 1800000000000",
    ]
    grace = envelope("Grace Period Started", grace_ends_at=5)
    assert invoke("ExampleConsumerFunction", grace)["would"] == [
        "ask user user_1 to update their payment method before 5"
    ]
    failed = envelope("Payment Failed", amount=2000, currency="USD")
    assert invoke("ExampleConsumerFunction", failed)["would"] == ["email user user_1 that a payment of 2000 USD failed"]
    low = envelope("Credits Low", name="API calls", credit_entitlement_id="cde_1", balance="40")
    assert invoke("ExampleConsumerFunction", low)["would"] == ["warn user user_1 that API calls is low (40)"]
