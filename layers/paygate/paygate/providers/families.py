"""Every webhook family paygate deploys, by the name its inbox items carry (``clerk.subscriptions`` ...).

The webhook functions import only their own family; the operator tools (replay, inspection) read
stored events of any family, so they find it here. A new provider's families are added to the tuple.
"""

from __future__ import annotations

from paygate.providers import clerk, dodo
from paygate.providers.base import WebhookFamily

FAMILIES: dict[str, WebhookFamily] = {
    family.name: family
    for family in (clerk.SUBSCRIPTIONS, clerk.PAYMENT_ATTEMPTS, dodo.SUBSCRIPTIONS, dodo.PAYMENTS, dodo.CREDITS)
}
