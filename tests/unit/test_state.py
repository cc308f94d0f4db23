import itertools

from paygate.domain.state import Payer, PayerKind, version_key


def test_versions_order_by_change_time_then_event_time_then_id():
    ordered = [
        version_key(1_000, 5_000, "msg_b"),
        version_key(2_000, 1_000, "msg_a"),
        version_key(2_000, 3_000, "msg_a"),
        version_key(2_000, 3_000, "msg_b"),
        version_key(10_000_000_000_000, 0, "msg_a"),
    ]
    for earlier, later in itertools.pairwise(ordered):
        assert earlier < later


def test_payer_keys_round_trip():
    for payer in (
        Payer(PayerKind.USER, "user_1"),
        Payer(PayerKind.ORGANIZATION, "org_1"),
        Payer(PayerKind.CUSTOMER, "cus_1"),
    ):
        assert Payer.from_key(payer.key) == payer
