"""Dodo Payments `payment.*`, `refund.*` and `dispute.*` webhooks."""

from paygate.providers.dodo import PAYMENTS
from paygate.service.entry import webhook_handler

handler = webhook_handler(PAYMENTS)
