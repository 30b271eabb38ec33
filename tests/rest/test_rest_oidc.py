"""OIDC against a real OpenID provider (node's oidc-provider, OpenID
Certified; tests/oidc/provider.mjs): camunda-orchestration-sdk gets tokens
by client credentials (CAMUNDA_AUTH_STRATEGY=OAUTH) and works; every REST
operation waggle serves answers 401 without a token, with an expired one,
one for another audience, one of a foreign issuer and garbage, and the
refused calls change nothing; a mapping rule on a token's claim gives it
the groups, roles and tenants the rule is in; a key rotation at the provider is followed
without a restart, and tokens of the dropped key stop working."""

import os
import re
import time
import warnings

import httpx
import pytest
import yaml

warnings.filterwarnings("ignore", category=DeprecationWarning)
from camunda_orchestration_sdk import CamundaClient  # noqa: E402

from conftest import wait_for_admin, fetch_token, free_port, oidc_env, running_broker, running_oidc_provider  # noqa: E402
from test_openapi_conformance import IMPLEMENTED, upstream_spec  # noqa: E402
from test_rest_api import MODEL, deploy  # noqa: E402


@pytest.fixture(scope="module")
def oidc():
    with running_oidc_provider() as issuer, running_oidc_provider() as foreign:
        # No clock skew: the short-lived client's tokens expire after 1 s.
        with running_broker(oidc_env(issuer, skew_ms=0), prefix="waggle-oidc-") as broker:
            wait_for_admin(broker, "Bearer " + fetch_token(issuer, "sdk-app"))
            yield broker, issuer, foreign


def sdk(broker, issuer, client_id="sdk-app"):
    return CamundaClient(
        configuration={
            "CAMUNDA_REST_ADDRESS": broker.rest_url,
            "CAMUNDA_AUTH_STRATEGY": "OAUTH",
            "CAMUNDA_CLIENT_ID": client_id,
            "CAMUNDA_CLIENT_SECRET": "secret",
            "CAMUNDA_OAUTH_URL": f"{issuer}/token",
            "CAMUNDA_TOKEN_AUDIENCE": "waggle-api",
        }
    )


def bad_tokens(issuer, foreign):
    """(what, authorization header or None) of every kind of refused caller."""
    expired = fetch_token(issuer, "short-lived")
    tokens = [
        ("no credentials", None),
        ("wrong audience", "Bearer " + fetch_token(issuer, "other-audience")),
        ("foreign issuer", "Bearer " + fetch_token(foreign, "sdk-app")),
        ("garbage", "Bearer not.a.jwt"),
        ("basic credentials", "Basic ZGVtbzpkZW1v"),
    ]
    time.sleep(2.1)
    return tokens + [("expired", "Bearer " + expired)]


def implemented_operations(templates=False):
    """(method, path) of every operation of Camunda's spec that waggle serves,
    path parameters filled in (or left as templates)."""
    with open(upstream_spec()) as f:
        spec = yaml.safe_load(f)
    operations = []
    for path, item in spec["paths"].items():
        if not re.match(IMPLEMENTED, path):
            continue
        for method in ("get", "post", "put", "patch", "delete"):
            if method in item:
                filled = path if templates else re.sub(r"\{[^}]+\}", "2251799813685249", path)
                operations.append((method.upper(), filled))
    return operations


def test_the_sdk_with_client_credentials_deploys(oidc, tmp_path):
    broker, issuer, _ = oidc
    c = sdk(broker, issuer)
    assert c.get_topology().cluster_size == 1
    definition = deploy(c, tmp_path, "rest_oidc", "rest-oidc-job")
    assert int(definition.process_definition_key) > 0
    me = httpx.get(f"{broker.rest_url}/v2/authentication/me", headers={"Authorization": "Bearer " + fetch_token(issuer, "sdk-app")})
    assert me.status_code == 200 and me.json()["username"] == "sdk-app"


def test_every_rest_operation_refuses_bad_tokens_and_changes_nothing(oidc):
    broker, issuer, foreign = oidc
    operations = implemented_operations()
    assert len(operations) > 40, operations
    model = MODEL.format(pid="oidc_refused", job_type="oidc-refused-job").encode()
    for what, header in bad_tokens(issuer, foreign):
        headers = {"Authorization": header} if header else {}
        for method, path in operations:
            response = httpx.request(method, f"{broker.rest_url}/v2{path}", headers=headers, json={}, timeout=30)
            assert response.status_code == 401, f"{what}: {method} {path}: {response.status_code} {response.text}"
            assert response.headers["www-authenticate"].startswith("Bearer"), f"{what}: {method} {path}"
        response = httpx.post(
            f"{broker.rest_url}/v2/deployments", headers=headers, files={"resources": ("oidc_refused.bpmn", model)}, timeout=30
        )
        assert response.status_code == 401, f"{what}: {response.text}"
    good = {"Authorization": "Bearer " + fetch_token(issuer, "sdk-app")}
    deployed = httpx.post(f"{broker.rest_url}/v2/deployments", headers=good, files={"resources": ("oidc_refused.bpmn", model)}, timeout=30)
    assert deployed.status_code == 200, deployed.text
    assert deployed.json()["deployments"][0]["processDefinition"]["processDefinitionVersion"] == 1, "a refused deployment got through"


