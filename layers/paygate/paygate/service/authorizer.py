"""The authorizer's decision: may this caller use this route, right now?

1. **Route**: the gate of the event's ``routeKey`` from the catalog. A route without one is denied.
2. **Who**: the session token from ``Authorization: Bearer`` (else Clerk's ``__session`` cookie),
   verified (RS256, issuer, ``azp``, ``exp`` / ``nbf`` with a small skew). A pending session is
   denied unless ``CLERK_ALLOW_PENDING_SESSIONS=true``.
3. **Claims first**: the gate evaluated exactly as Clerk's ``has()`` over the token's claims.
4. **Store next**, only when the claims do not already allow and the gate asks about billing: the
   user's and the active organization's stored subscriptions at this instant, in one request.
   With ``STORE_AUTHORITATIVE=true`` the claims' plans, features and permissions are not trusted:
   billing checks are answered by the store alone, so a cancellation revokes access at once.

Any error denies (fail closed). The token never appears in a log line or a reason.

A verified token's session is kept per container by the token's exact text while the token stays
valid (:class:`~paygate.infra.tokens.VerifiedTokens`): a session token comes with every request of
its minute, and is verified once. With it are kept the routes its claims alone already allowed
(such an answer depends on nothing else: the token, the route's gate and the settings, all fixed
while the entry lives); store answers are never kept. Each decision writes one line that is both
its log line and a CloudWatch metric (:func:`decision_line`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from json.encoder import encode_basestring_ascii
from typing import Any

from paygate import settings
from paygate.clock import Clock, system_clock
from paygate.domain.catalog import Catalog
from paygate.domain.entitlements import entitlements_of, store_grants
from paygate.domain.gate import Grants, needs_billing, payer_kinds
from paygate.domain.state import Payer, PayerKind
from paygate.infra.catalog_file import load_catalog
from paygate.infra.dynamodb_store import container_store
from paygate.infra.tokens import KeyUnavailable, TokenError, TokenVerifier, VerifiedTokens
from paygate.providers.clerk_session import ClaimError, Session, session_from_claims
from paygate.service.context import Source, route_context
from paygate.service.payers import PayerReader
from paygate.service.ports import StoreUnavailable
from paygate.settings import AuthorizerSettings

SESSION_COOKIE = "__session"


class Reason:
    """Why a request was allowed or denied (logged, and used by tests)."""

    GRANTED = "granted"
    NO_GATE = "no_gate"
    NO_TOKEN = "no_token"  # noqa: S105 - reason codes, not secrets
    INVALID_TOKEN = "invalid_token"  # noqa: S105
    PENDING_SESSION = "pending_session"
    NOT_GRANTED = "not_granted"
    STORE_UNAVAILABLE = "store_unavailable"
    KEYS_UNAVAILABLE = "keys_unavailable"
    MISCONFIGURED = "misconfigured"
    ERROR = "error"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    detail: str = ""
    source: Source | None = None
    context: Mapping[str, str] = field(default_factory=dict)

    @cached_property
    def line_fields(self) -> str:
        """The decision's own fields of its :func:`decision_line`, as JSON members (made once: an
        allow kept for a token is written again with every request of its minute)."""
        return _FIELDS % (
            '"allow"' if self.allowed else '"deny"',
            _json_string(self.reason),
            _json_string(self.source.value if self.source else "none"),
            "true" if self.allowed else "false",
            '"INFO"' if self.allowed or self.reason in _EXPECTED_DENIALS else '"ERROR"',
            _json_string(self.detail),
            _json_string(self.context.get("user_id")),
        )

    def response(self) -> dict[str, Any]:
        """API Gateway's simple response (payload 2.0); a denial carries no context."""
        if self.allowed:
            return {"isAuthorized": True, "context": dict(self.context)}
        return {"isAuthorized": False}


