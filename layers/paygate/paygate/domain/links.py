"""Who pays when a provider names only its own ids: links from a provider id to a payer.

Dodo Payments knows its customers (``cus_...``), not the application's users or organizations. An
event whose metadata names the payer links the customer to that payer; an event that names only the
customer (credits, some refunds) is kept under ``Payer(CUSTOMER, cus_...)`` and follows the link once
it exists. A dispute names only its payment, so payments link ``pay_...`` to their customer too.

A link is an ordinary versioned :class:`StateRecord` of kind ``customer_link`` kept in the *source*
id's own partition (``PAYER#customer:<source id>``), so resolving it is one GetItem. The store follows
links when it applies an effect whose payer is a customer, and moves what was kept under a source
into the linked payer's partition when a link is written (see :mod:`paygate.service.apply`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from paygate.domain.state import Body, MergedRecord, Payer, PayerKind, RecordKind, StateRecord

#: Key of the link record's target (a payer key such as ``user:user_123`` or ``customer:cus_123``).
LINKED_PAYER = "linked_payer"
#: Facts a link knows about its source (e.g. a payment's subscription), filled into records resolved
#: through it wherever they are null.
INHERIT = "inherit"


def customer_payer(provider_id: str) -> Payer:
    """The partition that keeps state known only by a provider id (a customer or a payment)."""
    return Payer(PayerKind.CUSTOMER, provider_id)


def link_record(
    provider: str,
    source_id: str,
    target: Payer,
    version: str,
    inherit: Mapping[str, Any] | None = None,
    **facts: Any,
) -> StateRecord:
    """``source_id`` (a provider id) belongs to ``target``, as of ``version``."""
    return StateRecord(
        customer_payer(source_id),
        RecordKind.CUSTOMER_LINK,
        link_record_id(provider, source_id),
        version,
        {LINKED_PAYER: target.key, INHERIT: dict(inherit or {}), "source_id": source_id, **facts},
    )


def link_record_id(provider: str, source_id: str) -> str:
    return f"{provider}:{source_id}"


def is_link(record: StateRecord | MergedRecord) -> bool:
    """A link as the store follows it (the payer-side copy, kept for the account page, is not)."""
    return record.kind is RecordKind.CUSTOMER_LINK and record.payer.kind is PayerKind.CUSTOMER


def fill_inherited(body: Body, inherit: Mapping[str, Any]) -> Body:
    """``body`` with each inherited fact filled in where the record has that field set to null."""
    if not inherit:
        return body
    if isinstance(body, Mapping):
        return {k: (inherit[k] if v is None and inherit.get(k) is not None else v) for k, v in body.items()}
    missing = {k: v for k, v in inherit.items() if v is not None and getattr(body, k, False) is None}
    return replace(body, **missing) if missing else body  # type: ignore[type-var]
