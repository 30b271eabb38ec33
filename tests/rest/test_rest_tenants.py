"""Multi-tenancy over REST (security.multi_tenancy with basic
authentication): ann holds every permission the admin role holds but is a
member of tenant acme only. On the data of the default tenant she gets 403
where a request names the tenant and 404 where it names an entity by key,
her searches find none of it, and nothing she tried changed anything. Every
REST operation waggle serves is in the table below or named as not about a
tenant's data."""

import base64
import re

import httpx
import pytest

from conftest import running_broker, wait_for_admin
from test_rest_api import MODEL, USER_TASK_MODEL
from test_rest_oidc import implemented_operations

TIMEOUT_S = 30
DEMO = "Basic " + base64.b64encode(b"demo:demo").decode()
ANN = "Basic " + base64.b64encode(b"ann:ann-pw").decode()

# Operations about no tenant's data: identity, the cluster, the caller.
NOT_TENANT_DATA = re.compile(
    r"^/(authorizations|groups|mapping-rules|roles|tenants|users|authentication|status|topology)(/|$)"
)


@pytest.fixture(scope="module")
def tenants():
    env = {
        "WAGGLE_SECURITY_AUTHENTICATION": "basic",
        "WAGGLE_SECURITY_INITIAL_USER": "demo:demo",
        "WAGGLE_SECURITY_MULTI_TENANCY": "true",
    }
    with running_broker(env, prefix="waggle-tenants-") as broker:
        wait_for_admin(broker, DEMO)
        yield broker


def call(broker, method, path, auth=DEMO, **kwargs):
    return httpx.request(method, f"{broker.rest_url}/v2{path}", headers={"Authorization": auth}, timeout=TIMEOUT_S, **kwargs)


def ok(response, status=200):
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json() if response.content else None


def eventually(what, check):
    import time

    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {TIMEOUT_S} s")


def search(broker, resource, auth=DEMO, body=None):
    return ok(call(broker, "POST", f"/{resource}/search", auth, json=body or {}))["items"]


def demo_data(broker):
    """Keys of demo's data in the default tenant: a process with a job, an
    instance with an incident, a user task, and its element instances."""
    model = MODEL.format(pid="tenant_order", job_type="tenant-job").encode()
    deployed = ok(call(broker, "POST", "/deployments", files={"resources": ("order.bpmn", model)}))
    definition = deployed["deployments"][0]["processDefinition"]["processDefinitionKey"]
    ok(call(broker, "POST", "/deployments", files={"resources": ("review.bpmn", USER_TASK_MODEL.encode())}))
    keys = {"processDefinitionKey": definition, "resourceKey": definition}
    create = {"processDefinitionId": "tenant_order", "variables": {"orderId": "o-1"}}
    keys["processInstanceKey"] = ok(call(broker, "POST", "/process-instances", json=create))["processInstanceKey"]
    failing = ok(call(broker, "POST", "/process-instances", json=create))["processInstanceKey"]
    ok(call(broker, "POST", "/process-instances", json={"processDefinitionId": "rest_review", "variables": {"team": "t"}}))
    activation = {"type": "tenant-job", "timeout": 600_000, "maxJobsToActivate": 2}
    jobs = ok(call(broker, "POST", "/jobs/activation", json=activation))["jobs"]
    [job] = [j for j in jobs if j["processInstanceKey"] == keys["processInstanceKey"]]
    [other] = [j for j in jobs if j["processInstanceKey"] == failing]
    keys["jobKey"] = job["jobKey"]
    keys["elementInstanceKey"] = job["elementInstanceKey"]
    ok(call(broker, "POST", f"/jobs/{other['jobKey']}/failure", json={"retries": 0, "errorMessage": "boom"}), 204)
    keys["incidentKey"] = eventually("the incident is exported", lambda: search(broker, "incidents"))[0]["incidentKey"]
    keys["userTaskKey"] = eventually("the user task is exported", lambda: search(broker, "user-tasks"))[0]["userTaskKey"]
    keys["variableKey"] = eventually("a variable is exported", lambda: search(broker, "variables"))[0]["variableKey"]
    return keys