class Authorizer:
    def __init__(
        self,
        config: AuthorizerSettings,
        catalog: Catalog,
        verifier: TokenVerifier,
        reader: PayerReader,
    ) -> None:
        self.config = config
        self.catalog = catalog
        self.verifier = verifier
        #: Sessions of tokens verified in this container, by the token's exact text.
        self.sessions = VerifiedTokens(verifier, KeptSession.of)
        self.reader = reader
        # The catalog holds parsed gates; whether each needs the store is decided once per container.
        self.gates = catalog.routes
        self._billing: dict[str, bool] = {key: needs_billing(gate) for key, gate in self.gates.items()}

    def decide(self, event: Mapping[str, Any], now_ms: int) -> Decision:
        route_key = event.get("routeKey")
        gate = self.gates.get(route_key) if isinstance(route_key, str) else None
        if gate is None:
            return Decision(False, Reason.NO_GATE, f"no gate is configured for route {str(route_key)[:200]!r}")
        token = session_token(event)
        if token is None:
            return Decision(False, Reason.NO_TOKEN, "no bearer token or __session cookie")
        try:
            kept = self.sessions.get(token, now_ms)
        except KeyUnavailable as exc:
            return Decision(False, Reason.KEYS_UNAVAILABLE, str(exc))
        except (TokenError, ClaimError) as exc:
            return Decision(False, Reason.INVALID_TOKEN, str(exc))
        allowed = kept.allowed.get(route_key)
        if allowed is not None:
            return allowed
        session = kept.session
        if session.pending and not self.config.allow_pending:
            return Decision(False, Reason.PENDING_SESSION, "the session has pending tasks (sts=pending)")

        billing = self._billing[route_key]
        claims = session.grants
        if self.config.store_authoritative:
            # The token still says who the caller is (user, organization, role), not what they pay for.
            claims = claims.without_billing()
        if (not self.config.store_authoritative or not billing) and gate.allows(claims):
            allowed = kept.allowed[route_key] = self._allow(session, claims, Source.TOKEN)
            return allowed
        if not billing:
            return Decision(False, Reason.NOT_GRANTED, "the gate does not hold")

        kinds = payer_kinds(gate, org_active=session.org_id is not None)
        if not kinds:
            return Decision(False, Reason.NOT_GRANTED, "the gate does not hold and no stored payer applies")
        try:
            stored = self._store_grants(session, kinds, now_ms)
        except StoreUnavailable as exc:
            return Decision(False, Reason.STORE_UNAVAILABLE, f"the store could not be read ({exc})")
        if gate.allows(stored):
            return self._allow(session, stored, Source.STORE)
        return Decision(False, Reason.NOT_GRANTED, "the gate holds neither on the token nor on the store")

    def _store_grants(self, session: Session, kinds: frozenset[PayerKind], now_ms: int) -> Grants:
        payers = {
            kind: Payer(kind, session.user_id if kind is PayerKind.USER else session.org_id or "") for kind in kinds
        }
        # What each payer holds now (items, refunds and disputes, payment standing): history is kept
        # elsewhere, so this one request stays the same size however long the payer has paid.
        states = self.reader.read([p.key for p in payers.values()], now_ms)
        held = {
            kind: entitlements_of(payer, states[payer.key], self.catalog, self.config.policy, now_ms)
            for kind, payer in payers.items()
        }
        return store_grants(session.grants, held.get(PayerKind.USER), held.get(PayerKind.ORGANIZATION))

    @staticmethod
    def _allow(session: Session, grants: Grants, source: Source) -> Decision:
        context = route_context(session.user_id, session.session_id, session.org_slug, grants, source)
        return Decision(True, Reason.GRANTED, source=source, context=context)


@dataclass(slots=True)
class KeptSession:
    """What the container keeps of a verified token: its session, and the routes its claims allowed."""

    session: Session
    #: Route key -> the allow the token's claims gave there (the gate and settings are the authorizer's own).
    allowed: dict[str, Decision] = field(default_factory=dict)

    @classmethod
    def of(cls, claims: Mapping[str, Any]) -> KeptSession:
        return cls(session_from_claims(claims))


