"""Clerk Billing `paymentAttempt.*` webhooks."""

from paygate.providers.clerk import PAYMENT_ATTEMPTS
from paygate.service.entry import webhook_handler

handler = webhook_handler(PAYMENT_ATTEMPTS)
