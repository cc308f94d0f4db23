"""A stand-in authorizer: its decision is written in the token, and it counts its calls."""

calls = 0


def handler(event, context):
    global calls
    calls += 1
    token = (event["headers"].get("authorization") or "").removeprefix("Bearer ")
    if token == "boom":
        raise RuntimeError("the authorizer failed")
    if token == "junk":
        return {"unexpected": True}
    if event["routeKey"].startswith("GET /policy/"):
        effect = "Allow" if token.startswith("allow") else "Deny"
        statement = {"Action": "execute-api:Invoke", "Effect": effect, "Resource": [event["routeArn"]]}
        return {"principalId": token, "policyDocument": {"Version": "2012-10-17", "Statement": [statement]}}
    return {
        "isAuthorized": token.startswith("allow"),
        "context": {"token": token, "calls": calls, "seen": event},
    }
