"""What a provider module declares for each webhook family, and how a verified body is read.

A provider module (``clerk.py``, ``dodo.py``) carries everything provider-specific: the wire
models, the mappers from an event to an :class:`~paygate.domain.state.Effect`, and per family of
event types a :class:`WebhookFamily` saying how deliveries are verified, where the event id and
type come from, and which mapper applies each type. The webhook pipeline
(:mod:`paygate.service.webhooks`) knows nothing more of a provider than this.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from paygate.domain.catalog import Catalog
from paygate.domain.state import Effect
from paygate.infra.signature import SignatureError, SignedMessage

__all__ = [
    "Delivery",
    "InvalidEvent",
    "Mapper",
    "SignatureError",
    "SignedMessage",
    "SigningScheme",
    "Verifier",
    "WebhookFamily",
    "WireModel",
    "load_json_object",
    "parse",
]


class WireModel(BaseModel):
    """A provider's JSON exactly as sent: field names as on the wire, unknown fields tolerated."""

    model_config = ConfigDict(extra="allow", frozen=True)


class InvalidEvent(Exception):
    """A verified body that paygate cannot read; it is quarantined for a replay after a fix."""

    def __init__(self, field: str, message: str, event_type: str | None = None) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.event_type = event_type


@dataclass(frozen=True, slots=True)
class Delivery:
    """What the signature vouches for, besides the body."""

    event_id: str
    timestamp_s: int


class Verifier(Protocol):
    def verify(self, body: bytes, headers: Mapping[str, str]) -> SignedMessage:
        """The signed metadata of a verified delivery; :class:`SignatureError` otherwise."""
        ...


class SigningScheme(Protocol):
    def verifier(self, secrets: Sequence[str]) -> Verifier:
        """A verifier for these secrets (several during a rotation); ``ValueError`` if one is unusable."""
        ...


#: Maps a parsed envelope, its delivery and the catalog to the state change it asks for.
Mapper = Callable[[Mapping[str, Any], Delivery, Catalog], Effect]


def signed_message_id(message: SignedMessage, envelope: Mapping[str, Any]) -> str | None:
    """The event id most providers use: the signed message id, the same on every retry."""
    return message.message_id


def envelope_type(envelope: Mapping[str, Any]) -> str | None:
    """The event type most providers use: the envelope's top-level ``type``."""
    event_type = envelope.get("type")
    return event_type if isinstance(event_type, str) and event_type else None


@dataclass(frozen=True)
class WebhookFamily:
    """The event types one function applies. Any other type is kept and answered ``ignored``."""

    name: str
    provider: str
    scheme: SigningScheme
    mappers: Mapping[str, Mapper]
    #: Where the event id (the idempotency key) comes from; ``None`` when the delivery has none.
    event_id: Callable[[SignedMessage, Mapping[str, Any]], str | None] = signed_message_id
    #: Where the event type comes from; ``None`` when the envelope has none.
    event_type: Callable[[Mapping[str, Any]], str | None] = envelope_type

    def decode(self, envelope: Mapping[str, Any], delivery: Delivery, catalog: Catalog) -> tuple[str, Effect | None]:
        """The event type and its effect, or ``None`` when this family does not apply the type."""
        event_type = self.event_type(envelope)
        if event_type is None:
            raise InvalidEvent("type", "the event has no string 'type'")
        mapper = self.mappers.get(event_type)
        if mapper is None:
            return event_type, None
        try:
            return event_type, mapper(envelope, delivery, catalog)
        except InvalidEvent as exc:
            exc.event_type = event_type
            raise


def load_json_object(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidEvent("body", f"not valid JSON ({exc.__class__.__name__})") from None
    except RecursionError:
        raise InvalidEvent("body", "the JSON is nested too deeply to read") from None
    except ValueError:
        # Python refuses integers of more than 4,300 digits (a denial-of-service guard).
        raise InvalidEvent("body", "the JSON holds a number too long to read") from None
    if not isinstance(parsed, dict):
        raise InvalidEvent("body", "the body is not a JSON object")
    return parsed


def parse[M: BaseModel](model: type[M], data: Mapping[str, Any]) -> M:
    """Validate ``data`` against ``model``; a failure names the first offending field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise InvalidEvent(where, first["msg"]) from None
