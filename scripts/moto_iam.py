"""moto's IAM checks, taught to authorize the way AWS does for what the rehearsal exercises.

moto (when told to, with INITIAL_NO_AUTH_ACTION_COUNT) checks every request's signature and
action against the caller's policies, but for DynamoDB and Secrets Manager it checks the action on
the resource `*`, so a policy naming a table or a secret never matches; it names a transaction by
its operation (`dynamodb:TransactWriteItems`, which IAM has no such action for: AWS authorizes each
item as PutItem, UpdateItem, DeleteItem or ConditionCheckItem); and it reads `?` in a policy as a
regular expression. `install()` fixes those three, in this process, for scripts/rehearse.py.
"""

import json
import re
from urllib.parse import urlparse

from moto import settings
from moto.core.authorization import ActionAuthenticatorMixin
from moto.iam import access_control

TRANSACT_WRITE = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}


def iam_match(pattern, string):
    """IAM's wildcards: `*` any run of characters, `?` exactly one; the rest is literal."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.match(f"^{regex}$", string, re.S)


def _body(handler):
    """The request's JSON, as sent (moto replaces `body` with its own parse of it later)."""
    try:
        return json.loads(handler.raw_body or b"{}")
    except (TypeError, ValueError):
        return {}


def dynamodb_pairs(handler):
    """(action, resource) pairs AWS checks for one DynamoDB request."""
    action = handler._get_action()
    body = _body(handler)

    def arn(table):
        return f"arn:aws:dynamodb:{handler.region}:{handler.current_account}:table/{table}"

    if action in ("BatchGetItem", "BatchWriteItem"):
        return [(action, arn(t)) for t in body.get("RequestItems", {})] or [(action, "*")]
    if action == "TransactWriteItems":
        return [(TRANSACT_WRITE[k], arn(v["TableName"])) for item in body.get("TransactItems", []) for k, v in item.items()]
    if action == "TransactGetItems":
        return [("GetItem", arn(item["Get"]["TableName"])) for item in body.get("TransactItems", [])]
    if "TableName" in body:
        resource = arn(body["TableName"])
        if body.get("IndexName"):
            resource += "/index/" + body["IndexName"]
        return [(action, resource)]
    return [(action, "*")]


def secretsmanager_pairs(handler):
    from moto.secretsmanager.models import secretsmanager_backends

    action = handler._get_action()
    secret_id = _body(handler).get("SecretId")
    if not secret_id:
        return [(action, "*")]
    secret = secretsmanager_backends[handler.current_account][handler.region].secrets.get(secret_id)
    return [(action, secret.arn if secret else secret_id)]


def authorize(handler, pairs):
    if ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
        ActionAuthenticatorMixin.request_count += 1
        return
    parsed = urlparse(handler.uri)
    path = parsed.path + ("?" + parsed.query if parsed.query else "")
    for i, (action, resource) in enumerate(pairs):
        request = access_control.IAMRequest(
            account_id=handler.current_account,
            method=handler.method,
            path=path,
            data=handler.data,
            body=handler.raw_body,
            headers=handler.headers,
            action=action,
        )
        if i == 0:
            request.check_signature()
        request.check_action_permitted(resource)


def install():
    from moto.dynamodb.responses import DynamoHandler
    from moto.secretsmanager.responses import SecretsManagerResponse

    access_control.IAMPolicyStatement._match = staticmethod(iam_match)
    DynamoHandler._authenticate_and_authorize_normal_action = lambda self, resource="*": authorize(self, dynamodb_pairs(self))
    SecretsManagerResponse._authenticate_and_authorize_normal_action = lambda self, resource="*": authorize(
        self, secretsmanager_pairs(self)
    )
