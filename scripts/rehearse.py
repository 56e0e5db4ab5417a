#!/usr/bin/env python3
"""The deploy rehearsal: template.yaml as AWS would run it, on this machine.

    scripts/rehearse.py --bootstrap-dir DIR [--stage dev ...] [--driver PATH]

For each stage of samconfig.toml, with that stage's parameter overrides:

1. The template is translated by the SAM translator (aws-sam-translator, the package sam-cli and
   cfn-lint use) into plain CloudFormation. Everything below is taken from that translation, never
   from a hand-written copy: each function's environment, its role's policies, its alias, its
   event sources and its event-invoke configuration.
2. moto's server runs in this process with IAM enforcement (INITIAL_NO_AUTH_ACTION_COUNT). The
   resources moto's CloudFormation can host (tables, queue, topic, log groups, the function roles)
   are created as a stack on it; the rest is checked statically (see docs/DECISIONS.md).
3. Each built `bootstrap` runs under the project's Lambda Runtime API (`valine-e2e`'s `rehearse`
   binary) with exactly its function's environment and the credentials of its role (assumed
   through moto's STS), against a realistic sequence of events.

It fails on any AccessDenied, any answer other than the expected one, any job invocation that is
not qualified with the alias (or not allowed by the role), any stage whose `/health/ready` is not
200 (naming the parameter to set), and any static check of the translation.
"""

import argparse
import copy
import json
import os
import re
import secrets
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
ACCOUNT = "123456789012"
PARTITION = "aws"
# moto's CloudFormation creates these types; the rest of the translation is checked statically.
HOSTED_TYPES = {
    "AWS::DynamoDB::Table",
    "AWS::SQS::Queue",
    "AWS::SNS::Topic",
    "AWS::Logs::LogGroup",
    "AWS::IAM::Role",
}
# Lambda keeps a function's whole environment (names and values) within 4 KB.
ENV_LIMIT = 4096
# What each function's handler is, by the binary its Metadata names.
HANDLERS = {"discord-handler": "discord", "github-handler": "github"}
# A fixed signing seed: the rehearsal signs interactions, the secret holds the public key.
SEED = bytes(range(1, 33))

failures = []


def fail(stage, what):
    failures.append(f"{stage}: {what}")
    print(f"  [FAIL] {what}")


def ok(what):
    print(f"  [ok] {what}")


# ---------------------------------------------------------------------------------------------
# samconfig.toml and the translation


def stages_of(samconfig):
    """{stage: {parameter: value}} from each `<stage>.deploy.parameters.parameter_overrides`."""
    doc = tomllib.loads(samconfig.read_text())
    out = {}
    for stage, sections in doc.items():
        params = sections.get("deploy", {}).get("parameters") if isinstance(sections, dict) else None
        if not params:
            continue
        overrides = params.get("parameter_overrides", "")
        if isinstance(overrides, list):
            overrides = " ".join(overrides)
        values = {}
        for item in shlex.split(overrides):
            name, _, value = item.partition("=")
            values[name] = value
        out[stage] = {"parameters": values, "stack_name": params.get("stack_name", f"valine-orchestrator-{stage}")}
    return out


def translate(template_text, parameters):
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    template = yaml_parse(template_text)
    for resource in template["Resources"].values():
        # `sam package` replaces the local code path with the uploaded artifact.
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://valine-rehearsal/bootstrap.zip"

    class ManagedPolicies:
        def load(self):
            return {
                "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
                "AWSXrayWriteOnlyAccess": "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
            }

    return transform(template, dict(parameters), ManagedPolicies())


# ---------------------------------------------------------------------------------------------
# Intrinsic functions


NO_VALUE = object()


