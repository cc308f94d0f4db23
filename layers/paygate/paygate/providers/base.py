"""What every provider adapter shares: a family of event types and how a verified body is read."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from paygate.domain.state import Effect


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


#: Maps a parsed envelope (a dict) and its delivery to the state change it asks for.
Mapper = Callable[[Mapping[str, Any], Delivery], Effect]


@dataclass(frozen=True)
class WebhookFamily:
    """The event types one function applies. Any other type is kept and answered ``ignored``."""

    name: str
    provider: str
    mappers: Mapping[str, Mapper]

    def decode(self, body: bytes, delivery: Delivery) -> tuple[str, Effect | None]:
        """The event type and its effect, or ``None`` when this family does not apply the type."""
        envelope = load_json_object(body)
        event_type = envelope.get("type")
        if not isinstance(event_type, str) or not event_type:
            raise InvalidEvent("type", "the event has no string 'type'")
        mapper = self.mappers.get(event_type)
        if mapper is None:
            return event_type, None
        try:
            return event_type, mapper(envelope, delivery)
        except InvalidEvent as exc:
            exc.event_type = event_type
            raise


def load_json_object(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidEvent("body", f"not valid JSON ({exc.__class__.__name__})") from None
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
