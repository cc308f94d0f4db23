"""Every setting paygate reads from its environment, in one place: the only reader of ``os.environ``.

Each kind of function gets one frozen settings object (:class:`WebhookSettings`,
:class:`AuthorizerSettings`, :class:`AccountSettings`, :class:`ReconcileSettings`, :class:`EventSettings`).
The reader of each declares the variables it reads, and may read no other (a missing declaration fails its
first use), so the objects are rebuilt exactly when one of those variables changes. Containers cache what
they build on the settings object itself, so a process that serves several configurations (the tests)
never mixes them, and a Lambda container reads its environment once per invocation.

A bad value fails with a :class:`SettingsError` that names the variable (never a secret's value).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from paygate.domain.access import DAY_MS, AccessPolicy
from paygate.infra.catalog_file import DEFAULT_PATH

#: Larger bodies are refused with 413 before verification; real billing events are a few KB.
MAX_WEBHOOK_BODY_BYTES = 256 * 1024
#: Decisions re-read a payer at most this often per container (see docs/gate.md).
DEFAULT_STORE_CACHE_SECONDS = 5.0


DEFAULT_CLOCK_SKEW_SECONDS = 5


class SettingsError(ValueError):
    """A variable's value is unusable; the message names the variable."""


@dataclass(frozen=True, slots=True)
class TokenSettings:
    """How the authorizer verifies Clerk session tokens (see :mod:`paygate.infra.tokens`)."""

    issuer: str
    authorized_parties: tuple[str, ...] = ()
    clock_skew_s: int = DEFAULT_CLOCK_SKEW_SECONDS
    #: ``CLERK_JWT_KEY``: the instance's PEM public key, for networkless verification. Wins over the JWKS.
    pem_key: str | None = field(default=None, repr=False)
    #: ``CLERK_JWKS_URL``: e.g. ``https://<frontend-api>/.well-known/jwks.json``.
    jwks_url: str | None = None

    def problems(self) -> list[str]:
        """What makes this configuration unusable (the authorizer then denies everything)."""
        found = []
        if not self.issuer:
            found.append("CLERK_ISSUER is not set")
        if not self.pem_key and not self.jwks_url:
            found.append("neither CLERK_JWT_KEY nor CLERK_JWKS_URL is set")
        if self.jwks_url and not is_secure_url(self.jwks_url):
            found.append(f"CLERK_JWKS_URL {_SECURE_URL}")
        if not 0 <= self.clock_skew_s <= 300:
            found.append("CLERK_CLOCK_SKEW_SECONDS must be between 0 and 300")
        return found


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    table_name: str
    catalog_path: Path
    policy: AccessPolicy
    retention_days: int = 90
    #: ``WEBHOOK_SECRET``: comma-separated ``whsec_...`` values (local runs, tests). Wins over the ARN.
    secret: str = field(default="", repr=False)
    #: ``WEBHOOK_SECRET_ARN``: in AWS, the Secrets Manager secret holding the same value.
    secret_arn: str = ""


@dataclass(frozen=True, slots=True)
class AuthorizerSettings:
    table_name: str
    catalog_path: Path
    tokens: TokenSettings
    policy: AccessPolicy = field(default_factory=AccessPolicy)
    store_authoritative: bool = False
    allow_pending: bool = False
    store_cache_ms: int = int(DEFAULT_STORE_CACHE_SECONDS * 1000)


@dataclass(frozen=True, slots=True)
class AccountSettings:
    table_name: str
    catalog_path: Path
    policy: AccessPolicy


#: Clerk's Backend API (``CLERK_API_URL``'s default, as Clerk's SDKs name it; ``/v1`` is added for the SDK).
CLERK_API_URL = "https://api.clerk.com"
#: ``DODO_PAYMENTS_BASE_URL``'s default: the dodopayments SDK's ``live_mode`` environment.
DODO_PAYMENTS_LIVE_URL = "https://live.dodopayments.com"
#: A payer's refreshes (``POST /me/subscription/refresh``) are at most one per this many seconds.
DEFAULT_REFRESH_SECONDS = 60
#: A scheduled run reads again the payments, refunds and disputes of this many days (0: all of them).
DEFAULT_HISTORY_DAYS = 45


