"""Reads ``template.yaml``: the one source of truth for the table, the functions and their routes."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from paygate_dev import ROOT


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags (``!Ref``, ``!Sub`` ...) as plain mappings."""


def _intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


@lru_cache(maxsize=4)
def load(path: Path = ROOT / "template.yaml") -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    authorizer: str | None

    @property
    def route_key(self) -> str:
        """As API Gateway names it, e.g. ``GET /pro/{proxy+}``."""
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class Function:
    logical_id: str
    code_dir: Path
    handler: str
    environment: dict[str, Any] = field(default_factory=dict)
    routes: tuple[Route, ...] = ()
    #: ``ReservedConcurrentExecutions`` as deployed (conditions and parameters resolved); ``None`` when unset.
    reserved_concurrency: int | None = None

    @property
    def module_file(self) -> Path:
        return self.code_dir / (self.handler.rsplit(".", 1)[0].replace(".", "/") + ".py")

    @property
    def handler_name(self) -> str:
        return self.handler.rsplit(".", 1)[1]


def table_definition(template: dict[str, Any] | None = None) -> dict[str, Any]:
    """``create_table`` arguments from the template's table resource (on-demand, same keys)."""
    template = template or load()
    tables = [r for r in template["Resources"].values() if r["Type"] == "AWS::DynamoDB::Table"]
    (props,) = (t["Properties"] for t in tables)
    definition: dict[str, Any] = {
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if props.get("GlobalSecondaryIndexes"):
        definition["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    if props.get("StreamSpecification"):
        definition["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
    return definition


def functions(template: dict[str, Any] | None = None) -> dict[str, Function]:
    template = template or load()
    default_auth = None
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::HttpApi":
            default_auth = (resource.get("Properties", {}).get("Auth") or {}).get("DefaultAuthorizer")
    global_env = (template.get("Globals", {}).get("Function", {}).get("Environment") or {}).get("Variables", {})
    found: dict[str, Function] = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        routes = []
        for event in (props.get("Events") or {}).values():
            if event["Type"] != "HttpApi":
                continue
            ev = event["Properties"]
            auth = (ev.get("Auth") or {}).get("Authorizer", default_auth)
            routes.append(Route(ev["Method"].upper(), ev["Path"], None if auth == "NONE" else auth))
        env = {**global_env, **((props.get("Environment") or {}).get("Variables") or {})}
        reserved = resolve_value(template, props.get("ReservedConcurrentExecutions"))
        found[logical_id] = Function(
            logical_id,
            ROOT / props["CodeUri"],
            props["Handler"],
            env,
            tuple(routes),
            None if reserved is None else int(reserved),
        )
    return found


def resolve_value(template: dict[str, Any], value: Any) -> Any:
    """A property's value as CloudFormation would deploy it: ``!Ref`` of a parameter is its value, ``!If``
    is decided by its condition, and ``AWS::NoValue`` (the property left out) is ``None``."""
    if isinstance(value, dict) and "Ref" in value:
        name = value["Ref"]
        if name == "AWS::NoValue":
            return None
        parameter = (template.get("Parameters") or {}).get(name)
        if parameter is None:
            raise ValueError(f"!Ref {name}: not a parameter of the template")
        return parameter.get("Default")
    if isinstance(value, dict) and "Fn::If" in value:
        condition, if_true, if_false = value["Fn::If"]
        return resolve_value(template, if_true if condition_holds(template, condition) else if_false)
    return value


def condition_holds(template: dict[str, Any], name: str) -> bool:
    """One of the template's ``Conditions``, evaluated with the parameters' values."""
    return _holds(template, (template.get("Conditions") or {})[name])


def _holds(template: dict[str, Any], expression: Any) -> bool:
    (function, arguments), *_ = expression.items()
    if function == "Condition":
        return condition_holds(template, arguments)
    if function == "Fn::Equals":
        left, right = (resolve_value(template, a) for a in arguments)
        return str(left) == str(right)  # CloudFormation compares parameter values as strings
    if function == "Fn::Not":
        return not _holds(template, arguments[0])
    if function == "Fn::And":
        return all(_holds(template, a) for a in arguments)
    if function == "Fn::Or":
        return any(_holds(template, a) for a in arguments)
    raise ValueError(f"condition function {function} is not read locally")


@dataclass(frozen=True)
class Authorizer:
    """A Lambda authorizer of the HTTP API, as SAM's ``Auth.Authorizers`` declares it."""

    name: str
    function: str
    payload_version: str = "2.0"
    simple_responses: bool = False
    #: API Gateway selection expressions, e.g. ``$request.header.Authorization``, ``$context.routeKey``.
    identity_sources: tuple[str, ...] = ()
    #: Seconds a decision is cached; 0 disables the cache.
    ttl_s: int = 0


#: SAM's ``Identity`` keys and the selection expression prefix each becomes.
_IDENTITY_PREFIXES = {
    "Headers": "$request.header.",
    "QueryStrings": "$request.querystring.",
    "StageVariables": "$stageVariables.",
    "Context": "$context.",
}


def _function_of(arn: Any) -> str | None:
    """The function logical id behind ``!GetAtt X.Arn`` / ``!Ref X`` / ``!Sub ${X.Arn}``."""
    if isinstance(arn, dict):
        if "Fn::GetAtt" in arn:
            return arn["Fn::GetAtt"][0]
        if "Ref" in arn:
            return arn["Ref"]
        if "Fn::Sub" in arn and isinstance(arn["Fn::Sub"], str):
            inner = arn["Fn::Sub"].strip()
            if inner.startswith("${") and inner.endswith("}"):
                return inner[2:-1].split(".", 1)[0]
    return None


def _scalar(template: dict[str, Any], value: Any) -> Any:
    """A value, or the default of the template parameter it ``!Ref``-erences."""
    if isinstance(value, dict) and "Ref" in value:
        return (template.get("Parameters") or {}).get(value["Ref"], {}).get("Default", 0)
    return value


def with_parameters(template: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
    """A copy of ``template`` whose parameters default to ``overrides`` (as ``--parameter-overrides`` sets them)."""
    changed = copy.deepcopy(template)
    parameters = changed.setdefault("Parameters", {})
    for name, value in overrides.items():
        if name not in parameters:
            raise ValueError(f"template has no parameter {name!r}; it has {', '.join(sorted(parameters))}")
        parameters[name]["Default"] = value
    return changed


def authorizers(template: dict[str, Any] | None = None) -> dict[str, Authorizer]:
    """The Lambda authorizers of the template's HTTP APIs, by the name routes refer to them with."""
    template = template or load()
    found: dict[str, Authorizer] = {}
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::Serverless::HttpApi":
            continue
        auth = resource.get("Properties", {}).get("Auth") or {}
        for name, spec in (auth.get("Authorizers") or {}).items():
            function = _function_of(spec.get("FunctionArn"))
            if function is None:  # a JWT authorizer or an ARN outside the template: not run locally
                continue
            identity = spec.get("Identity") or {}
            sources = tuple(
                prefix + str(value) for key, prefix in _IDENTITY_PREFIXES.items() for value in identity.get(key) or ()
            )
            found[name] = Authorizer(
                name=name,
                function=function,
                payload_version=str(spec.get("AuthorizerPayloadFormatVersion", "2.0")),
                simple_responses=bool(spec.get("EnableSimpleResponses", False)),
                identity_sources=sources,
                ttl_s=int(_scalar(template, identity.get("ReauthorizeEvery", 0))),
            )
    return found
