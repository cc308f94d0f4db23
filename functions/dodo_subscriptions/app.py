"""Dodo Payments `subscription.*` webhooks."""

from paygate.config import load_catalog
from paygate.providers.dodo import SUBSCRIPTIONS
from paygate.service.entry import webhook_handler

# Products map to plans through the catalog: a bad catalog fails the cold start, naming the entry.
load_catalog()

handler = webhook_handler(SUBSCRIPTIONS)