@dataclass(frozen=True, slots=True)
class ReconcileSettings:
    """The reconcile function: where each provider's API is, its key, and how often a payer may refresh.
    A provider with no key is not read."""

    table_name: str
    catalog_path: Path
    policy: AccessPolicy
    retention_days: int = 90
    clerk_api_url: str = CLERK_API_URL
    #: ``CLERK_SECRET_KEY`` (local runs, tests) wins over ``CLERK_SECRET_KEY_ARN`` (Secrets Manager).
    clerk_secret_key: str = field(default="", repr=False)
    clerk_secret_key_arn: str = ""
    dodo_base_url: str = DODO_PAYMENTS_LIVE_URL
    #: ``DODO_PAYMENTS_API_KEY`` wins over ``DODO_PAYMENTS_API_KEY_ARN``.
    dodo_api_key: str = field(default="", repr=False)
    dodo_api_key_arn: str = ""
    refresh_interval_s: int = DEFAULT_REFRESH_SECONDS
    history_days: int = DEFAULT_HISTORY_DAYS


def reconcile_settings(env: Mapping[str, str] | None = None) -> ReconcileSettings:
    return _settings(_RECONCILE, env)  # type: ignore[return-value]


def provider_keys(settings: ReconcileSettings) -> dict[str, str]:
    """Each provider's API key, by provider (``clerk``, ``dodo``), for those that have one: from the
    environment, else from Secrets Manager (cached five minutes)."""
    found = {}
    for provider, key, arn in (
        ("clerk", settings.clerk_secret_key, settings.clerk_secret_key_arn),
        ("dodo", settings.dodo_api_key, settings.dodo_api_key_arn),
    ):
        value = key or (_secret_value(arn).strip() if arn else "")
        if value:
            found[provider] = value
    return found


@dataclass(frozen=True, slots=True)
class EventSettings:
    """The entitlement events' publisher and sweeper (docs/events.md)."""

    table_name: str
    catalog_path: Path
    policy: AccessPolicy
    #: ``EVENT_BUS_NAME``: the custom EventBridge bus events are published on.
    bus_name: str = ""


def event_settings(env: Mapping[str, str] | None = None) -> EventSettings:
    return _settings(_EVENTS, env)  # type: ignore[return-value]


def webhook_settings(env: Mapping[str, str] | None = None) -> WebhookSettings:
    return _settings(_WEBHOOK, env)  # type: ignore[return-value]


def authorizer_settings(env: Mapping[str, str] | None = None) -> AuthorizerSettings:
    return _settings(_AUTHORIZER, env)  # type: ignore[return-value]


def account_settings(env: Mapping[str, str] | None = None) -> AccountSettings:
    return _settings(_ACCOUNT, env)  # type: ignore[return-value]


def catalog_path(env: Mapping[str, str] | None = None) -> Path:
    """The catalog file: ``PAYGATE_CONFIG``, else the ``paygate.toml`` shipped in the layer."""
    return _settings(_CATALOG, env)  # type: ignore[return-value]


def log_level(env: Mapping[str, str] | None = None) -> str:
    """The level of paygate's own log lines (Powertools' variable, else Lambda's); never fails."""
    return _settings(_LOG_LEVEL, env)  # type: ignore[return-value]


def webhook_secrets(settings: WebhookSettings) -> list[str]:
    """The function's signing secrets, several during a rotation.

    ``WEBHOOK_SECRET`` wins, for local runs and tests; in AWS the template passes
    ``WEBHOOK_SECRET_ARN`` and the value is read from Secrets Manager, cached for five minutes
    (:mod:`paygate.infra.secrets`).
    """
    raw = settings.secret
    if not raw and settings.secret_arn:
        raw = _secret_value(settings.secret_arn)
    return [s.strip() for s in (raw or "").split(",") if s.strip()]


def _secret_value(arn: str) -> str:
    from paygate.infra.secrets import secret_value  # only functions deployed with Secrets Manager import it

    return secret_value(arn)


# -- readers -------------------------------------------------------------------------------------


class _Env:
    """The declared variables of one reader; reading an undeclared one is a bug, caught at once."""

    def __init__(self, values: Mapping[str, str | None]) -> None:
        self._values = values

    def text(self, name: str, default: str = "") -> str:
        value = self._values[name]
        return default if value is None else value.strip()

    def integer(self, name: str, default: int, minimum: int | None = None, maximum: int | None = None) -> int:
        raw = self.text(name)
        try:
            value = int(raw) if raw else default
        except ValueError:
            raise SettingsError(f"{name} must be a whole number") from None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise SettingsError(f"{name} must be between {minimum} and {maximum}")
        return value

    def flag(self, name: str) -> bool:
        value = self.text(name).lower()
        if value in ("", "false"):
            return False
        if value == "true":
            return True
        raise SettingsError(f"{name} must be 'true' or 'false'")

    def seconds_as_ms(self, name: str, default: float) -> int:
        raw = self.text(name)
        try:
            value = float(raw) if raw else default
        except ValueError:
            raise SettingsError(f"{name} must be a number of seconds") from None
        if not 0 <= value <= 3600:
            raise SettingsError(f"{name} must be between 0 and 3600 seconds")
        return int(value * 1000)


