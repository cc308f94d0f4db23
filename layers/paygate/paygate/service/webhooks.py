"""The webhook pipeline every provider function runs: verify, parse, apply, answer.

1. **Verify** the signature over the raw bytes before anything else (401 otherwise, 413 first if
   the body is over the limit), with the family's signing scheme. Nothing from an unverified
   request is parsed, stored or logged.
2. **Parse** into the provider's wire model. A verified body that cannot be read is kept in
   quarantine and answered 400 naming the field; one that names another payer for a provider id
   already linked to a payer is kept in quarantine and answered 409.
3. **Apply** the event's effect and record the event in one atomic write (``applied``,
   ``duplicate`` or ``stale``); a type this family does not apply is kept as ``ignored``.
4. **Answer** 200 with the outcome. A storage fault answers 503 so the provider retries.

Everything provider-specific comes from the :class:`~paygate.providers.base.WebhookFamily`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from paygate.clock import Clock, system_clock
from paygate.domain.catalog import Catalog
from paygate.domain.state import Outcome
from paygate.http import error_response, json_response, request_body, request_headers
from paygate.providers.base import Delivery, InvalidEvent, SignatureError, Verifier, WebhookFamily, load_json_object
from paygate.service.apply import ApplyService, PayerConflict
from paygate.service.layout import InboxEntry
from paygate.service.ports import StoreUnavailable
from paygate.settings import MAX_WEBHOOK_BODY_BYTES


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
        applier: ApplyService,
        catalog: Catalog,
        secrets: Callable[[], Sequence[str]],
        clock: Clock = system_clock,
        max_body_bytes: int = MAX_WEBHOOK_BODY_BYTES,
    ) -> None:
        self.family = family
        self.applier = applier
        self.catalog = catalog
        self._secrets = secrets
        self._clock = clock
        self.max_body_bytes = max_body_bytes
        self._verifier: tuple[tuple[str, ...], Verifier] | None = None

    def handle(self, event: Mapping[str, Any]) -> WebhookResult:
        body = request_body(event)
        if len(body) > self.max_body_bytes:
            return WebhookResult(error_response(413, "body_too_large", f"the body exceeds {self.max_body_bytes} bytes"))
        try:
            verifier = self._current_verifier()
        except ValueError as exc:
            return WebhookResult(error_response(500, "misconfigured", str(exc)), fault=str(exc))
        try:
            message = verifier.verify(body, request_headers(event))
        except SignatureError as exc:
            return WebhookResult(error_response(401, "invalid_signature", exc.reason))

        try:
            envelope: dict[str, Any] | InvalidEvent = load_json_object(body)
        except InvalidEvent as exc:
            envelope = exc
        event_id = (
            (None if isinstance(envelope, InvalidEvent) else self.family.event_id(message, envelope))
            or message.message_id
            or f"sha256:{hashlib.sha256(body).hexdigest()}"
        )
        entry = InboxEntry(
            family=self.family.name,
            provider=self.family.provider,
            event_id=event_id,
            body=body.decode("utf-8", errors="replace"),
            received_at=self._clock(),
        )
        try:
            return record_verified(
                self.family, self.applier, self.catalog, entry, envelope, Delivery(event_id, message.timestamp_s)
            )
        except StoreUnavailable as exc:
            return WebhookResult(
                error_response(503, "store_unavailable", "the event could not be recorded; retry later"),
                event_id=event_id,
                fault=f"{exc} ({exc.__cause__!r})" if exc.__cause__ else str(exc),
            )

    def _current_verifier(self) -> Verifier:
        # Rebuilt only when the secrets change (a rotation), not on every request.
        secrets = tuple(self._secrets())
        if self._verifier is None or self._verifier[0] != secrets:
            self._verifier = (secrets, self.family.scheme.verifier(secrets))
        return self._verifier[1]


def record_verified(
    family: WebhookFamily,
    applier: ApplyService,
    catalog: Catalog,
    entry: InboxEntry,
    envelope: dict[str, Any] | InvalidEvent,
    delivery: Delivery,
) -> WebhookResult:
    """Steps 2 to 4 for a body whose signature was verified: parse, apply or keep, answer. A redelivery
    and an operator's replay (:mod:`paygate.service.replay`) of a stored body both come through here."""
    try:
        if isinstance(envelope, InvalidEvent):
            raise envelope
        event_type, effect = family.decode(envelope, delivery, catalog)
    except InvalidEvent as exc:
        kept = applier.keep(
            replace(entry, event_type=exc.event_type, error=f"{exc.field}: {exc.message}"), Outcome.QUARANTINED
        )
        if kept is Outcome.DUPLICATE:
            return _received(entry.event_id, exc.event_type, kept)
        response = error_response(
            400, "invalid_event", exc.message, field=exc.field, event_id=entry.event_id, outcome=kept.value
        )
        return WebhookResult(response, kept, entry.event_id, exc.event_type)

    entry = replace(entry, event_type=event_type)
    try:
        outcome = applier.keep(entry, Outcome.IGNORED) if effect is None else applier.apply(entry, effect)
    except PayerConflict as exc:
        # Kept in quarantine with the reason; the link stays as it is until an operator decides.
        kept = applier.keep(replace(entry, error=f"payer: {exc}"), Outcome.QUARANTINED)
        if kept is Outcome.DUPLICATE:
            return _received(entry.event_id, event_type, kept)
        response = error_response(409, "payer_conflict", str(exc), event_id=entry.event_id, outcome=kept.value)
        return WebhookResult(response, kept, entry.event_id, event_type)
    return _received(entry.event_id, event_type, outcome)


def _received(event_id: str, event_type: str | None, outcome: Outcome) -> WebhookResult:
    body = {"received": True, "event_id": event_id, "outcome": outcome.value}
    return WebhookResult(json_response(200, body), outcome, event_id, event_type)
