"""Ad-hoc sub-processes over REST: camunda-orchestration-sdk (written by
others) activates elements of a running ad-hoc sub-process on `waggle dev`,
and raw HTTP checks the rejections as problem+json."""

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
  <bpmn:process id="rest_adhoc" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="pick"/>
    <bpmn:adHocSubProcess id="pick">
      <bpmn:serviceTask id="call">
        <bpmn:extensionElements><zeebe:taskDefinition type="rest-adhoc-call"/></bpmn:extensionElements>
      </bpmn:serviceTask>
      <bpmn:task id="note"/>
    </bpmn:adHocSubProcess>
    <bpmn:sequenceFlow id="f2" sourceRef="pick" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>"""


@pytest.fixture(scope="module")
def client(broker):
    return CamundaClient(configuration={"CAMUNDA_REST_ADDRESS": broker.rest_url, "CAMUNDA_AUTH_STRATEGY": "NONE"})


def raw(broker, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(broker.rest_url + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as r:
            return r.status, r.headers.get("Content-Type"), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read()


def exported_element(broker, element_id, intent, process_instance_key):
    """Key of the exported process instance record of `element_id` with `intent`."""
    path = os.path.join(broker.exports, "partition-1.jsonl")
    for _ in range(TIMEOUT_S * 10):
        if os.path.exists(path):
            with open(path) as f:
                for line in f:
                    record = json.loads(line)["record"]
                    value = record["value"].get("ProcessInstance")
                    if (
                        value is not None
                        and record["intent"] == intent
                        and value["element_id"] == element_id
                        and value["process_instance_key"] == process_instance_key
                    ):
                        return record["key"]
        time.sleep(0.1)
    raise AssertionError(f"no exported {intent} of {element_id}")


def test_elements_of_an_ad_hoc_sub_process_are_activated_over_rest(client, broker, tmp_path):
    path = os.path.join(tmp_path, "rest_adhoc.bpmn")
    with open(path, "w") as f:
        f.write(MODEL)
    client.deploy_resources_from_files([path])
    created = client.create_process_instance(data=m.ProcessCreationById(process_definition_id="rest_adhoc"))
    pi = int(created.process_instance_key)
    key = exported_element(broker, "pick", "ElementActivated", pi)
    client.activate_ad_hoc_sub_process_activities(
        ad_hoc_sub_process_instance_key=str(key),
        data=m.AdHocSubProcessActivateActivitiesInstruction(
            elements=[
                m.AdHocSubProcessActivateActivityReference(
                    element_id="call",
                    variables=m.AdHocSubProcessActivateActivityReferenceVariables.from_dict({"topic": "rest"}),
                )
            ]
        ),
    )
    jobs = []
    for _ in range(TIMEOUT_S):
        batch = client.activate_jobs(
            data=m.JobActivationRequest(type_="rest-adhoc-call", timeout=30_000, max_jobs_to_activate=1, request_timeout=1000)
        )
        jobs.extend(batch.jobs)
        if jobs:
            break
    [job] = jobs
    assert job.variables.to_dict()["topic"] == "rest", "activation variables reach the element"
    # rejections, each a problem naming the input
    status, content_type, body = raw(
        broker,
        "POST",
        f"/v2/element-instances/ad-hoc-activities/{key}/activation",
        {"elements": [{"elementId": "end"}]},
    )
    assert status == 404 and content_type == "application/problem+json", body
    assert "[end] do not exist" in json.loads(body)["detail"]
    status, _, body = raw(
        broker,
        "POST",
        f"/v2/element-instances/ad-hoc-activities/{key}/activation",
        {"elements": [{"elementId": "note"}, {"elementId": "note"}]},
    )
    assert status == 400 and "duplicate activities" in json.loads(body)["detail"], body
    status, _, body = raw(broker, "POST", f"/v2/element-instances/ad-hoc-activities/{key}/activation", {"elements": []})
    assert status == 400 and "No elements provided" in json.loads(body)["detail"], body
    with pytest.raises(errors.NotFoundError):
        client.activate_ad_hoc_sub_process_activities(
            ad_hoc_sub_process_instance_key=str(pi),
            data=m.AdHocSubProcessActivateActivitiesInstruction(
                elements=[m.AdHocSubProcessActivateActivityReference(element_id="note")]
            ),
        )
    # finishing the job ends the only path: the sub-process and the instance complete
    client.complete_job(job_key=job.job_key)
    exported_element(broker, "rest_adhoc", "ElementCompleted", pi)
    status, _, body = raw(
        broker,
        "POST",
        f"/v2/element-instances/ad-hoc-activities/{key}/activation",
        {"elements": [{"elementId": "note"}]},
    )
    assert status == 404, body
