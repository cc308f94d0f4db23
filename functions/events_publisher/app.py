"""Publishes entitlement events: the table's stream (outbox items only) onto paygate's EventBridge bus."""

from paygate.service.publisher import publisher_handler

handler = publisher_handler()