def session_token(event: Mapping[str, Any]) -> str | None:
    """The session token: ``Authorization`` first (as Clerk's SDK), else the ``__session`` cookie.

    ``Bearer <token>`` or a bare token are read. When an ``Authorization`` header is present, in any
    form, the cookie is never read: API Gateway caches a decision under the header's value, so a
    header that only looks empty here (a no-break space, a line separator ...) must not let a cookie
    decide for everyone who sends the same header. Only space and tab are trimmed; a header that is
    empty after that, not ASCII, or of another scheme (``Basic ...``) is no token at all.
    """
    headers = event.get("headers") or {}
    if "authorization" not in headers:
        # API Gateway (payload 2.0) already lowercases header names, so only other callers get here.
        headers = {str(k).lower(): v for k, v in headers.items()}
    if "authorization" in headers:
        header = headers["authorization"]
        if not isinstance(header, str) or not header.isascii():
            return None
        scheme, _, rest = header.strip(_HEADER_SPACE).partition(" ")
        if not rest:
            return scheme or None
        if scheme.lower() != "bearer":
            return None
        return rest.strip(_HEADER_SPACE) or None
    cookies = list(event.get("cookies") or [])
    if isinstance(headers.get("cookie"), str):
        cookies += headers["cookie"].split(";")
    for cookie in cookies:
        name, _, value = str(cookie).strip().partition("=")
        if name == SESSION_COOKIE and value:
            return value
    return None


#: What HTTP allows around a header value (RFC 9110 OWS): space and horizontal tab, nothing else.
_HEADER_SPACE = " \t"


# -- one per container -------------------------------------------------------------------------

_bound: dict[AuthorizerSettings, Authorizer] = {}
#: The settings and authorizer of the last decision: the settings reader returns the same object
#: while the environment is unchanged, so a container finds its authorizer by identity.
_last: tuple[AuthorizerSettings, Authorizer] | None = None


def container_authorizer(reader_factory: Callable[[AuthorizerSettings], PayerReader] | None = None) -> Authorizer:
    """The container's authorizer: catalog, keys (JWKS cache), verified tokens and store cache live
    as long as it does.

    Keyed by the settings it was built from, so a process serving several configurations (the
    tests, the local server) never mixes them. Raises when the configuration is unusable.
    """
    global _last
    config = settings.authorizer_settings()
    last = _last
    if last is not None and last[0] is config:
        return last[1]
    bound = _bound.get(config)
    if bound is None:
        reader = (reader_factory or _default_reader)(config)
        bound = Authorizer(config, load_catalog(config.catalog_path), TokenVerifier(config.tokens), reader)
        _bound[config] = bound
    _last = (config, bound)
    return bound


def _default_reader(config: AuthorizerSettings) -> PayerReader:
    return PayerReader(container_store(config.table_name), cache_ms=config.store_cache_ms)


# -- the decision line: a log line and a metric ----------------------------------------------------

#: CloudWatch namespace and metric of the decision line; alarms and dashboards name them.
METRIC_NAMESPACE = "paygate"
METRIC_NAME = "authorizer_decisions"
#: Decisions counted by outcome, by outcome and reason, and by outcome and source.
METRIC_DIMENSIONS = (("decision",), ("decision", "reason"), ("decision", "source"))

