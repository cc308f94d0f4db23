"""Every setting paygate reads from its environment, in one place: the only reader of ``os.environ``.

Each kind of function gets one frozen settings object (:class:`WebhookSettings`,
:class:`AuthorizerSettings`, :class:`AccountSettings`). The reader of each declares the variables
it reads, and may read no other (a missing declaration fails its first use), so the objects are
rebuilt exactly when one of those variables changes. Containers cache what they build on the
settings object itself, so a process that serves several configurations (the tests, the local
runner) never mixes them, and a Lambda container reads its environment once per invocation.

A bad value fails with a :class:`SettingsError` that names the variable (never a secret's value).
"""

from __future__ import annotations

import os
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
        if self.jwks_url and not self.jwks_url.startswith(("https://", "http://")):
            found.append("CLERK_JWKS_URL must be an http(s) URL")
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
    ``WEBHOOK_SECRET_ARN`` and the value is read from Secrets Manager, cached for five minutes by
    Powertools Parameters.
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
    return AuthorizerSettings(
        table_name=env.text("TABLE_NAME"),
        catalog_path=_catalog_path(env),
        tokens=_read_tokens(env),
        policy=_policy(env),
        store_authoritative=env.flag("STORE_AUTHORITATIVE"),
        allow_pending=env.flag("CLERK_ALLOW_PENDING_SESSIONS"),
        store_cache_ms=env.seconds_as_ms("PAYGATE_STORE_CACHE_SECONDS", DEFAULT_STORE_CACHE_SECONDS),
    )


def _read_account(env: _Env) -> AccountSettings:
    return AccountSettings(table_name=env.text("TABLE_NAME"), catalog_path=_catalog_path(env), policy=_policy(env))


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
    ),
    _read_authorizer,
)
_ACCOUNT = _Reader(_COMMON, _read_account)
_CATALOG = _Reader(("PAYGATE_CONFIG",), _catalog_path)
_LOG_LEVEL = _Reader(("POWERTOOLS_LOG_LEVEL", "AWS_LAMBDA_LOG_LEVEL"), _log_level)

_built: dict[tuple[_Reader, tuple[object, ...]], object] = {}


def _settings(reader: _Reader, env: Mapping[str, str] | None) -> object:
    if env is None:
        # The authorizer looks its settings up on every decision. ``os.environ`` encodes each key and
        # decodes each value on every read (about 0.6 us a variable); its stored form is read instead,
        # whose values are the same objects from call to call, so the lookup below costs well under
        # a microsecond. A changed variable (the tests, the local runner) is still seen at once.
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
