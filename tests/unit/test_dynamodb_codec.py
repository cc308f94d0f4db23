"""The store's DynamoDB codec writes exactly what boto3's TypeSerializer writes, and reads it back.

boto3 is the oracle here (the layer itself no longer imports it, see paygate/infra/dynamodb.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal

import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from paygate.infra.dynamodb import from_attribute, from_item, to_attribute, to_item
from paygate_dev import LAYER_DIR, ROOT

RECORD = {
    "pk": "PAYER#user:user_1",
    "sk": "item#citem_1",
    "version": 1_760_000_000_123,
    "amount": 0,
    "negative": -2500,
    "free_trial": False,
    "canceled_at": None,
    "plan": {"slug": "pro", "features": ["export", "analytics"], "limits": {"seats": 5}},
    "empty_map": {},
    "empty_list": [],
    "raw": b"\x00\xffbody",
    "text": "naïve ✓",
}


def test_items_match_boto3_type_serializer():
    oracle = TypeSerializer()
    assert to_item(RECORD) == {k: oracle.serialize(v) for k, v in RECORD.items()}


def test_round_trip_gives_back_plain_integers():
    back = from_item(to_item(RECORD))
    assert back == RECORD
    assert type(back["version"]) is int
    assert type(back["plan"]["limits"]["seats"]) is int


def test_reads_what_boto3_would_read():
    oracle = TypeDeserializer()
    wire = {
        "n": {"N": "12.50"},
        "ss": {"SS": ["a", "b"]},
        "ns": {"NS": ["1", "2.5"]},
        "nested": {"L": [{"M": {"x": {"N": "7"}}}, {"NULL": True}, {"BOOL": True}]},
    }
    ours = from_item(wire)
    assert ours["n"] == oracle.deserialize(wire["n"]) == Decimal("12.5")
    assert ours["ss"] == oracle.deserialize(wire["ss"])
    assert ours["ns"] == {1, Decimal("2.5")}
    assert ours["nested"] == [{"x": 7}, None, True]


@pytest.mark.parametrize("value", [1.5, {1, 2}, object()])
def test_values_paygate_never_stores_are_refused(value):
    with pytest.raises(TypeError):
        to_attribute(value)


def test_unknown_attribute_type_is_refused():
    with pytest.raises(TypeError, match="attribute type"):
        from_attribute({"XX": "?"})


def test_webhook_functions_do_not_import_boto3():
    # boto3's import (s3transfer, multiprocessing) is the cold start this codec exists to avoid.
    script = (
        f"import sys, json; sys.path[:0] = [{str(LAYER_DIR)!r}, {str(ROOT / 'functions' / 'clerk_subscriptions')!r}]\n"
        "import app\n"
        "print(json.dumps({'boto3': 'boto3' in sys.modules, 'botocore': 'botocore.client' in sys.modules}))"
    )
    env = {"PATH": "/usr/bin:/bin", "AWS_REGION": "us-east-1", "TABLE_NAME": "unused"}
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"boto3": False, "botocore": True}