#: The decision line, written by hand: the Embedded Metric Format's ``_aws`` member is the same for
#: every decision, and each ``%s`` is a JSON value (strings escaped by :func:`_json_string`) or, the
#: second, the decision's own members (:attr:`Decision.line_fields`).
_LINE = (
    '{"_aws":{"Timestamp":%d,"CloudWatchMetrics":'
    + json.dumps(
        [
            {
                "Namespace": METRIC_NAMESPACE,
                "Dimensions": [list(d) for d in METRIC_DIMENSIONS],
                "Metrics": [{"Name": METRIC_NAME, "Unit": "Count"}],
            }
        ],
        separators=(",", ":"),
    ).replace("%", "%%")
    + '},"'
    + METRIC_NAME
    + '":1,%s,"route_key":%s,"correlation_id":%s,"function_request_id":%s}\n'
)
_FIELDS = (
    '"decision":%s,"reason":%s,"source":%s,"allowed":%s,"level":%s,"message":"authorizer decided",'
    '"service":"paygate","function_family":"authorizer","detail":%s,"user_id":%s'
)


def decision_line(decision: Decision, event: Mapping[str, Any], context: Any, now_ms: int) -> str:
    """One JSON line per decision (newline included): the decision's log line and, in CloudWatch's Embedded Metric
    Format, a count of 1 in ``paygate/authorizer_decisions`` under ``decision`` (allow / deny),
    ``reason`` (a :class:`Reason`) and ``source`` (token / store / none).

    Written by hand rather than with Powertools' Logger and Metrics, whose import alone would
    double the authorizer's cold start, and it is cheaper than a dictionary through ``json``. Never
    the token: the fields are the route, the reason and its detail, who was allowed, and the
    request ids.
    """
    request = event.get("requestContext")
    return _LINE % (
        now_ms,
        decision.line_fields,
        _json_string(event.get("routeKey")),
        _json_string(request.get("requestId") if isinstance(request, dict) else None),  # an event is JSON
        _json_string(getattr(context, "aws_request_id", None)),
    )


def _json_string(value: Any) -> str:
    """``value`` as a JSON string (at most 200 characters of it: request fields are not ours), or null."""
    if value is None:
        return "null"
    return encode_basestring_ascii(value if type(value) is str and len(value) <= 200 else str(value)[:200])


def authorizer_handler(clock: Clock = system_clock) -> Callable[[dict, Any], dict]:
    """The Lambda handler: a simple response, and one decision line on stdout (never the token).

    The line is written whatever the log level: it is also the decisions' metric.
    """
    _prepare()

    def handler(event: dict, context: Any) -> dict:
        now_ms = clock()
        try:
            authorizer = container_authorizer()
        except Exception as exc:  # noqa: BLE001 - fail closed; a bad gate or a missing issuer says what is wrong
            decision = Decision(False, Reason.MISCONFIGURED, f"{type(exc).__name__}: {exc}")
        else:
            try:
                decision = authorizer.decide(event, now_ms)
            except Exception as exc:  # noqa: BLE001 - fail closed; only the type, a message could echo input
                decision = Decision(False, Reason.ERROR, type(exc).__name__)
        try:
            out = sys.stdout
            out.write(decision_line(decision, event, context, now_ms))
            out.flush()
        except Exception:  # noqa: BLE001, S110 - a line that cannot be written never changes the answer
            pass
        return decision.response()

    return handler


def _prepare() -> None:
    """During init: build the container's authorizer (catalog, key), and with ``STORE_AUTHORITATIVE=true``
    its store client too.

    With the store authoritative every billing decision reads the store, so the first request would
    otherwise pay botocore's import and the client's creation (docs/benchmarks.md, cold start);
    claims first, most decisions never read it, and the claims path keeps its cold start free of
    the AWS SDK. A configuration that does not work is left for the first request to report (and deny).
    """
    try:
        authorizer = container_authorizer()
        if authorizer.config.store_authoritative and any(authorizer._billing.values()):
            container_store(authorizer.config.table_name).client  # noqa: B018 - made now, on purpose
    except Exception:  # noqa: BLE001, S110 - fail closed at request time, with the reason in the decision line
        pass


_EXPECTED_DENIALS = frozenset({Reason.NO_TOKEN, Reason.INVALID_TOKEN, Reason.PENDING_SESSION, Reason.NOT_GRANTED})
