"""The template gives every function the settings its code reads."""

from __future__ import annotations

import re

import pytest

from paygate.settings import is_secure_url
from paygate_dev import template as cfn


@pytest.mark.parametrize("function", sorted(cfn.functions()))
def test_every_function_reads_the_deployments_catalog(function):
    # Webhooks map products to plans and announce grants with it; the gate and the account API check
    # the same plans: one PaygateConfigPath for all, or they would disagree.
    assert cfn.functions()[function].environment.get("PAYGATE_CONFIG") == {"Ref": "PaygateConfigPath"}


URLS = [
    "https://clerk.example.com/.well-known/jwks.json",
    "http://127.0.0.1:8123/.well-known/jwks.json",
    "http://localhost:8123",
    "http://[::1]/jwks",
    "http://clerk.example.com/.well-known/jwks.json",
    "http://localhost.example.com/jwks",
    "http://127.0.0.1.nip.io/jwks",
    "http://127.0.0.1@example.com/jwks",
    "http://localhost:x@evil.example/jwks",
    "http://127.0.0.1:@evil.example:8080/",
    "http://localhost:8123/@evil.example",
    "ftp://clerk.example.com/jwks",
]


@pytest.mark.parametrize("parameter", ["ClerkJwksUrl", "ClerkApiUrl", "DodoPaymentsBaseUrl"])
def test_url_parameters_refuse_what_the_functions_would_refuse(parameter):
    pattern = cfn.load()["Parameters"][parameter]["AllowedPattern"]
    for url in URLS:
        assert bool(re.fullmatch(pattern, url)) is is_secure_url(url), url
