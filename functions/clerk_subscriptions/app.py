"""Clerk Billing `subscription.*` and `subscriptionItem.*` webhooks."""

from paygate.providers.clerk import SUBSCRIPTIONS
from paygate.service.entry import webhook_handler

handler = webhook_handler(SUBSCRIPTIONS)
