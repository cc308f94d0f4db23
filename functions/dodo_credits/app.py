"""Dodo Payments `credit.*` webhooks."""

from paygate.providers.dodo import CREDITS
from paygate.service.entry import webhook_handler

handler = webhook_handler(CREDITS)