def test_a_client_without_roles_is_forbidden_what_needs_a_permission(oidc):
    broker, issuer, _ = oidc
    headers = {"Authorization": "Bearer " + fetch_token(issuer, "no-roles")}
    open_to_all = {"/topology", "/status", "/authentication/me"}
    for method, path in implemented_operations():
        response = httpx.request(method, f"{broker.rest_url}/v2{path}", headers=headers, json={}, timeout=30)
        if path in open_to_all:
            assert response.status_code not in (401, 403), f"{method} {path}: {response.text}"
        else:
            assert response.status_code == 403, f"{method} {path}: {response.status_code} {response.text}"
            assert "no-roles" in response.json()["detail"]


def test_a_mapping_rule_gives_a_token_its_groups_roles_and_tenants(oidc):
    """The client no-roles holds nothing itself. A mapping rule on its token's
    client_id claim, in a group that is in readonly-admin and in a tenant,
    lets it read (not deploy) and names the group, role and tenant in
    /authentication/me; once the rule is deleted it is refused again."""
    broker, issuer, _ = oidc
    admin = {"Authorization": "Bearer " + fetch_token(issuer, "sdk-app")}
    caller = {"Authorization": "Bearer " + fetch_token(issuer, "no-roles")}
    api = f"{broker.rest_url}/v2"

    def call(method, path, headers=admin, body=None):
        return httpx.request(method, f"{api}{path}", headers=headers, json=body, timeout=30)

    search = lambda: call("POST", "/process-definitions/search", caller, {})  # noqa: E731
    assert search().status_code == 403
    for method, path, body in [
        ("POST", "/groups", {"groupId": "auditors", "name": "Auditors"}),
        ("POST", "/tenants", {"tenantId": "acme", "name": "Acme"}),
        ("POST", "/mapping-rules", {"mappingRuleId": "no-roles-app", "claimName": "client_id", "claimValue": "no-roles", "name": "no-roles"}),
        ("PUT", "/groups/auditors/mapping-rules/no-roles-app", None),
        ("PUT", "/roles/readonly-admin/groups/auditors", None),
        ("PUT", "/tenants/acme/groups/auditors", None),
    ]:
        response = call(method, path, body=body)
        assert response.status_code in (201, 204), f"{method} {path}: {response.text}"
    members = call("POST", "/groups/auditors/mapping-rules/search", body={}).json()["items"]
    assert [m["claimValue"] for m in members] == ["no-roles"]
    roles = call("POST", "/groups/auditors/roles/search", body={}).json()["items"]
    assert [r["roleId"] for r in roles] == ["readonly-admin"]

    assert search().status_code == 200
    me = call("GET", "/authentication/me", caller).json()
    assert me["groups"] == ["auditors"] and me["roles"] == ["readonly-admin"], me
    assert [t["tenantId"] for t in me["tenants"]] == ["acme"], me
    model = MODEL.format(pid="mapped_refused", job_type="mapped-job").encode()
    refused = httpx.post(f"{api}/deployments", headers=caller, files={"resources": ("m.bpmn", model)}, timeout=30)
    assert refused.status_code == 403, refused.text

    assert call("DELETE", "/mapping-rules/no-roles-app").status_code == 204
    assert search().status_code == 403
    assert call("POST", "/groups/auditors/mapping-rules/search", body={}).json()["items"] == []
    for path in ("/groups/auditors", "/tenants/acme"):
        assert call("DELETE", path).status_code == 204
    assert call("GET", "/groups/auditors").status_code == 404


def test_a_key_rotation_is_followed_without_a_restart():
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    topology = lambda broker, headers: httpx.get(f"{broker.rest_url}/v2/topology", headers=headers, timeout=30)  # noqa: E731
    with running_broker(oidc_env(issuer), prefix="waggle-oidc-rotation-") as broker:
        with running_oidc_provider(port):
            old = {"Authorization": "Bearer " + fetch_token(issuer, "sdk-app")}
            assert topology(broker, old).status_code == 200
        # The provider is down: the keys the broker holds still verify.
        assert topology(broker, old).status_code == 200
        # The same issuer again, with a new signing key.
        with running_oidc_provider(port):
            new = {"Authorization": "Bearer " + fetch_token(issuer, "sdk-app")}
            response = topology(broker, new)
            assert response.status_code == 200, response.text
            response = topology(broker, old)
            assert response.status_code == 401, response.text
            assert "does not publish" in response.json()["detail"]
    # A broker that never reached the provider answers 503, naming it.
    with running_broker(oidc_env(issuer), prefix="waggle-oidc-down-") as broker:
        response = topology(broker, new)
        assert response.status_code == 503, response.text
        assert issuer in response.json()["detail"]
