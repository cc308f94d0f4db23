"""Every minute: announces the access windows that end (a period after a cancellation, a grace period)."""

from paygate.service.sweeper import sweeper_handler

handler = sweeper_handler()