def _catalog_path(env: _Env) -> Path:
    return Path(env.text("PAYGATE_CONFIG") or DEFAULT_PATH)


def _policy(env: _Env) -> AccessPolicy:
    return AccessPolicy(grace_period_ms=env.integer("GRACE_PERIOD_DAYS", 7, minimum=0) * DAY_MS)


def _log_level(env: _Env) -> str:
    level = (env.text("POWERTOOLS_LOG_LEVEL") or env.text("AWS_LAMBDA_LOG_LEVEL") or "INFO").upper()
    return level if level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL") else "INFO"


def _read_webhook(env: _Env) -> WebhookSettings:
    return WebhookSettings(
        table_name=env.text("TABLE_NAME"),
        catalog_path=_catalog_path(env),
        policy=_policy(env),
        retention_days=env.integer("EVENT_RETENTION_DAYS", 90, minimum=1),
        secret=env.text("WEBHOOK_SECRET"),
        secret_arn=env.text("WEBHOOK_SECRET_ARN"),
    )


def _read_tokens(env: _Env) -> TokenSettings:
    parties = tuple(p.strip() for p in env.text("CLERK_AUTHORIZED_PARTIES").split(",") if p.strip())
    return TokenSettings(
        issuer=env.text("CLERK_ISSUER"),
        authorized_parties=parties,
        clock_skew_s=env.integer("CLERK_CLOCK_SKEW_SECONDS", DEFAULT_CLOCK_SKEW_SECONDS),
        pem_key=env.text("CLERK_JWT_KEY") or None,
        jwks_url=env.text("CLERK_JWKS_URL") or None,
    )


def _read_authorizer(env: _Env) -> AuthorizerSettings:
    tokens = _read_tokens(env)
    if env.text("PAYGATE_STAGE") == "prod" and not tokens.authorized_parties:
        # Without it a token minted for any origin of the Clerk instance passes (azp unchecked): fine for
        # a dev stack, never for prod. The authorizer denies everything rather than start without it.
        raise SettingsError("CLERK_AUTHORIZED_PARTIES must name the app's origins when PAYGATE_STAGE is prod")
    return AuthorizerSettings(
        table_name=env.text("TABLE_NAME"),
        catalog_path=_catalog_path(env),
        tokens=tokens,
        policy=_policy(env),
        store_authoritative=env.flag("STORE_AUTHORITATIVE"),
        allow_pending=env.flag("CLERK_ALLOW_PENDING_SESSIONS"),
        store_cache_ms=env.seconds_as_ms("PAYGATE_STORE_CACHE_SECONDS", DEFAULT_STORE_CACHE_SECONDS),
    )


def _read_account(env: _Env) -> AccountSettings:
    return AccountSettings(table_name=env.text("TABLE_NAME"), catalog_path=_catalog_path(env), policy=_policy(env))


def _http_url(env: _Env, name: str, default: str) -> str:
    value = env.text(name) or default
    if not is_secure_url(value):
        raise SettingsError(f"{name} {_SECURE_URL}")
    return value.rstrip("/")


_SECURE_URL = "must be an https:// URL (http:// only to this machine: localhost, 127.0.0.1, [::1])"
#: ``http://`` exactly this (a port and a path may follow; no user, no password, no other host).
_LOOPBACK_HTTP = re.compile(r"http://(localhost|127\.0\.0\.1|\[::1\])(:[0-9]+)?(/\S*)?")


def is_secure_url(url: str) -> bool:
    """``https://``, or ``http://`` to this machine (the local stand-ins of Clerk and Dodo Payments).

    Signing keys fetched, or API keys sent, in clear over the network could be swapped or read on the way.
    The template's URL parameters allow the same (their AllowedPattern); "http://localhost:x@host" names
    another host, and is refused.
    """
    return (url.startswith("https://") and len(url) > len("https://")) or bool(_LOOPBACK_HTTP.fullmatch(url))


