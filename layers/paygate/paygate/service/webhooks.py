"""The webhook pipeline every provider function runs: verify, parse, apply, answer.

1. **Verify** the signature over the raw bytes before anything else (401 otherwise, 413 first if
   the body is over the limit). Nothing from an unverified request is parsed, stored or logged.
2. **Parse** into the provider's wire model. A verified body that cannot be read is kept in
   quarantine and answered 400 naming the field.
3. **Apply** the event's effect and record the event in one transaction (``applied``,
   ``duplicate`` or ``stale``); a type this family does not apply is kept as ``ignored``.
4. **Answer** 200 with the outcome. A storage fault answers 503 so the provider retries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from paygate import settings
from paygate.clock import now_ms
from paygate.domain.state import Outcome
from paygate.http import error_response, json_response, request_body, request_headers
from paygate.infra.signature import SignatureError, SignatureVerifier
from paygate.infra.store import InboxEntry, Store, StoreUnavailable
from paygate.providers.base import Delivery, InvalidEvent, WebhookFamily


@dataclass(frozen=True, slots=True)
class WebhookResult:
    response: dict
    outcome: Outcome | None = None
    event_id: str | None = None
    event_type: str | None = None
    #: Why we failed (5xx only), for the log; never shown to the caller.
    fault: str | None = None


class WebhookService:
    def __init__(
        self,
        family: WebhookFamily,
        store: Store,
        secrets: Callable[[], Sequence[str]],
        clock: Callable[[], int] = now_ms,
        max_body_bytes: int = settings.MAX_WEBHOOK_BODY_BYTES,
    ) -> None:
        self.family = family
        self.store = store
        self._secrets = secrets
        self._clock = clock
        self.max_body_bytes = max_body_bytes
        self._verifier: tuple[tuple[str, ...], SignatureVerifier] | None = None

    def handle(self, event: dict[str, Any]) -> WebhookResult:
        body = request_body(event)
        if len(body) > self.max_body_bytes:
            return WebhookResult(error_response(413, "body_too_large", f"the body exceeds {self.max_body_bytes} bytes"))
        try:
            verifier = self._current_verifier()
        except ValueError as exc:
            return WebhookResult(error_response(500, "misconfigured", str(exc)), fault=str(exc))
        try:
            delivery = verifier.verify(body, request_headers(event))
        except SignatureError as exc:
            return WebhookResult(error_response(401, "invalid_signature", exc.reason))

        entry = InboxEntry(
            family=self.family.name,
            provider=self.family.provider,
            event_id=delivery.event_id,
            body=body.decode("utf-8", errors="replace"),
            received_at=self._clock(),
        )
        try:
            return self._record(entry, body, Delivery(delivery.event_id, delivery.timestamp_s))
        except StoreUnavailable as exc:
            return WebhookResult(
                error_response(503, "store_unavailable", "the event could not be recorded; retry later"),
                event_id=delivery.event_id,
                fault=f"{exc} ({exc.__cause__!r})" if exc.__cause__ else str(exc),
            )

    def _record(self, entry: InboxEntry, body: bytes, delivery: Delivery) -> WebhookResult:
        try:
            event_type, effect = self.family.decode(body, delivery)
        except InvalidEvent as exc:
            kept = self.store.keep(
                replace(entry, event_type=exc.event_type, error=f"{exc.field}: {exc.message}"), Outcome.QUARANTINED
            )
            if kept is Outcome.DUPLICATE:
                return self._received(entry.event_id, exc.event_type, kept)
            response = error_response(
                400, "invalid_event", exc.message, field=exc.field, event_id=entry.event_id, outcome=kept.value
            )
            return WebhookResult(response, kept, entry.event_id, exc.event_type)

        entry = replace(entry, event_type=event_type)
        if effect is None:
            outcome = self.store.keep(entry, Outcome.IGNORED)
        else:
            outcome = self.store.apply(entry, effect)
        return self._received(entry.event_id, event_type, outcome)

    @staticmethod
    def _received(event_id: str, event_type: str | None, outcome: Outcome) -> WebhookResult:
        body = {"received": True, "event_id": event_id, "outcome": outcome.value}
        return WebhookResult(json_response(200, body), outcome, event_id, event_type)

    def _current_verifier(self) -> SignatureVerifier:
        # Rebuilt only when the secrets change (a rotation), not on every request.
        secrets = tuple(self._secrets())
        if self._verifier is None or self._verifier[0] != secrets:
            self._verifier = (secrets, SignatureVerifier(secrets))
        return self._verifier[1]
