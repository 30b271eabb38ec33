"""camunda-orchestration-sdk, Camunda's Python client for the Orchestration
Cluster REST API (written by others), drives `waggle dev` on its REST port,
and raw HTTP checks the problem+json errors."""

import concurrent.futures
import json
import os
import time
import urllib.error
import urllib.request
import warnings

import pytest

warnings.filterwarnings("ignore", category=DeprecationWarning)
from camunda_orchestration_sdk import CamundaClient  # noqa: E402
from camunda_orchestration_sdk import errors  # noqa: E402
import camunda_orchestration_sdk.models as m  # noqa: E402

# Bound on every wait in these tests.
TIMEOUT_S = 30

MODEL = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="t">
  <bpmn:process id="{pid}" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="task"/>
    <bpmn:serviceTask id="task">
      <bpmn:extensionElements><zeebe:taskDefinition type="{job_type}" retries="1"/></bpmn:extensionElements>
    </bpmn:serviceTask>
    <bpmn:sequenceFlow id="f2" sourceRef="task" targetRef="wait"/>
    <bpmn:intermediateCatchEvent id="wait">
      <bpmn:messageEventDefinition messageRef="msg"/>
    </bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="f3" sourceRef="wait" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
  <bpmn:message id="msg" name="{pid}-paid">
    <bpmn:extensionElements><zeebe:subscription correlationKey="=orderId"/></bpmn:extensionElements>
  </bpmn:message>
