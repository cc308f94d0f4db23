"""What a local run needs besides the code: signing secrets, a session-token key pair and each function's environment.

Everything is generated on first run under ``.local/`` (gitignored) and reused afterwards, so a provider's
dashboard or a tunnel configured once keeps working:

- ``.local/webhook-secrets.json``: one ``whsec_...`` secret per webhook function (by logical id);
- ``.local/session-key.pem`` / ``.local/session-key.pub.pem``: the RS256 key pair local session tokens are
  signed with, standing in for a Clerk instance's key (the authorizer gets the public half as ``CLERK_JWT_KEY``);
- ``.local/dynamodb/``: DynamoDB Local's data, unless the store is in memory;
- ``.local/server.json``: where the running server listens, for the companion commands.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from paygate_dev import ROOT
from paygate_dev.signing import new_secret
from paygate_dev.template import Function, authorizers, functions, load

DEFAULT_DIR = ROOT / ".local"
TABLE_NAME = "paygate-local"
#: The issuer local tokens carry and the authorizer pins; a real instance's is its Frontend API URL.
LOCAL_ISSUER = "https://clerk.paygate.localhost"
#: The origin local tokens name in ``azp``, and the one the authorizer accepts.
LOCAL_AUTHORIZED_PARTY = "http://localhost:3000"
#: Dummy credentials: DynamoDB Local accepts any, and nothing must reach a real AWS account.
LOCAL_AWS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_SESSION_TOKEN": "local",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}


#: What the reconcile function reads to reach the providers' APIs (see paygate.settings.ReconcileSettings).
PROVIDER_SETTINGS = ("CLERK_API_URL", "CLERK_SECRET_KEY", "DODO_PAYMENTS_BASE_URL", "DODO_PAYMENTS_API_KEY")
PROVIDER_KEY_ARNS = ("CLERK_SECRET_KEY_ARN", "DODO_PAYMENTS_API_KEY_ARN")


def state_dir() -> Path:
    """``PAYGATE_LOCAL_DIR`` if set (tests use a temporary one), else ``.local/`` in the repository."""
    return Path(os.environ.get("PAYGATE_LOCAL_DIR") or DEFAULT_DIR)


def is_webhook_function(function: Function) -> bool:
    """A function that verifies provider signatures: the template hands it a signing secret."""
    return any(name.startswith("WEBHOOK_SECRET") for name in function.environment)


def is_authorizer_function(function: Function, template: dict[str, Any] | None = None) -> bool:
    return function.logical_id in {a.function for a in authorizers(template).values()} or any(
        name.startswith("CLERK_JWT_KEY") for name in function.environment
    )


@dataclass
class LocalState:
    """The generated secrets and keys of one local directory."""

    directory: Path
    webhook_secrets: dict[str, str] = field(default_factory=dict)
    private_key_pem: str = ""
    public_key_pem: str = ""
    #: What this run generated (to print it once, the first time).
    created: list[str] = field(default_factory=list)

    @property
    def secrets_file(self) -> Path:
        return self.directory / "webhook-secrets.json"

    @property
    def private_key_file(self) -> Path:
        return self.directory / "session-key.pem"

    @property
    def public_key_file(self) -> Path:
        return self.directory / "session-key.pub.pem"

    @property
    def data_dir(self) -> Path:
        return self.directory / "dynamodb"

    @property
    def server_file(self) -> Path:
        return self.directory / "server.json"

    def secret_of(self, function: str) -> str:
        try:
            return self.webhook_secrets[function]
        except KeyError:
            raise LocalSetupError(f"no local signing secret for {function}: start the server once first") from None

    def signing_secret(self, function: str) -> str:
        """The secret a sender signs with: the first, when several are configured (a rotation)."""
        return self.secret_of(function).split(",")[0].strip()

    def server_url(self) -> str:
        """The base URL of the running server, as it recorded it."""
        try:
            return json.loads(self.server_file.read_text())["url"]
        except (FileNotFoundError, KeyError, json.JSONDecodeError):
            raise LocalSetupError("the local server is not running: start it with `make run`") from None


class LocalSetupError(RuntimeError):
    """Something a companion command needs from the local server is not there yet."""


def new_key_pair() -> tuple[str, str]:
    """A fresh RS256 session-token key pair: (private PKCS#8 PEM, public SubjectPublicKeyInfo PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def load_state(
    directory: Path | None = None, *, create: bool = False, template: dict[str, Any] | None = None
) -> LocalState:
    """The secrets and key pair under ``directory``; with ``create``, whatever is missing is generated."""
    directory = directory or state_dir()
    state = LocalState(directory)
    if state.secrets_file.exists():
        state.webhook_secrets = json.loads(state.secrets_file.read_text())
    if state.private_key_file.exists():
        state.private_key_pem = state.private_key_file.read_text()
        state.public_key_pem = state.public_key_file.read_text()
    if not create:
        return state

    directory.mkdir(parents=True, exist_ok=True)
    # A webhook function added to the template since the last run gets its secret now; others keep theirs.
    for function in functions(template).values():
        if is_webhook_function(function) and function.logical_id not in state.webhook_secrets:
            state.webhook_secrets[function.logical_id] = new_secret()
            state.created.append(f"webhook secret of {function.logical_id}")
    if any(c.startswith("webhook secret") for c in state.created):
        _write_private(state.secrets_file, json.dumps(state.webhook_secrets, indent=2) + "\n")
    if not state.private_key_pem:
        state.private_key_pem, state.public_key_pem = new_key_pair()
        _write_private(state.private_key_file, state.private_key_pem)
        state.public_key_file.write_text(state.public_key_pem)
        state.created.append("session-token signing key pair")
    return state


