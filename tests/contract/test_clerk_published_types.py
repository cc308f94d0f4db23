"""Every Clerk sample against Clerk's own published types, and Clerk's event list against what paygate maps.

* The TypeScript types of ``@clerk/backend`` (the npm package, pinned in package.json): each sample in
  ``events/clerk/`` is type-checked with ``tsc`` as the ``WebhookEvent`` of its ``type``. Properties the
  type does not declare are allowed (Clerk's OpenAPI webhooks spec declares fields the TypeScript types
  lack; the samples carry both); every declared property must be there, with its type.
* The ``clerk-backend-api`` models (the Python SDK) where they describe the same object: money amounts
  and payers.
* Drift: every Billing event type the ``@clerk/backend`` union defines is mapped by a family, and every
  type paygate maps is either in that union or a documented early spelling.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from paygate.providers.clerk import EARLY_SPELLINGS, PAYMENT_ATTEMPTS, SUBSCRIPTIONS
from paygate_dev import ROOT
from tests.conftest import sample_json, sample_names

TSC = ROOT / "node_modules" / ".bin" / "tsc"
CLERK_BACKEND = ROOT / "node_modules" / "@clerk" / "backend"
WEBHOOK_TYPES = CLERK_BACKEND / "dist" / "api" / "resources" / "Webhooks.d.ts"
BILLING_TYPE = re.compile(r"'((?:subscription|subscriptionItem|paymentAttempt)\.[A-Za-z_]+)'")

_CHECK = """import type {{ WebhookEvent }} from "@clerk/backend/webhooks";
// Undeclared properties are allowed; declared ones must be present, with their types. Where the two
// sources disagree on null (the spec: required and nullable; TypeScript: optional, or a plain string
// for a subscription's payment ids), null is accepted, as the spec's own examples send it.
type SpecNullable = "latest_payment_id" | "payment_source_id";
type Field<T, K extends keyof T> = undefined extends T[K] ? Open<T[K]> | null
  : K extends SpecNullable ? Open<T[K]> | null : Open<T[K]>;
type Open<T> = T extends readonly (infer U)[] ? Open<U>[]
  : T extends object ? {{ [K in keyof T]: Field<T, K> }} & {{ [extra: string]: unknown }} : T;
type Of<E, K> = E extends {{ type: infer T }} ? (K extends T ? Open<E> & {{ type: K }} : never) : never;
type Event<K extends string> = Of<WebhookEvent, K>;
{checks}
"""


_FIRST_LINE = _CHECK.count("\n", 0, _CHECK.index("{checks}")) + 1


def published_billing_types() -> set[str]:
    return set(BILLING_TYPE.findall(WEBHOOK_TYPES.read_text()))


def test_the_package_is_the_pinned_version():
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["@clerk/backend"]
    assert json.loads((CLERK_BACKEND / "package.json").read_text())["version"] == pinned


def test_every_clerk_sample_has_the_published_type_of_its_event(tmp_path):
    names = sample_names("clerk")
    lines = [
        f"const sample_{i}: Event<{json.dumps(sample_json(n)['type'])}> = {json.dumps(sample_json(n))};"
        for i, n in enumerate(names)
    ]
    (tmp_path / "check.ts").write_text(_CHECK.format(checks="\n".join(lines)))
    (tmp_path / "tsconfig.json").write_text(
        json.dumps(
            {
                "compilerOptions": {
                    "strict": True,
                    "noEmit": True,
                    "module": "nodenext",
                    "moduleResolution": "nodenext",
                    "target": "es2022",
                    "skipLibCheck": True,
                    "types": [],
                },
                "files": ["check.ts"],
            }
        )
    )
    (tmp_path / "node_modules").symlink_to(ROOT / "node_modules")
    done = subprocess.run(  # noqa: S603 - the project's own tsc on a file it wrote
        [str(TSC), "-p", str(tmp_path)], capture_output=True, text=True, timeout=120, check=False
    )
    # tsc names the line: the first sample is on the line after the template's own.
    errors = [
        f"{names[int(m.group(1)) - _FIRST_LINE]}: {m.group(2)}"
        for m in re.finditer(r"check\.ts\((\d+),\d+\): error \w+: (.*)", done.stdout)
    ]
    assert done.returncode == 0 and not errors, "\n".join(errors) or done.stdout + done.stderr


def _objects(value, key):
    """Every value under ``key`` anywhere in a JSON document."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k == key and v is not None:
                yield v
            yield from _objects(v, key)
    elif isinstance(value, list):
        for v in value:
            yield from _objects(v, key)


@pytest.mark.parametrize("name", sample_names("clerk"))
def test_money_and_payers_validate_against_the_backend_api_models(name):
    from clerk_backend_api import models

    envelope = sample_json(name)
    payers = list(_objects(envelope, "payer"))
    money = [m for key in ("amount", "grand_total", "subtotal", "tax_total") for m in _objects(envelope, key)]
    money = [m for m in money if isinstance(m, dict)]
    assert payers and money
    for payer in payers:
        models.CommercePayerResponse.model_validate(payer)
    for amount in money:
        models.CommerceMoneyResponse.model_validate(amount)


def test_every_billing_event_clerk_defines_is_mapped():
    mapped = set(SUBSCRIPTIONS.mappers) | set(PAYMENT_ATTEMPTS.mappers)
    published = published_billing_types()
    assert len(published) >= 16
    assert published - mapped == set(), "a Clerk Billing event type is not mapped"
    assert mapped - published == EARLY_SPELLINGS, "paygate maps a type Clerk does not define"


def test_every_clerk_sample_type_is_one_clerk_defines():
    assert {sample_json(n)["type"] for n in sample_names("clerk")} <= published_billing_types()
