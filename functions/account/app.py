"""`GET /me/subscription`: the caller's plans, features, subscriptions and credit balances."""

from paygate.service.account import account_handler

handler = account_handler()