</bpmn:definitions>"""


@pytest.fixture(scope="module")
def client(broker):
    return CamundaClient(configuration={"CAMUNDA_REST_ADDRESS": broker.rest_url, "CAMUNDA_AUTH_STRATEGY": "NONE"})


def deploy(client, tmp_path, pid, job_type):
    path = os.path.join(tmp_path, f"{pid}.bpmn")
    with open(path, "w") as f:
        f.write(MODEL.format(pid=pid, job_type=job_type))
    result = client.deploy_resources_from_files([path])
    [item] = result.deployments
    assert item.process_definition.process_definition_id == pid
    return item.process_definition


def activate(client, job_type, wanted=1):
    jobs = []
    for _ in range(TIMEOUT_S):
        batch = client.activate_jobs(
            data=m.JobActivationRequest(type_=job_type, timeout=30_000, max_jobs_to_activate=wanted - len(jobs), request_timeout=1000)
        )
        jobs.extend(batch.jobs)
        if len(jobs) >= wanted:
            return jobs
    raise AssertionError(f"only {len(jobs)} of {wanted} jobs of type {job_type} were activated")


def variables(data):
    return m.ProcessInstanceCreationInstructionBaseVariables.from_dict(data)


def raw(broker, method, path, body=None, content_type="application/json"):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(broker.rest_url + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as r:
            return r.status, r.headers.get("Content-Type"), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read()


def test_topology_and_status(client, broker):
    topology = client.get_topology()
    assert topology.cluster_size == 1 and topology.partitions_count == 1
    [b] = topology.brokers
    assert [p.role.value for p in b.partitions] == ["leader"]
    assert [p.health.value for p in b.partitions] == ["healthy"]
    status, _, _ = raw(broker, "GET", "/v2/status")
    assert status == 204


def test_deploy_create_activate_complete_and_correlate(client, broker, tmp_path):
    definition = deploy(client, tmp_path, "rest_order", "rest-charge")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        # Waits for the end of the instance while the test works its job.
        awaiting = pool.submit(
            client.create_process_instance,
            data=m.ProcessCreationById(
                process_definition_id="rest_order",
                variables=variables({"orderId": "o-1", "amount": 42}),
                await_completion=True,
                request_timeout=TIMEOUT_S * 1000,
            ),
        )
        [job] = activate(client, "rest-charge")
        assert job.variables.additional_properties == {"orderId": "o-1", "amount": 42}
        assert job.process_definition_key == definition.process_definition_key
        assert job.element_id == "task"
        client.complete_job(job_key=job.job_key, data=m.JobCompletionRequest(variables=m.JobCompletionRequestVariables.from_dict({"paid": True})))
        published = client.publish_message(
            data=m.MessagePublicationRequest(name="rest_order-paid", correlation_key="o-1", variables=m.MessagePublicationRequestVariables.from_dict({"receipt": "r-9"}))
        )
        assert int(published.message_key) > 0
        result = awaiting.result(timeout=TIMEOUT_S)
    assert result.variables.additional_properties == {"orderId": "o-1", "amount": 42, "paid": True, "receipt": "r-9"}
    assert result.process_instance_key == job.process_instance_key


def test_a_failed_job_raises_an_incident_resolved_over_rest(client, broker, tmp_path):
    deploy(client, tmp_path, "rest_incident", "rest-flaky")
    created = client.create_process_instance(
        data=m.ProcessCreationById(process_definition_id="rest_incident", variables=variables({"orderId": "o-2"}))
    )
    [job] = activate(client, "rest-flaky")
    client.fail_job(job_key=job.job_key, data=m.JobFailRequest(retries=0, error_message="card declined"))
    with urllib.request.urlopen(f"http://127.0.0.1:{broker.management_port}/incidents", timeout=5) as r:
        incidents = [i for i in json.load(r) if str(i["jobKey"]) == str(job.job_key)]
    assert len(incidents) == 1, incidents
    # As in Zeebe: give the job retries, then resolve the incident.
    client.update_job(job_key=job.job_key, data=m.JobUpdateRequest(changeset=m.JobChangeset(retries=2)))
    client.resolve_incident(incident_key=str(incidents[0]["incidentKey"]))
    [again] = activate(client, "rest-flaky")
    assert again.job_key == job.job_key and again.retries == 2
    client.complete_job(job_key=again.job_key)
    client.cancel_process_instance(process_instance_key=created.process_instance_key, data=None)
    # The instance is gone: cancelling again is a rejection.
    with pytest.raises(errors.NotFoundError):
        client.cancel_process_instance(process_instance_key=created.process_instance_key, data=None)


def test_signals_variables_and_deletion(client, broker, tmp_path):
    definition = deploy(client, tmp_path, "rest_misc", "rest-misc")
    created = client.create_process_instance(
        data=m.ProcessCreationById(process_definition_id="rest_misc", variables=variables({"orderId": "o-3"}))
    )
    status, _, _ = raw(broker, "PUT", f"/v2/element-instances/{created.process_instance_key}/variables", {"variables": {"note": "x"}})
    assert status == 204
    [job] = activate(client, "rest-misc")
    assert job.variables.additional_properties == {"orderId": "o-3", "note": "x"}
    signal = client.broadcast_signal(data=m.SignalBroadcastRequest(signal_name="rest-nobody-listens"))
    assert int(signal.signal_key) > 0
    status, _, body = raw(broker, "POST", f"/v2/resources/{definition.process_definition_key}/deletion")
    assert status == 200, body
    assert json.loads(body)["resourceKey"] == str(definition.process_definition_key)
    # The definition is gone: new instances of it are refused.
    status, content_type, body = raw(broker, "POST", "/v2/process-instances", {"processDefinitionKey": definition.process_definition_key})
    assert (status, content_type) == (404, "application/problem+json"), body


@pytest.mark.parametrize(
    "method,path,body,content_type,status,title,names",
    [
        ("POST", "/v2/jobs/2251799813685999/completion", {}, "application/json", 404, "NOT_FOUND", "2251799813685999"),
        ("POST", "/v2/jobs/activation", {"type": "x", "timeout": 1000}, "application/json", 400, "INVALID_ARGUMENT", "maxJobsToActivate"),
        ("POST", "/v2/jobs/activation", {"type": "", "timeout": 1000, "maxJobsToActivate": 1}, "application/json", 400, "INVALID_ARGUMENT", "type"),
        ("POST", "/v2/jobs/activation", b"{not json", "application/json", 400, "INVALID_ARGUMENT", "invalid"),
        ("POST", "/v2/jobs/activation", b"type=x", "text/plain", 415, "UNSUPPORTED_MEDIA_TYPE", "JSON"),
        ("POST", "/v2/jobs/abc/completion", {}, "application/json", 400, "INVALID_ARGUMENT", "jobKey"),
        ("POST", "/v2/process-instances", {"processDefinitionId": "no-such-process"}, "application/json", 404, "NOT_FOUND", "no-such-process"),
        ("POST", "/v2/process-instances", {"processDefinitionId": "p", "variables": [1]}, "application/json", 400, "INVALID_ARGUMENT", "variables"),
        ("POST", "/v2/process-instances", {"processDefinitionId": "p", "unknownProperty": 1}, "application/json", 404, "NOT_FOUND", "p"),
        ("POST", "/v2/process-instances", b'{"processDefinitionId":"p","variables":' + b'{"a":' * 5000 + b"1" + b"}" * 5000 + b"}", "application/json", 400, "INVALID_ARGUMENT", "variables"),
        ("GET", "/v2/no-such-endpoint", None, None, 404, "NOT_FOUND", "/v2/no-such-endpoint"),
        ("POST", "/v2/messages/publication", {"correlationKey": "k"}, "application/json", 400, "INVALID_ARGUMENT", "name"),
    ],
)
def test_errors_are_problem_json_naming_the_input(broker, method, path, body, content_type, status, title, names):
    got, got_type, text = raw(broker, method, path, body, content_type)
    assert got == status, text
    assert got_type == "application/problem+json"
    problem = json.loads(text)
    assert problem["status"] == status and problem["title"] == title, problem
    assert problem["instance"] == path
    assert names in problem["detail"], problem


USER_TASK_MODEL = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="t">
  <bpmn:process id="rest_review" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="review"/>
    <bpmn:userTask id="review">
      <bpmn:extensionElements>
        <zeebe:userTask/>
        <zeebe:assignmentDefinition candidateGroups="=team"/>
        <zeebe:priorityDefinition priority="60"/>
      </bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="f2" sourceRef="review" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>"""


