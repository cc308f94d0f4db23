"""paygate's has() against Clerk's own, run from Clerk's published npm code (``@clerk/backend``, pinned in
package.json; ``clerk/has_oracle.cjs`` builds the auth object exactly as Clerk's SDK does for a
verified session token).

Thousands of claim payloads x queries: well-formed v2 and v1 sessions, every whitespace character
JavaScript's trim and Python's strip disagree on, permission masks of every digit shape, malformed
claims with and without an active organization, and reverification ages against every preset and level.

The property: paygate never allows what Clerk denies, refuses to build a session exactly where Clerk
refuses to build an auth object, and allows everything Clerk allows except in the deliberate, documented
cases where paygate is stricter (``stricter_on_purpose``; docs/reference/clerk-session-tokens.md).
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
from typing import Any

import pytest

from paygate.domain.gate import has
from paygate.providers.clerk_session import ClaimError, session_from_claims
from paygate_dev import ROOT

ORACLE = ROOT / "tests" / "contract" / "clerk" / "has_oracle.cjs"
BASE = {"sub": "user_1", "sid": "sess_1", "iss": "https://clerk.example.com", "v": 2}
RICH = {
    **BASE,
    "pla": "u:pro,o:team",
    "fea": "o:dashboard,u:export,o:teams,ou:both",
    "o": {"id": "org_1", "slg": "acme", "rol": "admin", "per": "manage,read", "fpm": "3,2,1"},
}
PLANS = ["pro", "u:pro", "user:pro", "o:pro", "org:pro", "organization:pro", "team", "o:team", "org:team", "u:team"]
PLANS += ["x:pro", "pro:", "u:", "org:", ":pro", "", "u:pro:x", "org:team:x", "U:pro", " pro", "pro "]
FEATURES = ["dashboard", "o:dashboard", "org:dashboard", "u:dashboard", "user:dashboard", "teams", "export"]
FEATURES += ["u:export", "org:export", "both", "u:both", "o:both", "bogus:dashboard", "org:", "", "org:dashboard:x"]
ROLES = ["admin", "org:admin", "org:org:admin", "ORG:admin", "org:", "", "member", "org:member", " admin"]
PERMISSIONS = ["dashboard:read", "org:dashboard:read", "org:org:dashboard:read", "dashboard", "org:dashboard"]
PERMISSIONS += ["teams:read", "org:teams:read", "org:teams:manage", "org:dashboard:undefined", "", "org:both:read"]
REVERIFICATIONS: list[Any] = ["strict", "strict_mfa", "moderate", "lax", "STRICT", "invalid"]
REVERIFICATIONS += [
    {"level": level, "afterMinutes": minutes}
    for level in ("first_factor", "second_factor", "multi_factor", "multiFactor")
    for minutes in (10, 1, 0.5, 0, -1, 1e9)
]
QUERIES: list[dict[str, Any]] = [
    *({"plan": p} for p in PLANS),
    *({"feature": f} for f in FEATURES),
    *({"role": r} for r in ROLES),
    *({"permission": p} for p in PERMISSIONS),
    *({"reverification": r} for r in REVERIFICATIONS),
    {"role": "admin", "permission": "org:teams:read"},
    {"role": "member", "permission": "org:teams:read"},
    {"plan": "team", "feature": "teams"},
    {"plan": "team", "feature": "nope"},
    {"role": "admin", "plan": "pro"},
    {"permission": "org:dashboard:read", "feature": "org:dashboard", "plan": "org:team"},
    {"plan": "team", "reverification": "lax"},
    {},
]
#: What JavaScript's trim and Python's strip disagree on, and some both strip or both keep.
SPACES = [" ", "\t", "\n", "\v", "\u00a0", "\u2028", "\u3000", "\ufeff", "\u0085", "\u001c", "\u001f"]
SPACES += ["\u180e", "\u200b"]
MASKS = ["3", "03", "00", "1e1", "0x3", "0b11", "+3", "-1", "-0", "3.0", "1.5", "3a", "1_1", "", " ", "Infinity"]
MASKS += ["\u0663", "\uff13", "\u07c3", "\u00b3", "\u2462", "9007199254740993", "18014398509481984", "7" * 5000]
FVA: list[Any] = [[0, 0], [0, -1], [-1, 0], [-1, -1], [9, 9], [10, 10], [9, 11], [11, 9], [11, -1], [-1, 11]]
FVA += [[0, 10], [10, 0], [59, 59], [60, 60], [1439, 1439], [1440, 0], [9.99, 9.99], [0.5, 0.5], [1e308, 0]]
FVA += [None, [], [0], [0, 0, 0], ["0", "0"], [-2, 0], [-0.5, 0], [None, 0], {}, 0, "0,0"]


def payloads() -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = [("rich v2", RICH), ("no organization", {**BASE, "pla": "u:pro"})]
    found += [
        ("v1", {**BASE, "v": 1, "org_id": "org_9", "org_role": "org:admin", "org_permissions": ["org:teams:read"]}),
        ("v1 unprefixed role", {**BASE, "v": None, "org_id": "org_9", "org_role": "admin"}),
        ("v1 permissions as a string", {**BASE, "v": 1, "org_id": "o", "org_role": "admin", "org_permissions": "x"}),
        ("v as a string", {**RICH, "v": "2"}),
        ("v 3", {**RICH, "v": 3}),
        ("v2 with v1 org claims", {**BASE, "org_id": "org_9", "org_role": "org:admin"}),
        ("empty sub", {**RICH, "sub": ""}),
        ("no sub", {k: v for k, v in RICH.items() if k != "sub"}),
        ("pending", {**RICH, "sts": "pending"}),
        ("Pending", {**RICH, "sts": "Pending"}),
    ]
    for space in SPACES:
        found.append((f"space {space!r} around fea", {**RICH, "fea": f"{space}o:dashboard{space},u:export"}))
        found.append((f"space {space!r} around pla", {**RICH, "pla": f"{space}u:pro{space}"}))
        found.append((f"space {space!r} in per", {**RICH, "o": {**RICH["o"], "per": f"manage,{space}read{space}"}}))
        found.append((f"space {space!r} in fpm", {**RICH, "o": {**RICH["o"], "fpm": f"{space}3{space},2,1"}}))
    for mask in MASKS:
        found.append((f"fpm {mask[:12]!r}", {**RICH, "o": {**RICH["o"], "fpm": f"{mask},2,1"}}))
    found.append(("per with 54 names", {**RICH, "o": {**RICH["o"], "per": ",".join(f"p{i}" for i in range(54))}}))
    found.append(("per with an empty name", {**RICH, "o": {**RICH["o"], "per": "manage,,read"}}))
    for bad in ("dashboard", "o:a,", ",o:a", "o:a,,o:b", " ", "\u00a0", "\ufeff"):
        for org in (True, False):
            claims = {**RICH, "fea": bad} if org else {**BASE, "fea": bad, "pla": "u:pro"}
            found.append((f"malformed fea {bad!r}, organization {org}", claims))
        found.append((f"malformed pla {bad!r}", {**RICH, "pla": bad}))
    for name, value in (("number", 5), ("true", True), ("array", ["o:a"]), ("object", {"o": "a"}), ("zero", 0)):
        found.append((f"fea is {name}", {**RICH, "fea": value}))
        found.append((f"pla is {name}", {**RICH, "pla": value}))
        found.append((f"per is {name}", {**RICH, "o": {**RICH["o"], "per": value}}))
        found.append((f"fpm is {name}", {**RICH, "o": {**RICH["o"], "fpm": value}}))
        found.append((f"o is {name}", {**RICH, "o": value}))
    for key, value in (("id", None), ("id", ""), ("id", 42), ("rol", None), ("rol", ""), ("rol", "org:admin")):
        found.append((f"o.{key} = {value!r}", {**RICH, "o": {**RICH["o"], key: value}}))
    for fva in FVA:
        found.append((f"fva {json.dumps(fva)[:20]}", {**RICH, "fva": fva}))
    return found


def paygate_answers(claims: dict[str, Any], queries: list[dict[str, Any]]) -> tuple[bool, list[bool]]:
    try:
        session = session_from_claims(claims)
    except ClaimError:
        return False, [False] * len(queries)
    if session.pending:  # the authorizer denies a pending session, as Clerk signs it out
        return True, [False] * len(queries)
    return True, [has(session.grants, **query) for query in queries]


def stricter_on_purpose(claims: dict[str, Any], query: dict[str, Any]) -> str | None:
    """Why paygate may deny where Clerk allows (never the other way), or ``None``."""
    for kind in ("plan", "feature"):
        value = query.get(kind)
        if isinstance(value, str) and (value.count(":") > 1 or value in ("", "org:", "u:") or value.endswith(":")):
            return "a degenerate plan or feature query (Clerk reads only its first two ':' parts)"
    permission = query.get("permission")
    if isinstance(permission, str) and (permission.endswith(":") or not permission):
        return "a permission without an action"
    role = query.get("role")
    if isinstance(role, str) and role.rstrip(":") in ("", "org"):
        return "an empty role"
    if claims.get("sub") == "":
        return "an empty subject: paygate refuses the token (every check fails in Clerk too, but signed_in)"
    org = claims.get("o")
    if isinstance(org, dict) and not isinstance(org.get("id"), str | type(None)):
        return "a non-string organization id"
    if not isinstance(org, dict) and org and query.keys() & {"role", "permission"}:
        return "an organization claim that is not an object"
    if ":" in str((org or {}).get("rol", "") if isinstance(org, dict) else ""):
        return "a role with ':' in it"
    if isinstance(claims.get("org_id"), int):
        return "a non-string organization id"
    return None


@pytest.mark.skipif(shutil.which("node") is None, reason="node runs Clerk's own code")
def test_has_matches_clerks_own_implementation():
    cases = payloads()
    request = [{"claims": claims, "queries": QUERIES} for _, claims in cases]
    done = subprocess.run(  # noqa: S603 - node with the project's own script
        ["node", str(ORACLE)],  # noqa: S607
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=ROOT,
    )
    clerk = json.loads(done.stdout)
    problems: list[str] = []
    compared = stricter = 0
    for (name, claims), theirs in zip(cases, clerk, strict=True):
        builds, ours = paygate_answers(claims, QUERIES)
        if not theirs["builds"] and builds:
            problems.append(f"{name}: Clerk builds no auth object ({theirs['error']}), paygate does")
        for query, mine, truth in zip(QUERIES, ours, theirs["answers"], strict=True):
            compared += 1
            if mine and not truth:
                problems.append(f"{name}: {query} allowed, Clerk denies")
            elif truth and not mine:
                if stricter_on_purpose(claims, query) is None:
                    problems.append(f"{name}: {query} denied, Clerk allows")
                stricter += 1
    assert not problems, f"{len(problems)} of {compared} differ:\n" + "\n".join(problems[:40])
    assert compared > 15_000 and stricter < compared // 20


def test_the_corpus_covers_every_kind_of_query():
    kinds = {k for q in QUERIES for k in q}
    assert kinds == {"plan", "feature", "role", "permission", "reverification"}
    assert len(list(itertools.islice(payloads(), 500))) > 150
