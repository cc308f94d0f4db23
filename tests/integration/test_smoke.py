from tests.conftest import sample


def test_a_signed_clerk_event_is_applied_then_a_duplicate(sender, store):
    first = sender.post("ClerkSubscriptionsFunction", sample("clerk/subscription.active.json"), msg_id="msg_1")
    again = sender.post("ClerkSubscriptionsFunction", sample("clerk/subscription.active.json"), msg_id="msg_1")
    assert first.status == 200 and first.body["outcome"] == "applied"
    assert again.status == 200 and again.body["outcome"] == "duplicate"
    kinds = sorted(r["kind"] for r in store.payer_records("user:user_2pQk8sV1aZ3mN7xR4tY6uW9bC0d"))
    assert kinds == ["item", "item", "subscription"]