def exported(broker, value_type, wanted, count=1):
    """Records of `value_type` in the JSON-lines exporter's file that
    `wanted(record, value)` accepts, as (key, value); waits for `count`."""
    path = os.path.join(broker.exports, "partition-1.jsonl")
    for _ in range(TIMEOUT_S * 10):
        found = []
        if os.path.exists(path):
            with open(path) as f:
                for line in f:
                    record = json.loads(line)["record"]
                    value = record["value"].get(value_type)
                    if value is not None and wanted(record, value):
                        found.append((record["key"], value))
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"fewer than {count} exported {value_type} records")


def wait_for_user_task(broker, process_instance_key, intent, count=1):
    return exported(
        broker,
        "UserTask",
        lambda r, v: r["intent"] == intent and v["process_instance_key"] == process_instance_key,
        count,
    )


def pending_instance(broker, process_id):
    """The key of the newest activated instance of `process_id`."""
    activated = exported(
        broker,
        "ProcessInstance",
        lambda r, v: r["intent"] == "ElementActivated" and v["element_id"] == process_id,
    )
    return activated[-1][0]


def test_a_user_task_is_assigned_updated_and_completed_over_rest(client, broker, tmp_path):
    import datetime

    path = os.path.join(tmp_path, "rest_review.bpmn")
    with open(path, "w") as f:
        f.write(USER_TASK_MODEL)
    client.deploy_resources_from_files([path])
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        awaiting = pool.submit(
            client.create_process_instance,
            data=m.ProcessCreationById(
                process_definition_id="rest_review",
                variables=variables({"team": "reviewers"}),
                await_completion=True,
                request_timeout=TIMEOUT_S * 1000,
            ),
        )
        [(key, created)] = wait_for_user_task(broker, int(pending_instance(broker, "rest_review")), "Created")
        assert created["candidate_groups"] == ["reviewers"] and created["priority"] == 60
        task_key = str(key)

        # Claim (no override), then a claim by someone else is a conflict.
        client.assign_user_task(user_task_key=task_key, data=m.UserTaskAssignmentRequest(assignee="anna", allow_override=False))
        with pytest.raises(errors.ConflictError):
            client.assign_user_task(user_task_key=task_key, data=m.UserTaskAssignmentRequest(assignee="bob", allow_override=False))
        client.unassign_user_task(user_task_key=task_key)
        client.assign_user_task(user_task_key=task_key, data=m.UserTaskAssignmentRequest(assignee="bob"))

        due = datetime.datetime(2027, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
        client.update_user_task(
            user_task_key=task_key,
            data=m.UserTaskUpdateRequest(changeset=m.Changeset(due_date=due, candidate_users=["carl"], priority=90)),
        )
        client.complete_user_task(
            user_task_key=task_key,
            data=m.UserTaskCompletionRequest(variables=m.UserTaskCompletionRequestVariables.from_dict({"approved": True})),
        )
        result = awaiting.result(timeout=TIMEOUT_S)
    assert result.variables.additional_properties == {"team": "reviewers", "approved": True}
    pi = int(result.process_instance_key)
    [(_, updated)] = wait_for_user_task(broker, pi, "Updated")
    assert sorted(updated["changed_attributes"]) == ["candidateUsersList", "dueDate", "priority"]
    assert updated["candidate_users"] == ["carl"] and updated["priority"] == 90
    assert updated["due_date"].startswith("2027-01-02T03:04:05")
    assigned = [t["assignee"] for _, t in wait_for_user_task(broker, pi, "Assigned", 3)]
    assert assigned == ["anna", "", "bob"]
    [(_, completed)] = wait_for_user_task(broker, pi, "Completed")
    assert json.loads(completed["variables"]) == {"approved": True}

    # Secondary storage has the completed task, also through the SDK's GET.
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        status, _, body = raw(broker, "GET", f"/v2/user-tasks/{task_key}")
        if (status == 200 and json.loads(body)["state"] == "COMPLETED") or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert status == 200, body
    stored = json.loads(body)
    assert stored["assignee"] == "bob" and stored["priority"] == 90 and stored["candidateUsers"] == ["carl"]
    sdk_task = client.get_user_task(user_task_key=task_key)
    assert str(sdk_task.user_task_key) == task_key and sdk_task.state.value == "COMPLETED"

    # The task is gone: 404 with problem+json; a bad priority is a 400.
    status, content_type, body = raw(broker, "POST", f"/v2/user-tasks/{task_key}/completion", {})
    assert status == 404 and content_type == "application/problem+json"
    assert "no such user task was found" in json.loads(body)["detail"]
    status, _, _ = raw(broker, "PATCH", f"/v2/user-tasks/{task_key}", {"changeset": {"priority": 101}})
    assert status == 400

