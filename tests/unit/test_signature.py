"""Signature verification, with headers made by the real ``svix`` library in both header styles."""

import time

import pytest
from svix.webhooks import Webhook as SvixWebhook

from paygate.infra.signature import SignatureError, SignatureVerifier, check_secrets
from paygate_dev.signing import new_secret, signed_headers

BODY = b'{"type":"subscription.created","data":{}}'


@pytest.fixture
def secret() -> str:
    return new_secret()


@pytest.mark.parametrize("style", ["svix", "standard"])
def test_a_body_signed_by_svix_verifies_in_both_header_styles(secret, style):
    headers = signed_headers(secret, BODY, style=style, msg_id="msg_1")
    delivery = SignatureVerifier([secret]).verify(BODY, headers)
    assert delivery.message_id == "msg_1"
    # And the svix library itself agrees with our verdict.
    SvixWebhook(secret).verify(BODY, headers)


def test_wrong_secret_is_refused(secret):
    headers = signed_headers(new_secret(), BODY)
    with pytest.raises(SignatureError, match="no signature matches"):
        SignatureVerifier([secret]).verify(BODY, headers)


def test_a_tampered_body_is_refused(secret):
    headers = signed_headers(secret, BODY)
    with pytest.raises(SignatureError, match="no signature matches"):
        SignatureVerifier([secret]).verify(BODY.replace(b"created", b"updated"), headers)


@pytest.mark.parametrize("offset", [-301, 301])
def test_a_timestamp_outside_five_minutes_is_refused(secret, offset):
    headers = signed_headers(secret, BODY, timestamp=int(time.time()) + offset)
    with pytest.raises(SignatureError, match="outside the 5 minute tolerance"):
        SignatureVerifier([secret]).verify(BODY, headers)


@pytest.mark.parametrize("offset", [-240, 240])
def test_a_timestamp_inside_the_tolerance_is_accepted(secret, offset):
    headers = signed_headers(secret, BODY, timestamp=int(time.time()) + offset)
    assert SignatureVerifier([secret]).verify(BODY, headers).message_id


def test_during_a_rotation_either_secret_verifies():
    old, new = new_secret(), new_secret()
    verifier = SignatureVerifier([new, old])
    for secret in (old, new):
        assert verifier.verify(BODY, signed_headers(secret, BODY)).message_id


def test_several_signatures_in_one_header_any_match_is_enough(secret):
    headers = signed_headers(secret, BODY)
    other = signed_headers(new_secret(), BODY, msg_id=headers["svix-id"], timestamp=int(headers["svix-timestamp"]))
    headers["svix-signature"] = f"{other['svix-signature']} v2,abc {headers['svix-signature']}"
    assert SignatureVerifier([secret]).verify(BODY, headers).message_id == headers["svix-id"]


@pytest.mark.parametrize(
    "signature",
    ["v1", "v1,not base64!!", "garbage", "v1,", ""],
)
def test_a_malformed_signature_header_is_a_signature_error_not_a_crash(secret, signature):
    headers = signed_headers(secret, BODY)
    headers["svix-signature"] = signature
    with pytest.raises(SignatureError):
        SignatureVerifier([secret]).verify(BODY, headers)


def test_missing_headers_are_named(secret):
    with pytest.raises(SignatureError, match="missing signature headers"):
        SignatureVerifier([secret]).verify(BODY, {"content-type": "application/json"})


def test_a_non_integer_timestamp_is_refused(secret):
    headers = signed_headers(secret, BODY)
    headers["svix-timestamp"] = "soon"
    with pytest.raises(SignatureError, match="not an integer"):
        SignatureVerifier([secret]).verify(BODY, headers)


def test_a_body_that_is_not_utf8_is_refused(secret):
    headers = signed_headers(secret, BODY)
    with pytest.raises(SignatureError):
        SignatureVerifier([secret]).verify(b"\xff\xfe" + BODY, headers)


@pytest.mark.parametrize("configured", [[], ["whsec_"], ["whsec_%%%"]])
def test_a_bad_secret_configuration_fails_without_echoing_it(configured):
    with pytest.raises(ValueError) as raised:
        SignatureVerifier(configured)
    for secret in configured:
        assert secret not in str(raised.value) or secret == "whsec_"


@pytest.mark.parametrize(
    ("configured", "message"),
    [
        (["whsec_AA=="], "secret 1 of 1 is 1 bytes long"),  # a one-byte key: forgeable in 256 tries
        (["whsec_AA"], "secret 1 of 1 is not base64"),  # unpadded: only a lenient decoder reads it
        (["whsec_" + "A" * 28], "secret 1 of 1 is 21 bytes long"),
        (["whsec_"], "secret 1 of 1 is 0 bytes long"),
        (["whsec_%%%"], "secret 1 of 1 is not base64"),
        (["whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0\n"], "not base64"),  # lenient decoding dropped the newline
    ],
)
def test_secrets_are_decoded_strictly_and_must_be_long_enough(configured, message):
    with pytest.raises(ValueError, match=message) as raised:
        check_secrets(configured)
    assert all(secret.removeprefix("whsec_") not in str(raised.value) for secret in configured if len(secret) > 6)


def test_a_bad_entry_in_a_rotation_is_named_by_its_position(secret):
    with pytest.raises(ValueError, match="secret 2 of 3") as raised:
        check_secrets([secret, "whsec_", new_secret()])
    assert secret not in str(raised.value)
    check_secrets([secret, new_secret()])  # both good: accepted
    check_secrets(["whsec_" + "A" * 32])  # exactly 24 bytes: the shortest accepted
