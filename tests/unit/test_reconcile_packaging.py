"""The providers' SDKs ship with the reconcile function only, never with the shared layer."""

from __future__ import annotations

import subprocess
import sys

from paygate_dev import LAYER_DIR, ROOT


def _pins(path) -> dict[str, str]:
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return dict(line.split("==") for line in lines if "==" in line)


def test_the_sdks_are_pinned_for_the_reconcile_function_and_not_in_the_layer():
    layer = _pins(LAYER_DIR / "requirements.txt")
    function = _pins(ROOT / "functions" / "reconcile" / "requirements.txt")
    dev = _pins(ROOT / "requirements-dev.txt")
    assert {"clerk-backend-api", "dodopayments"} & set(layer) == set()
    assert function == {k: dev[k] for k in ("clerk-backend-api", "dodopayments")}


def test_the_layer_and_the_reconcile_handler_load_without_the_sdks():
    # A fresh interpreter where the SDKs cannot be imported: every other function's code must not need them,
    # and the reconcile function imports them only when it reads a provider.
    code = f"""
import importlib, pkgutil, sys
sys.modules["clerk_backend_api"] = None
sys.modules["dodopayments"] = None
sys.path.insert(0, {str(LAYER_DIR)!r})
import paygate
for module in pkgutil.walk_packages(paygate.__path__, "paygate."):
    if not module.name.endswith("_api"):
        importlib.import_module(module.name)
sys.path.insert(0, {str(ROOT / "functions" / "reconcile")!r})
import app
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=ROOT)  # noqa: S603
    assert done.stdout.strip() == "ok", done.stderr
