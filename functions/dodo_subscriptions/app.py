"""Dodo Payments `subscription.*` webhooks."""

from paygate.providers.dodo import SUBSCRIPTIONS
from paygate.service.entry import webhook_handler

handler = webhook_handler(SUBSCRIPTIONS)
