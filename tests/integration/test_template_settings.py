"""The template gives every function the settings its code reads."""

from __future__ import annotations

import pytest

from paygate_dev import template as cfn


@pytest.mark.parametrize("function", sorted(cfn.functions()))
def test_every_function_reads_the_deployments_catalog(function):
    # Webhooks map products to plans and announce grants with it; the gate and the account API check
    # the same plans: one PaygateConfigPath for all, or they would disagree.
    assert cfn.functions()[function].environment.get("PAYGATE_CONFIG") == {"Ref": "PaygateConfigPath"}
