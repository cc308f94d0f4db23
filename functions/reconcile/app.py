"""Reconcile with the providers' APIs: the daily schedule and `POST /me/subscription/refresh`."""

from paygate.service.reconcile_entry import reconcile_handler

handler = reconcile_handler()
