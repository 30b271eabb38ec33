"""Process instance modification, migration and start instructions over the
REST API v2 of `waggle dev` (raw HTTP with the bodies of Camunda 8.8's
specification): 204 on success, problem+json naming the element otherwise."""

import json
import os
import time
import urllib.error
import urllib.request

# Bound on every wait in these tests.
TIMEOUT_S = 30


def model(pid, *tasks):
    """start → each (id, job type) service task in turn → end."""
    ids = ["start"] + [t[0] for t in tasks] + ["end"]
    body = ['<bpmn:startEvent id="start"/>']
    body += [
        f'<bpmn:serviceTask id="{i}"><bpmn:extensionElements><zeebe:taskDefinition type="{j}"/></bpmn:extensionElements></bpmn:serviceTask>'
        for i, j in tasks
    ]
    body.append('<bpmn:endEvent id="end"/>')
    body += [f'<bpmn:sequenceFlow id="f{n}" sourceRef="{a}" targetRef="{b}"/>' for n, (a, b) in enumerate(zip(ids, ids[1:]))]
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="t">
  <bpmn:process id="{pid}" isExecutable="true">{"".join(body)}</bpmn:process>
</bpmn:definitions>"""


def call(broker, method, path, body=None, data=None, content_type="application/json"):
    if body is not None:
        data = json.dumps(body).encode()
    request = urllib.request.Request(broker.rest_url + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as r:
            text = r.read()
            return r.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        text = e.read()
        return e.code, json.loads(text) if text else None


def deploy(broker, name, xml):
    boundary = "waggle-test-boundary"
    data = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"resources\"; filename=\"{name}\"\r\n"
        f"Content-Type: application/xml\r\n\r\n{xml}\r\n--{boundary}--\r\n"
    ).encode()
    status, result = call(broker, "POST", "/v2/deployments", data=data, content_type=f"multipart/form-data; boundary={boundary}")
    assert status == 200, result
    return result["deployments"][0]["processDefinition"]


def activate(broker, job_type):
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        status, result = call(broker, "POST", "/v2/jobs/activation", {"type": job_type, "timeout": 30000, "maxJobsToActivate": 1, "requestTimeout": 1000})
        assert status == 200, result
        if result["jobs"]:
            return result["jobs"][0]
    raise AssertionError(f"no job of type {job_type}")


def create(broker, pid, **extra):
    status, result = call(broker, "POST", "/v2/process-instances", {"processDefinitionId": pid, **extra})
    assert status == 200, result
    return result["processInstanceKey"]


def assert_ended(broker, key):
    status, problem = call(broker, "POST", f"/v2/process-instances/{key}/cancellation", {})
    assert status == 404, problem


def test_modification_moves_the_token_and_rejections_are_problems(broker):
    deploy(broker, "rest_modify.bpmn", model("rest_modify", ("pick", "rest-mod-pick"), ("pack", "rest-mod-pack")))
    key = create(broker, "rest_modify", variables={"orderId": "m-1"})
    pick = activate(broker, "rest-mod-pick")

    status, problem = call(broker, "POST", f"/v2/process-instances/{key}/modification", {"activateInstructions": [{"elementId": "packk"}]})
    assert status == 400, problem
    assert "could not be found: 'packk'" in problem["detail"]
    status, problem = call(
        broker, "POST", f"/v2/process-instances/{key}/modification", {"terminateInstructions": [{"elementInstanceKey": "123"}]}
    )
    assert status == 400, problem
    assert "terminate instructions with an element instance that could not be found: '123'" in problem["detail"]

    status, _ = call(
        broker,
        "POST",
        f"/v2/process-instances/{key}/modification",
        {
            "activateInstructions": [
                {"elementId": "pack", "ancestorElementInstanceKey": "-1", "variableInstructions": [{"variables": {"boxes": 2}, "scopeId": ""}]}
            ],
            "terminateInstructions": [{"elementInstanceKey": pick["elementInstanceKey"]}],
        },
    )
    assert status == 204
    pack = activate(broker, "rest-mod-pack")
    assert pack["processInstanceKey"] == key
    assert pack["variables"] == {"orderId": "m-1", "boxes": 2}
    status, problem = call(broker, "POST", f"/v2/jobs/{pick['jobKey']}/completion", {})
    assert status == 404, "the terminated task's job was canceled"
    status, _ = call(broker, "POST", f"/v2/jobs/{pack['jobKey']}/completion", {})
    assert status == 204
    assert_ended(broker, key)


def test_migration_moves_an_instance_to_version_2(broker):
    v1 = deploy(broker, "rest_migrate.bpmn", model("rest_migrate", ("check", "rest-mig-check")))
    key = create(broker, "rest_migrate")
    check = activate(broker, "rest-mig-check")
    v2 = deploy(broker, "rest_migrate.bpmn", model("rest_migrate", ("check2", "rest-mig-check"), ("bill", "rest-mig-bill")))
    assert v2["processDefinitionVersion"] == 2 and v2["processDefinitionKey"] != v1["processDefinitionKey"]

    status, problem = call(
        broker,
        "POST",
        f"/v2/process-instances/{key}/migration",
        {"targetProcessDefinitionKey": v2["processDefinitionKey"], "mappingInstructions": [{"sourceElementId": "check", "targetElementId": "bill2"}]},
    )
    assert status == 400, problem
    assert "non-existing target element id 'bill2'" in problem["detail"]
    status, problem = call(
        broker,
        "POST",
        f"/v2/process-instances/{key}/migration",
        {"targetProcessDefinitionKey": v2["processDefinitionKey"], "mappingInstructions": []},
    )
    assert status == 409, problem
    assert "no mapping instruction defined for active element with id 'check'" in problem["detail"]

    status, _ = call(
        broker,
        "POST",
        f"/v2/process-instances/{key}/migration",
        {"targetProcessDefinitionKey": v2["processDefinitionKey"], "mappingInstructions": [{"sourceElementId": "check", "targetElementId": "check2"}]},
    )
    assert status == 204
    status, _ = call(broker, "POST", f"/v2/jobs/{check['jobKey']}/completion", {})
    assert status == 204
    bill = activate(broker, "rest-mig-bill")
    assert bill["processDefinitionKey"] == v2["processDefinitionKey"]
    assert bill["processInstanceKey"] == key
    status, _ = call(broker, "POST", f"/v2/jobs/{bill['jobKey']}/completion", {})
    assert status == 204
    assert_ended(broker, key)


def test_start_instructions_start_at_the_given_element(broker):
    deploy(broker, "rest_start.bpmn", model("rest_start", ("one", "rest-start-one"), ("two", "rest-start-two")))
    key = create(broker, "rest_start", startInstructions=[{"elementId": "two"}])
    two = activate(broker, "rest-start-two")
    assert two["processInstanceKey"] == key
    status, problem = call(broker, "POST", "/v2/process-instances", {"processDefinitionId": "rest_start", "startInstructions": [{"elementId": "start"}]})
    assert status == 400, problem
    assert "targets unsupported element type 'START_EVENT'" in problem["detail"]
