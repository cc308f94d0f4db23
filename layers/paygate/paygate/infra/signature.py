"""Webhook signature verification: the Standard Webhooks scheme (Svix).

Clerk signs with ``svix-*`` headers, Dodo Payments with ``webhook-*`` headers; both are the same
scheme. We verify with ``standardwebhooks`` - the code ``svix.Webhook.verify`` delegates to - so a
function does not pay the Svix API client's import cost on a cold start. The tests sign with the
real ``svix`` library to prove the two agree.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook, WebhookVerificationError

#: The scheme's own tolerance, enforced by ``standardwebhooks``; stated here for the docs and errors.
TIMESTAMP_TOLERANCE_SECONDS = 5 * 60

#: Svix and Standard Webhooks generate 24- or 32-byte keys; anything shorter is guessable.
MIN_SECRET_BYTES = 24
SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret

SVIX_HEADERS = ("svix-id", "svix-timestamp", "svix-signature")
STANDARD_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


class SignatureError(Exception):
    """The request is not a verified webhook; ``reason`` is safe to return to the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SignedMessage:
    """A verified delivery's signed metadata: the scheme's message id (if it has one) and time."""

    message_id: str | None
    timestamp_s: int


@dataclass(frozen=True, slots=True)
class StandardWebhooks:
    """The Standard Webhooks scheme, read from either header style (``svix-*`` or ``webhook-*``)."""

    header_styles: tuple[tuple[str, str, str], ...] = (SVIX_HEADERS, STANDARD_HEADERS)

    def verifier(self, secrets: Sequence[str]) -> SignatureVerifier:
        return SignatureVerifier(secrets, self.header_styles)


def check_secrets(secrets: Sequence[str]) -> None:
    """Refuse a configuration a delivery could not be safely verified with: no secret, or one that is not
    strict base64 (after ``whsec_``) of at least :data:`MIN_SECRET_BYTES` bytes. The message names the
    entry's position, never its value."""
    if not secrets:
        raise ValueError("no webhook signing secret is configured")
    for position, secret in enumerate(secrets, start=1):
        where = f"webhook signing secret {position} of {len(secrets)}"
        try:
            key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"{where} is not base64 after 'whsec_'") from None
        if len(key) < MIN_SECRET_BYTES:
            raise ValueError(f"{where} is {len(key)} bytes long; at least {MIN_SECRET_BYTES} are required")


class SignatureVerifier:
    """Verifies a body against every configured secret, so a secret can be rotated without downtime."""

    def __init__(
        self, secrets: Sequence[str], header_styles: tuple[tuple[str, str, str], ...] = (SVIX_HEADERS, STANDARD_HEADERS)
    ) -> None:
        check_secrets(secrets)
        try:
            self._webhooks = tuple(Webhook(secret) for secret in secrets)
        except (EmptyWebhookSecretError, binascii.Error, ValueError) as exc:
            # The message must not echo the secret.
            raise ValueError("a configured webhook secret is not a valid whsec_ value") from exc
        self._header_styles = header_styles

    def verify(self, body: bytes, headers: Mapping[str, str]) -> SignedMessage:
        msg_id, msg_ts, msg_sig = self._signing_headers(headers)
        try:
            timestamp_s = int(msg_ts)
        except ValueError:
            raise SignatureError("the signature timestamp header is not an integer") from None
        scheme_headers = {"webhook-id": msg_id, "webhook-timestamp": msg_ts, "webhook-signature": msg_sig}
        failure = "no signature matches any configured secret"
        for webhook in self._webhooks:
            try:
                webhook.verify(body, scheme_headers, json_parse=False)
                return SignedMessage(message_id=msg_id, timestamp_s=timestamp_s)
            except WebhookVerificationError as exc:
                if "timestamp" in str(exc):
                    # Same for every secret: say so plainly, do not try the others.
                    raise SignatureError(
                        f"the signature timestamp is outside the {TIMESTAMP_TOLERANCE_SECONDS // 60} minute tolerance"
                    ) from None
            except (ValueError, binascii.Error):
                # A malformed signature header ("v1" without a comma, bad base64, non UTF-8 body).
                failure = "the signature header or body is malformed"
        raise SignatureError(failure)

    def _signing_headers(self, headers: Mapping[str, str]) -> tuple[str, str, str]:
        lowered = {k.lower(): v for k, v in headers.items()}
        for id_name, ts_name, sig_name in self._header_styles:
            values = (lowered.get(id_name), lowered.get(ts_name), lowered.get(sig_name))
            if all(values):
                return values  # type: ignore[return-value]
        expected = " or ".join("/".join(style) for style in self._header_styles)
        raise SignatureError(f"missing signature headers: expected {expected}")
