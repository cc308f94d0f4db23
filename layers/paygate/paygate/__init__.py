"""paygate: verified billing webhooks, a faithful subscription store, and a gate for premium routes.

The package is layered (see README): ``domain`` is pure Python, ``providers`` maps each
provider's wire format to domain changes, ``infra`` talks to AWS, ``service`` wires them together
for the Lambda entry points under ``functions/``.
"""
