"""Signs webhook bodies as Clerk (``svix-*`` headers) and Dodo Payments (``webhook-*``) do."""

from __future__ import annotations

import base64
import os
import secrets
import time
from datetime import UTC, datetime

from svix.webhooks import Webhook


def new_secret() -> str:
    """A fresh signing secret in the providers' ``whsec_<base64>`` format."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def signed_headers(
    secret: str, body: bytes | str, *, style: str = "svix", msg_id: str | None = None, timestamp: int | None = None
) -> dict[str, str]:
    """Headers that sign ``body`` with ``secret``, made by the real ``svix`` library."""
    payload = body.decode() if isinstance(body, bytes) else body
    msg_id = msg_id or f"msg_{secrets.token_hex(12)}"
    ts = int(time.time()) if timestamp is None else timestamp
    signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(ts, tz=UTC), payload)
    prefix = {"svix": "svix", "standard": "webhook"}[style]
    return {
        f"{prefix}-id": msg_id,
        f"{prefix}-timestamp": str(ts),
        f"{prefix}-signature": signature,
        "content-type": "application/json",
    }


def secret_from_env(name: str = "WEBHOOK_SECRET") -> str:
    """The first configured secret: the one a sender signs with during a rotation."""
    return os.environ[name].split(",")[0].strip()