def _read_reconcile(env: _Env) -> ReconcileSettings:
    return ReconcileSettings(
        table_name=env.text("TABLE_NAME"),
        catalog_path=_catalog_path(env),
        policy=_policy(env),
        retention_days=env.integer("EVENT_RETENTION_DAYS", 90, minimum=1),
        clerk_api_url=_http_url(env, "CLERK_API_URL", CLERK_API_URL),
        clerk_secret_key=env.text("CLERK_SECRET_KEY"),
        clerk_secret_key_arn=env.text("CLERK_SECRET_KEY_ARN"),
        dodo_base_url=_http_url(env, "DODO_PAYMENTS_BASE_URL", DODO_PAYMENTS_LIVE_URL),
        dodo_api_key=env.text("DODO_PAYMENTS_API_KEY"),
        dodo_api_key_arn=env.text("DODO_PAYMENTS_API_KEY_ARN"),
        refresh_interval_s=env.integer("RECONCILE_REFRESH_SECONDS", DEFAULT_REFRESH_SECONDS, minimum=1, maximum=86_400),
        history_days=env.integer("RECONCILE_HISTORY_DAYS", DEFAULT_HISTORY_DAYS, minimum=0),
    )


def _read_events(env: _Env) -> EventSettings:
    return EventSettings(
        table_name=env.text("TABLE_NAME"),
        catalog_path=_catalog_path(env),
        policy=_policy(env),
        bus_name=env.text("EVENT_BUS_NAME"),
    )


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: each reader is a module constant
class _Reader:
    keys: tuple[str, ...]
    build: Callable[[_Env], object]

    @cached_property
    def raw_keys(self) -> tuple[object, ...]:
        """The keys as the process environment stores them (bytes on POSIX)."""
        return tuple(os.environ.encodekey(k) for k in self.keys)  # type: ignore[attr-defined]


_COMMON = ("TABLE_NAME", "PAYGATE_CONFIG", "GRACE_PERIOD_DAYS")
_WEBHOOK = _Reader(
    (*_COMMON, "EVENT_RETENTION_DAYS", "WEBHOOK_SECRET", "WEBHOOK_SECRET_ARN"),
    _read_webhook,
)
_AUTHORIZER = _Reader(
    (
        *_COMMON,
        "CLERK_ISSUER",
        "CLERK_AUTHORIZED_PARTIES",
        "CLERK_CLOCK_SKEW_SECONDS",
        "CLERK_JWT_KEY",
        "CLERK_JWKS_URL",
        "STORE_AUTHORITATIVE",
        "CLERK_ALLOW_PENDING_SESSIONS",
        "PAYGATE_STORE_CACHE_SECONDS",
        "PAYGATE_STAGE",
    ),
    _read_authorizer,
)
_ACCOUNT = _Reader(_COMMON, _read_account)
_RECONCILE = _Reader(
    (
        *_COMMON,
        "EVENT_RETENTION_DAYS",
        "CLERK_API_URL",
        "CLERK_SECRET_KEY",
        "CLERK_SECRET_KEY_ARN",
        "DODO_PAYMENTS_BASE_URL",
        "DODO_PAYMENTS_API_KEY",
        "DODO_PAYMENTS_API_KEY_ARN",
        "RECONCILE_REFRESH_SECONDS",
        "RECONCILE_HISTORY_DAYS",
    ),
    _read_reconcile,
)
_EVENTS = _Reader((*_COMMON, "EVENT_BUS_NAME"), _read_events)
_CATALOG = _Reader(("PAYGATE_CONFIG",), _catalog_path)
_LOG_LEVEL = _Reader(("POWERTOOLS_LOG_LEVEL", "AWS_LAMBDA_LOG_LEVEL"), _log_level)

_built: dict[tuple[_Reader, tuple[object, ...]], object] = {}


def _settings(reader: _Reader, env: Mapping[str, str] | None) -> object:
    if env is None:
        # The authorizer looks its settings up on every decision. ``os.environ`` encodes each key and
        # decodes each value on every read (about 0.6 us a variable); its stored form is read instead,
        # whose values are the same objects from call to call, so the lookup below costs well under
        # a microsecond. A changed variable (the tests) is still seen at once.
        stored = os.environ._data  # type: ignore[attr-defined]
        raw = tuple(map(stored.get, reader.raw_keys))
        key = (reader, raw)
        built = _built.get(key)
        if built is not None:
            return built
        values = tuple(None if v is None else os.environ.decodevalue(v) for v in raw)  # type: ignore[attr-defined]
    else:
        values = tuple(env.get(k) for k in reader.keys)
        key = (reader, values)
        built = _built.get(key)
        if built is not None:
            return built
    built = reader.build(_Env(dict(zip(reader.keys, values, strict=True))))
    if len(_built) >= 64:
        _built.clear()
    _built[key] = built
    return built