def ann_of_acme(broker):
    """ann: every permission of the admin role, member of acme only."""
    ok(call(broker, "POST", "/users", json={"username": "ann", "password": "ann-pw", "name": "Ann", "email": "ann@example.com"}), 201)
    ok(call(broker, "POST", "/tenants", json={"tenantId": "acme", "name": "Acme"}), 201)
    ok(call(broker, "PUT", "/tenants/acme/users/ann"), 204)
    grants = search(broker, "authorizations", body={"filter": {"ownerId": "admin"}})
    assert grants, "the admin role holds authorizations"
    for g in grants:
        grant = {k: g[k] for k in ("resourceType", "resourceId", "permissionTypes")}
        ok(call(broker, "POST", "/authorizations", json={**grant, "ownerId": "ann", "ownerType": "USER"}), 201)
    me = eventually("ann is in acme", lambda: (lambda r: r.status_code == 200 and r.json())(call(broker, "GET", "/authentication/me", ANN)))
    assert [t["tenantId"] for t in me["tenants"]] == ["acme"], me


def table(keys):
    """(method, path template, body, status) of every operation about
    tenant data, by ann on demo's data."""
    model = MODEL.format(pid="tenant_order", job_type="tenant-job").encode()
    return [
        ("POST", "/deployments", {"files": {"resources": ("order.bpmn", model)}}, 403),
        ("POST", "/process-instances", {"json": {"processDefinitionId": "tenant_order"}}, 403),
        ("POST", "/process-instances", {"json": {"processDefinitionKey": keys["processDefinitionKey"]}}, 403),
        ("POST", "/process-instances/{processInstanceKey}/cancellation", {}, 404),
        ("POST", "/jobs/activation", {"json": {"type": "tenant-job", "timeout": 1000, "maxJobsToActivate": 5}}, 403),
        ("POST", "/jobs/{jobKey}/completion", {"json": {}}, 404),
        ("POST", "/jobs/{jobKey}/failure", {"json": {"retries": 3}}, 404),
        ("POST", "/jobs/{jobKey}/error", {"json": {"errorCode": "E"}}, 404),
        ("PATCH", "/jobs/{jobKey}", {"json": {"changeset": {"retries": 5}}}, 404),
        ("POST", "/incidents/{incidentKey}/resolution", {}, 404),
        ("PUT", "/element-instances/{elementInstanceKey}/variables", {"json": {"variables": {"x": 1}}}, 404),
        ("POST", "/messages/publication", {"json": {"name": "tenant_order-paid", "correlationKey": "o-1"}}, 403),
        ("POST", "/signals/broadcast", {"json": {"signalName": "s"}}, 403),
        ("POST", "/decision-definitions/evaluation", {"json": {"decisionDefinitionId": "d"}}, 403),
        ("POST", "/resources/{resourceKey}/deletion", {}, 404),
        ("PATCH", "/user-tasks/{userTaskKey}", {"json": {"changeset": {"priority": 1}}}, 404),
        ("POST", "/user-tasks/{userTaskKey}/assignment", {"json": {"assignee": "ann"}}, 404),
        ("DELETE", "/user-tasks/{userTaskKey}/assignee", {}, 404),
        ("POST", "/user-tasks/{userTaskKey}/completion", {"json": {}}, 404),
        ("GET", "/process-definitions/{processDefinitionKey}", {}, 404),
        ("GET", "/process-definitions/{processDefinitionKey}/xml", {}, 404),
        ("GET", "/process-definitions/{processDefinitionKey}/form", {}, 404),
        ("GET", "/process-instances/{processInstanceKey}", {}, 404),
        ("GET", "/process-instances/{processInstanceKey}/call-hierarchy", {}, 404),
        ("GET", "/process-instances/{processInstanceKey}/statistics/element-instances", {}, 404),
        ("GET", "/element-instances/{elementInstanceKey}", {}, 404),
        ("GET", "/incidents/{incidentKey}", {}, 404),
        ("GET", "/user-tasks/{userTaskKey}", {}, 404),
        ("GET", "/user-tasks/{userTaskKey}/form", {}, 404),
        ("GET", "/variables/{variableKey}", {}, 404),
    ]