def _write_private(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o600)


def resolve(value: Any, locals_: dict[str, str], parameters: dict[str, Any]) -> str | None:
    """A template value with intrinsics replaced by local values; ``None`` when it has no local meaning."""
    if isinstance(value, (str, int, float, bool)):
        return str(value).lower() if isinstance(value, bool) else str(value)
    if isinstance(value, dict) and "Ref" in value:
        name = value["Ref"]
        if name in locals_:
            return locals_[name]
        default = (parameters.get(name) or {}).get("Default")
        return None if default is None else str(default)
    return None  # a secret's ARN, a GetAtt ...: replaced by a local value or left out


def function_environment(
    function: Function, state: LocalState, dynamodb_endpoint: str, template: dict[str, Any] | None = None
) -> dict[str, str]:
    """The environment ``function`` gets locally: the template's Globals and its own variables, resolved,
    with local values for the table, the endpoint, the signing secret and the session-token key."""
    template = template or load()
    parameters = template.get("Parameters") or {}
    tables = [lid for lid, r in template["Resources"].items() if r["Type"] == "AWS::DynamoDB::Table"]
    locals_ = dict.fromkeys(tables, TABLE_NAME)
    env: dict[str, str] = {}
    for name, value in function.environment.items():
        resolved = resolve(value, locals_, parameters)
        if resolved is not None:
            env[name] = resolved
    env.update(LOCAL_AWS)
    env.update(
        TABLE_NAME=TABLE_NAME,
        AWS_ENDPOINT_URL_DYNAMODB=dynamodb_endpoint,
        AWS_LAMBDA_FUNCTION_NAME=function.logical_id,
        # EMF metrics go to CloudWatch in AWS; locally they would only clutter the console.
        POWERTOOLS_METRICS_DISABLED="true",
        POWERTOOLS_TRACE_DISABLED="true",
    )
    # The authorizer caches store reads for a few seconds per container; locally a webhook should show
    # on the next request, as the demo expects. A value the template sets still wins.
    env.setdefault("PAYGATE_STORE_CACHE_SECONDS", "0")
    if is_webhook_function(function):
        # Wins over WEBHOOK_SECRET_ARN (see paygate.settings), so Secrets Manager is never asked.
        env["WEBHOOK_SECRET"] = state.secret_of(function.logical_id)
    if any(name in function.environment for name in PROVIDER_KEY_ARNS):
        # The reconcile function: the providers' addresses and keys from this process's environment (set
        # by `make run ARGS=--fake-providers`, or by hand), never the secrets' ARNs.
        for name in PROVIDER_KEY_ARNS:
            env.pop(name, None)
        env.update({name: os.environ[name] for name in PROVIDER_SETTINGS if os.environ.get(name)})
    if is_authorizer_function(function, template):
        env.update(
            CLERK_JWT_KEY=state.public_key_pem,
            CLERK_ISSUER=LOCAL_ISSUER,
            CLERK_AUTHORIZED_PARTIES=LOCAL_AUTHORIZED_PARTY,
        )
        for name in [n for n in env if n.startswith("CLERK_") and n.endswith("_ARN")]:
            del env[name]  # the local values above stand in for what AWS reads from a secret
    return env