class Resolver:
    """Resolves CloudFormation's intrinsic functions in the translated template."""

    def __init__(self, cfn, parameters, stack_name):
        self.cfn = cfn
        self.params = {}
        for name, spec in cfn.get("Parameters", {}).items():
            value = parameters.get(name, spec.get("Default"))
            if value is None:
                raise SystemExit(f"parameter {name} has no value and no default")
            self.params[name] = str(value)
        self.pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": PARTITION,
            "AWS::StackName": stack_name,
            "AWS::URLSuffix": "amazonaws.com",
        }
        self.refs = {}
        self.attrs = {}
        self.conditions = {}
        for name, expr in cfn.get("Conditions", {}).items():
            self.conditions[name] = None
        for name in list(self.conditions):
            self.conditions[name] = self.condition(name)

    def condition(self, name):
        value = self.conditions.get(name)
        if value is None:
            value = bool(self.value(self.cfn["Conditions"][name]))
            self.conditions[name] = value
        return value

    def ref(self, name):
        if name in self.params:
            return self.params[name]
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.refs:
            return self.refs[name]
        raise KeyError(f"Ref {name}: not resolved")

    def getatt(self, resource, attr):
        if (resource, attr) in self.attrs:
            return self.attrs[(resource, attr)]
        raise KeyError(f"GetAtt {resource}.{attr}: not resolved")

    def sub(self, text, variables=None):
        variables = variables or {}

        def one(m):
            name = m.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(self.value(variables[name]))
            if "." in name:
                resource, attr = name.split(".", 1)
                return str(self.getatt(resource, attr))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def value(self, node):
        if isinstance(node, list):
            return [v for v in (self.value(x) for x in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                resource, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.getatt(resource, attr)
            if key == "Fn::Sub":
                return self.sub(arg) if isinstance(arg, str) else self.sub(arg[0], arg[1])
            if key == "Fn::If":
                name, yes, no = arg
                return self.value(yes if self.condition(name) else no)
            if key == "Fn::Equals":
                a, b = (self.value(x) for x in arg)
                return str(a) == str(b)
            if key == "Fn::Not":
                return not self.value(arg[0])
            if key == "Fn::And":
                return all(self.value(x) for x in arg)
            if key == "Fn::Or":
                return any(self.value(x) for x in arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::Join":
                return arg[0].join(str(x) for x in self.value(arg[1]))
            if key == "Fn::FindInMap":
                m, a, b = (self.value(x) for x in arg)
                return self.cfn["Mappings"][m][a][b]
            if key == "Fn::Select":
                return self.value(arg[1])[int(self.value(arg[0]))]
            if key == "Fn::Split":
                return str(self.value(arg[1])).split(arg[0])
        out = {}
        for k, v in node.items():
            v = self.value(v)
            if v is not NO_VALUE:
                out[k] = v
        return out


# ---------------------------------------------------------------------------------------------
# moto, with IAM enforced the way AWS enforces it


def start_moto(port):
    """moto's server in a thread, one request at a time (see scripts/moto-dynamodb.py), with its
    IAM checks taught the resources and per-item actions AWS authorizes."""
    os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "inf"
    import moto_iam

    moto_iam.install()
    from moto.server import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def one_at_a_time(environ, start_response):
        with lock:
            return list(app(environ, start_response))

    server = make_server("127.0.0.1", port, one_at_a_time, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def enforce_iam(endpoint, on):
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        data=b"0" if on else b"inf",
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    urllib.request.urlopen(request).read()


def client(service, endpoint, creds=None):
    import boto3

    creds = creds or {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION, **creds)


# ---------------------------------------------------------------------------------------------
# One stage


def hosted_subset(cfn):
    """The resources moto's CloudFormation can create, with the outputs that name only them."""
    resources = {k: v for k, v in cfn["Resources"].items() if v["Type"] in HOSTED_TYPES}
    # A role's only references are to hosted resources and parameters: keep the same text.
    names = set(resources)

    def refs(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "Ref" and isinstance(v, str):
                    yield v
                elif k == "Fn::GetAtt":
                    yield v[0] if isinstance(v, list) else v.split(".")[0]
                elif k == "Fn::Sub":
                    text = v if isinstance(v, str) else v[0]
                    for m in re.finditer(r"\$\{([^}.!]+)", text):
                        yield m.group(1)
                    yield from refs(v)
                else:
                    yield from refs(v)
        elif isinstance(node, list):
            for x in node:
                yield from refs(x)

    params = set(cfn.get("Parameters", {}))
    outputs = {}
    for name, out in cfn.get("Outputs", {}).items():
        used = set(refs(out)) - params
        if all(u in names or u.startswith("AWS::") for u in used):
            outputs[name] = out
    sub = copy.deepcopy({k: cfn[k] for k in ("AWSTemplateFormatVersion", "Parameters", "Conditions", "Mappings") if k in cfn})
    sub["Resources"] = resources
    sub["Outputs"] = outputs
    return sub


def rehearse_stage(stage, spec, template_text, args, endpoint, workdir):
    print(f"\n== stage {stage}: {spec['stack_name']} with {' '.join(f'{k}={v}' for k, v in spec['parameters'].items())}")
    params = dict(spec["parameters"])
    cfn = translate(template_text, params)
    resolver = Resolver(cfn, params, spec["stack_name"])
    resources = cfn["Resources"]

    # --- Host what moto can, as a stack.
    enforce_iam(endpoint, False)
    cloudformation = client("cloudformation", endpoint)
    subset = hosted_subset(cfn)
    cloudformation.create_stack(
        StackName=spec["stack_name"],
        TemplateBody=json.dumps(subset),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in resolver.params.items() if k in subset.get("Parameters", {})],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
    )
    stack = cloudformation.describe_stacks(StackName=spec["stack_name"])["Stacks"][0]
    if stack["StackStatus"] != "CREATE_COMPLETE":
        fail(stage, f"moto could not create the stack: {stack['StackStatus']} {stack.get('StackStatusReason')}")
        return
    physical = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cloudformation.list_stack_resources(StackName=spec["stack_name"])["StackResourceSummaries"]
    }
    ok(f"moto's CloudFormation created {len(physical)} resources: {', '.join(sorted(physical))}")
    iam = client("iam", endpoint)
    for logical, res in resources.items():
        t = res["Type"]
        pid = physical.get(logical)
        if t == "AWS::DynamoDB::Table":
            resolver.refs[logical] = pid
            resolver.attrs[(logical, "Arn")] = client("dynamodb", endpoint).describe_table(TableName=pid)["Table"]["TableArn"]
        elif t == "AWS::SQS::Queue":
            resolver.refs[logical] = pid
            attrs = client("sqs", endpoint).get_queue_attributes(QueueUrl=pid, AttributeNames=["QueueArn"])
            resolver.attrs[(logical, "Arn")] = attrs["Attributes"]["QueueArn"]
            resolver.attrs[(logical, "QueueName")] = pid.rsplit("/", 1)[-1]
        elif t == "AWS::IAM::Role":
            resolver.refs[logical] = pid
            resolver.attrs[(logical, "Arn")] = iam.get_role(RoleName=pid)["Role"]["Arn"]
            # moto's CloudFormation keeps an inline policy as a mapping, which its IAM checks
            # cannot read: keep each one, unchanged, as the JSON text IAM keeps.
            from moto.iam.models import iam_backends

            role = iam_backends[ACCOUNT][PARTITION].get_role(pid)
            for name, document in list(role.policies.items()):
                if not isinstance(document, str):
                    role.policies[name] = json.dumps(document)
        elif pid:
            resolver.refs[logical] = pid
    # What is not hosted gets the names AWS would give it.
    for logical, res in resources.items():
        t, props = res["Type"], res.get("Properties", {})
        if t == "AWS::Lambda::Function":
            name = resolver.value(props["FunctionName"])
            resolver.refs[logical] = name
            resolver.attrs[(logical, "Arn")] = f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{name}"
    for logical, res in resources.items():
        t, props = res["Type"], res.get("Properties", {})
        if t == "AWS::Lambda::Version":
            fn = resolver.value(props["FunctionName"])
            resolver.refs[logical] = f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{fn}:1"
            resolver.attrs[(logical, "Version")] = "1"
        elif t == "AWS::Lambda::Alias":
            fn = resolver.value(props["FunctionName"])
            resolver.refs[logical] = f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{fn}:{props['Name']}"
        elif t not in HOSTED_TYPES and logical not in resolver.refs:
            resolver.refs[logical] = f"{spec['stack_name']}-{logical}"
            resolver.attrs[(logical, "Arn")] = f"arn:{PARTITION}:rehearsal:{REGION}:{ACCOUNT}:{logical}"
            resolver.attrs[(logical, "QueueName")] = logical

    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    for key in ("AuditTableName", "RunsTableName", "StateTableName"):
        if key not in outputs:
            fail(stage, f"the stack on moto has no {key} output (valinectl --stage reads it)")

    # --- The secret, as the README's step 2 creates it.
    key_pub = public_key_hex(SEED)
    webhook_secret = secrets.token_hex(20)
    secret_id = resolver.value(resources["DiscordFunction"]["Properties"]["Environment"]["Variables"]["SECRET_ID"])
    client("secretsmanager", endpoint).create_secret(
        Name=secret_id,
        SecretString=json.dumps(
            {
                "DISCORD_PUBLIC_KEY": key_pub,
                "DISCORD_BOT_TOKEN": "rehearsal-bot-" + secrets.token_hex(12),
                "GITHUB_TOKEN": "rehearsal-github-" + secrets.token_hex(12),
                "GITHUB_WEBHOOK_SECRET": webhook_secret,
                "AUDIT_HMAC_KEY": secrets.token_hex(32),
            }
        ),
    )

    # --- Static checks of the translation.
    functions = {k: v for k, v in resources.items() if v["Type"] == "AWS::Lambda::Function"}
    plan_functions = []
    roles = {}
    for logical, res in functions.items():
        props = res["Properties"]
        binary = res.get("Metadata", {}).get("BuildProperties", {}).get("Binary")
        if binary not in HANDLERS:
            fail(stage, f"{logical}: Metadata names no known binary ({binary})")
            continue
        raw_env = props.get("Environment", {}).get("Variables", {})
        text = json.dumps(raw_env)
        if "resolve:secretsmanager" in text or "resolve:ssm-secure" in text:
            fail(stage, f"{logical}: a secret is resolved into the function's configuration")
        env = {k: str(v) for k, v in resolver.value(raw_env).items()}
        size = sum(len(k) + len(v) for k, v in env.items())
        if size > ENV_LIMIT:
            fail(stage, f"{logical}: its environment is {size} bytes, over Lambda's {ENV_LIMIT}")
        else:
            ok(f"{logical}: environment of {len(env)} variables, {size} of {ENV_LIMIT} bytes, no secret in it")
        name = resolver.value(props["FunctionName"])
        aliases = [r for r in resources.values() if r["Type"] == "AWS::Lambda::Alias" and r["Properties"]["FunctionName"] == {"Ref": logical}]
        if len(aliases) != 1:
            fail(stage, f"{logical}: {len(aliases)} aliases")
            continue
        alias = aliases[0]["Properties"]["Name"]
        alias_arn = f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{name}:{alias}"
        role_logical = props["Role"]["Fn::GetAtt"][0]
        roles[logical] = (role_logical, physical[role_logical], alias_arn)
        check_event_sources(stage, resources, resolver, logical, alias, alias_arn)
        plan_functions.append(
            {
                "handler": HANDLERS[binary],
                "logical": logical,
                "binary": str(Path(args.bootstrap_dir) / logical / "bootstrap"),
                "function_name": name,
                "alias_arn": alias_arn,
                "env": env,
            }
        )
    check_tables(stage, resources)
    check_secret_grant(stage, resources, resolver, secret_id)
    if stage == "prod":
        for logical, res in functions.items():
            if "ReservedConcurrentExecutions" not in resolver.value(res["Properties"]):
                fail(stage, f"{logical}: no reserved concurrency in prod")
        ok("prod reserves concurrency for both functions")

    # --- Credentials: each role, assumed, as Lambda does; an operator for the rotation.
    sts = client("sts", endpoint)
    for f in plan_functions:
        role_logical, role_name, _ = roles[f["logical"]]
        role_arn = iam.get_role(RoleName=role_name)["Role"]["Arn"]
        c = sts.assume_role(RoleArn=role_arn, RoleSessionName=f["function_name"])["Credentials"]
        f["credentials"] = {"access_key_id": c["AccessKeyId"], "secret_access_key": c["SecretAccessKey"], "session_token": c["SessionToken"]}
    operator = f"rehearsal-operator-{stage}"
    iam.create_user(UserName=operator)
    iam.put_user_policy(
        UserName=operator,
        PolicyName="rotate",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"], "Resource": "*"}]}),
    )
    key = iam.create_access_key(UserName=operator)["AccessKey"]

    guilds = [g for g in resolver.params.get("AllowedGuildIds", "").split(",") if g.strip()]
    plan = {
        "stage": stage,
        "moto": endpoint,
        "region": REGION,
        "secret_id": secret_id,
        "operator": {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]},
        "seed_hex": SEED.hex(),
        "webhook_secret": webhook_secret,
        "rotated_webhook_secret": secrets.token_hex(20),
        "repo": resolver.params.get("GitHubRepo") or "valine-ops/valine",
        "guild_id": int(guilds[0]) if guilds else 1300000000000000000,
        "functions": plan_functions,
        "results": str(workdir / f"{stage}-results.json"),
        "log_dir": str(workdir),
    }
    plan_path = workdir / f"{stage}-plan.json"
    plan_path.write_text(json.dumps(plan, indent=1))

    # --- Run the functions with IAM enforced.
    enforce_iam(endpoint, True)
    try:
        code = subprocess.run([args.driver, str(plan_path)]).returncode
    finally:
        enforce_iam(endpoint, False)
    results = json.loads(Path(plan["results"]).read_text()) if Path(plan["results"]).exists() else None
    if results is None:
        fail(stage, f"the rehearse binary wrote no results (exit {code})")
        return
    for c in results["checks"]:
        if not c["ok"]:
            fail(stage, f"{c['function']}: {c['step']}: {c['detail'][:600]}")
    for line in results["access_denied"]:
        fail(stage, f"AccessDenied in the log: {line}")
    params_of = parameters_of(template_text)
    for handler, body in results["not_ready"].items():
        problems = body.get("checks", {}).get("config", {})
        named = [f"{v} (parameter {params_of.get(v, 'none: a key of the secret')})" for v in problems.get("missing", [])]
        fail(stage, f"{handler}: /health/ready is not 200 with this stage's parameters: set {', '.join(named) or body}")
    check_job_invocations(stage, resources, resolver, roles, results["job_invocations"], endpoint)
    if code != 0 and not any(f.startswith(f"{stage}:") for f in failures):
        fail(stage, f"the rehearse binary exited {code}")


def check_event_sources(stage, resources, resolver, logical, alias, alias_arn):
    """The API's routes, the schedule and the event-invoke configuration all name the alias."""
    alias_logical = f"{logical}Alias{alias}"
    for name, res in resources.items():
        t, props = res["Type"], res.get("Properties", {})
        if t == "AWS::Lambda::EventInvokeConfig" and props.get("FunctionName") == {"Ref": logical}:
            if props.get("Qualifier") != alias:
                fail(stage, f"{name}: the retry, age and on-failure settings are on {props.get('Qualifier')}, not the alias {alias}")
            else:
                ok(f"{logical}: async settings (retries {props.get('MaximumRetryAttempts')}, age {props.get('MaximumEventAgeInSeconds')} s, on-failure queue) are on :{alias}")
        if t == "AWS::Events::Rule":
            for target in props.get("Targets", []):
                if target.get("Arn") in ({"Ref": logical}, {"Fn::GetAtt": [logical, "Arn"]}):
                    fail(stage, f"{name}: the schedule invokes the unqualified function")
                elif target.get("Arn") == {"Ref": alias_logical}:
                    ok(f"{name}: {props.get('ScheduleExpression')} invokes {logical}:{alias}")
        if t == "AWS::Lambda::Permission" and props.get("FunctionName") == {"Ref": logical}:
            fail(stage, f"{name}: a permission on the unqualified function")
    api = [r for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Api"]
    for a in api:
        for path, methods in a["Properties"].get("Body", {}).get("paths", {}).items():
            for method, spec in methods.items():
                uri = json.dumps(spec.get("x-amazon-apigateway-integration", {}).get("uri", ""))
                if f"${{{logical}." in uri or f"${{{logical}}}" in uri:
                    fail(stage, f"{method.upper()} {path} calls the unqualified {logical}")
                elif alias_logical in uri:
                    ok(f"{method.upper()} {path} calls {logical}:{alias}")


def check_tables(stage, resources):
    for logical in ("AuditTable", "StateTable", "RunsTable"):
        res = resources[logical]
        pitr = res["Properties"].get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled")
        if res.get("DeletionPolicy") != "Retain" or not pitr:
            fail(stage, f"{logical}: needs DeletionPolicy Retain and point-in-time recovery")
    ok("audit, state and runs tables: DeletionPolicy Retain, point-in-time recovery")


def check_secret_grant(stage, resources, resolver, secret_id):
    """GetSecretValue on that one secret only, for each function role."""
    for logical, res in resources.items():
        if res["Type"] != "AWS::IAM::Role" or not logical.endswith("FunctionRole"):
            continue
        grants = []
        for policy in res["Properties"].get("Policies", []):
            for st in resolver.value(policy["PolicyDocument"])["Statement"]:
                actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
                if any(a.startswith("secretsmanager:") or a == "*" for a in actions):
                    grants.append((actions, st["Resource"]))
        expected = f"arn:{PARTITION}:secretsmanager:{REGION}:{ACCOUNT}:secret:{secret_id}-??????"
        if grants != [(["secretsmanager:GetSecretValue"], expected)]:
            fail(stage, f"{logical}: secretsmanager grants {grants}, expected GetSecretValue on {expected} only")
        else:
            ok(f"{logical}: secretsmanager:GetSecretValue on {secret_id} only")


def check_job_invocations(stage, resources, resolver, roles, invocations, endpoint):
    """Each deferred job was invoked on the alias, and the function's role allows it."""
    from moto.iam.policy_validation import IAMPolicyDocumentValidator  # noqa: F401  (moto is importable)
    from moto.iam.access_control import IAMPolicy, PermissionResult

    iam = client("iam", endpoint)
    for function, qualifier in invocations:
        arn = function if qualifier is None else f"{function}:{qualifier}"
        owner = next((l for l, (_, _, alias_arn) in roles.items() if arn == alias_arn or arn.rsplit(":", 1)[0] == alias_arn.rsplit(":", 1)[0]), None)
        if owner is None or arn != roles[owner][2]:
            fail(stage, f"a deferred job invoked {arn!r}, not the alias it came through")
            continue
        role_name = roles[owner][1]
        documents = [
            json.dumps(iam.get_role_policy(RoleName=role_name, PolicyName=p)["PolicyDocument"])
            for p in iam.list_role_policies(RoleName=role_name)["PolicyNames"]
        ]
        results = [IAMPolicy(d).is_action_permitted("lambda:InvokeFunction", arn) for d in documents]
        if PermissionResult.DENIED in results or PermissionResult.PERMITTED not in results:
            fail(stage, f"{owner}'s role does not allow lambda:InvokeFunction on {arn}")
        else:
            ok(f"the deferred job invoked {arn}, which {owner}'s role allows")
    if not invocations:
        fail(stage, "no deferred job was invoked")


def parameters_of(template_text):
    """Variable → the template parameter that sets it (`NAME: !Ref Param`)."""
    return dict(re.findall(r"^\s+([A-Z][A-Z0-9_]+): !Ref ([A-Za-z0-9]+)\s*$", template_text, re.M))


def public_key_hex(seed):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives import serialization

    key = Ed25519PrivateKey.from_private_bytes(seed)
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def check_docs(cfn_any):
    """The README and RUNBOOK name every permission the translation needs."""
    runbook = (ROOT / "docs" / "RUNBOOK.md").read_text()
    services = sorted({r["Type"].split("::")[1] for r in cfn_any["Resources"].values()})
    words = {
        "DynamoDB": "DynamoDB", "SQS": "SQS", "SNS": "SNS", "Logs": "CloudWatch Logs", "CloudWatch": "CloudWatch",
        "Lambda": "Lambda", "IAM": "IAM", "ApiGatewayV2": "API Gateway", "Events": "EventBridge", "CodeDeploy": "CodeDeploy",
    }
    section = runbook.split("### The deploy role's permissions", 1)[-1].split("\n## ", 1)[0] if "### The deploy role's permissions" in runbook else ""
    missing = [words.get(s, s) for s in services if words.get(s, s) not in section]
    if not section or missing:
        fail("docs", f"docs/RUNBOOK.md, \"The deploy role's permissions\", does not name: {', '.join(missing) or 'the section is missing'}")
    else:
        ok(f"docs/RUNBOOK.md names the deploy role's permission for every service the template uses ({', '.join(services)})")
    for doc in ("README.md", "docs/RUNBOOK.md"):
        text = (ROOT / doc).read_text()
        for permission in ("Variables", "Secrets", "Webhooks", "Actions", "Deployments", "Metadata"):
            if not re.search(rf"{permission}\W[^.\n]*\b(read|write)", text):
                fail("docs", f"{doc}: the GitHub App's {permission} permission is not listed")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap-dir", required=True, help="sam build's output (…/<Function>/bootstrap)")
    parser.add_argument("--driver", default=str(ROOT / "target" / "release" / "rehearse"), help="the rehearse binary")
    parser.add_argument("--stage", action="append", help="only these stages (default: all of samconfig.toml)")
    parser.add_argument("--template", default=str(ROOT / "template.yaml"))
    parser.add_argument("--samconfig", default=str(ROOT / "samconfig.toml"))
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        os.environ.pop(var, None)
    os.environ.update({"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": REGION})

    template_text = Path(args.template).read_text()
    stages = stages_of(Path(args.samconfig))
    chosen = args.stage or list(stages)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = start_moto(port)
    endpoint = f"http://127.0.0.1:{port}"
    client("s3", endpoint).create_bucket(Bucket="valine-rehearsal")
    with tempfile.TemporaryDirectory(prefix="valine-rehearsal-") as tmp:
        workdir = Path(os.environ.get("REHEARSAL_DIR", tmp))
        workdir.mkdir(parents=True, exist_ok=True)
        for stage in chosen:
            if stage not in stages:
                fail(stage, "no such stage in samconfig.toml")
                continue
            try:
                rehearse_stage(stage, stages[stage], template_text, args, endpoint, workdir)
            except Exception as e:  # a failure of the rehearsal itself names the stage
                fail(stage, f"the rehearsal stopped: {type(e).__name__}: {e}")
        check_docs(translate(template_text, {}))
    server.shutdown()
    if failures:
        print(f"\nthe rehearsal FAILED ({len(failures)}):")
        for f in failures:
            print(f"  - {f}")
        return 1
    print(f"\nthe rehearsal passed for {', '.join(chosen)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