# Keyed reads of data demo has none of here (decisions): 404 for anyone.
NOTHING_TO_READ = {
    "/decision-definitions/{decisionDefinitionKey}",
    "/decision-definitions/{decisionDefinitionKey}/xml",
    "/decision-instances/{decisionEvaluationInstanceKey}",
    "/decision-requirements/{decisionRequirementsKey}",
    "/decision-requirements/{decisionRequirementsKey}/xml",
}


def test_a_user_of_another_tenant_is_refused_everything_and_changes_nothing(tenants):
    broker = tenants
    keys = demo_data(broker)
    ann_of_acme(broker)
    before = {r: len(search(broker, r)) for r in ("process-instances", "jobs", "incidents", "user-tasks", "variables")}
    rows = table(keys)

    # Every operation is in the table, is a search, or is about no tenant.
    covered = {(m, p) for m, p, _, _ in rows}
    for method, path in implemented_operations(templates=True):
        if NOT_TENANT_DATA.match(path) or path.endswith("/search") or path in NOTHING_TO_READ:
            continue
        assert (method, path) in covered, f"{method} {path} is missing from the table"

    for method, template, kwargs, status in rows:
        path = re.sub(r"\{(\w+)\}", lambda m: str(keys[m.group(1)]), template)
        response = call(broker, method, path, ANN, **kwargs)
        assert response.status_code == status, f"{method} {template}: {response.status_code} {response.text}"

    # Her searches find nothing of the default tenant; demo's find it all.
    for method, path in implemented_operations(templates=True):
        if path.endswith("/search") and not NOT_TENANT_DATA.match(path):
            items = ok(call(broker, "POST", path, ANN, json={}))["items"]
            assert items == [], f"{path}: {items}"
    after = {r: len(search(broker, r)) for r in before}
    assert after == before, "nothing changed"
    instance = ok(call(broker, "GET", f"/process-instances/{keys['processInstanceKey']}"))
    assert instance["state"] == "ACTIVE" and instance["tenantId"] == "<default>"
    # The job is still demo's: he completes it; the incident is open.
    ok(call(broker, "POST", f"/jobs/{keys['jobKey']}/completion", json={}), 204)
    assert ok(call(broker, "GET", f"/incidents/{keys['incidentKey']}"))["state"] == "ACTIVE"
    redeployed = ok(call(broker, "POST", "/deployments", files={"resources": ("order.bpmn", MODEL.format(pid="tenant_order", job_type="tenant-job").encode())}))
    assert redeployed["deployments"][0]["processDefinition"]["processDefinitionVersion"] == 1, "no deployment got through"


def test_a_member_of_acme_works_in_acme(tenants):
    broker = tenants
    model = MODEL.format(pid="acme_order", job_type="acme-job").encode()
    deployed = ok(call(broker, "POST", "/deployments", ANN, files={"resources": ("acme.bpmn", model)}, data={"tenantId": "acme"}))
    assert deployed["tenantId"] == "acme"
    assert deployed["deployments"][0]["processDefinition"]["tenantId"] == "acme"
    created = ok(call(broker, "POST", "/process-instances", ANN, json={"processDefinitionId": "acme_order", "tenantId": "acme", "variables": {"orderId": "a"}}))
    assert created["tenantId"] == "acme"
    activation = {"type": "acme-job", "timeout": 60_000, "maxJobsToActivate": 5, "tenantIds": ["acme"]}
    [job] = ok(call(broker, "POST", "/jobs/activation", ANN, json=activation))["jobs"]
    assert job["tenantId"] == "acme"
    ok(call(broker, "POST", f"/jobs/{job['jobKey']}/completion", ANN, json={}), 204)
    published = ok(call(broker, "POST", "/messages/publication", ANN, json={"name": "acme_order-paid", "correlationKey": "a", "timeToLive": 60_000, "tenantId": "acme"}))
    assert published["tenantId"] == "acme"
    key = created["processInstanceKey"]
    eventually("the acme instance completes", lambda: ok(call(broker, "GET", f"/process-instances/{key}", ANN))["state"] == "COMPLETED")
    # demo, in the default tenant only, does not see it.
    assert call(broker, "GET", f"/process-instances/{key}").status_code == 404
    assert all(i["tenantId"] == "<default>" for i in search(broker, "process-instances"))
