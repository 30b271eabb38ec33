"""camunda-orchestration-sdk deploys a Camunda Form and a process whose
start event and user task link it (zeebe:formDefinition formId), then reads
the user task's form and the process definition's start form over REST (from
secondary storage, SQLite and PostgreSQL as in test_search.py); a task
without a linked form answers 204, an unknown task 404."""

import json
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
warnings.filterwarnings("ignore", category=DeprecationWarning)

from camunda_orchestration_sdk import CamundaClient  # noqa: E402
import camunda_orchestration_sdk.models as m  # noqa: E402
from test_search import eventually, http, search, store_broker  # noqa: E402,F401

FORM = {
    "id": "rest_order_form",
    "type": "default",
    "components": [{"type": "textfield", "key": "customer", "label": "Customer"}],
}

PROCESS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="t">
  <bpmn:process id="{pid}" isExecutable="true">
    <bpmn:startEvent id="start">{start_form}</bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="task"/>
    <bpmn:userTask id="task">
      <bpmn:extensionElements><zeebe:userTask/>{task_form}</bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="f2" sourceRef="task" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>"""

LINKED = '<bpmn:extensionElements><zeebe:formDefinition formId="rest_order_form"/></bpmn:extensionElements>'


def write(tmp_path, name, text):
    path = os.path.join(tmp_path, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def task_of(broker, process_instance_key):
    found = eventually(
        lambda: search(broker, "user-tasks", {"filter": {"processInstanceKey": process_instance_key}})["items"],
        "the user task is exported",
    )
    return found[0]["userTaskKey"]


def test_a_linked_form_is_read_for_the_user_task_and_the_start_event(store_broker, tmp_path):
    broker = store_broker
    client = CamundaClient(configuration={"CAMUNDA_REST_ADDRESS": broker.rest_url, "CAMUNDA_AUTH_STRATEGY": "NONE"})
    schema = json.dumps(FORM)
    linked = PROCESS.format(pid="rest_forms", start_form=LINKED, task_form=LINKED.split(">", 1)[1].rsplit("<", 1)[0])
    deployed = client.deploy_resources_from_files(
        [write(tmp_path, "order.form", schema), write(tmp_path, "forms.bpmn", linked)]
    )
    [form] = [d.form for d in deployed.deployments if d.form]
    [definition] = [d.process_definition for d in deployed.deployments if d.process_definition]
    assert form.form_id == "rest_order_form"
    assert form.version == 1
    assert form.resource_name == "order.form"

    created = client.create_process_instance(
        data=m.ProcessCreationById(process_definition_id="rest_forms")
    )
    task_key = task_of(broker, str(created.process_instance_key))
    task = json.loads(http(broker, "GET", f"/v2/user-tasks/{task_key}")[2])
    assert task["formKey"] == str(form.form_key)

    result = client.get_user_task_form(user_task_key=task_key)
    assert result.form_key == form.form_key
    assert result.form_id == "rest_order_form"
    assert result.version == 1
    assert json.loads(result.schema) == FORM
    assert result.tenant_id == "<default>"

    start = eventually(
        lambda: (lambda r: r if r[0] == 200 else None)(
            http(broker, "GET", f"/v2/process-definitions/{definition.process_definition_key}/form")
        ),
        "the start form is exported",
    )
    assert json.loads(start[2])["formKey"] == str(form.form_key)

    # a second version of the form is what the next task links (binding latest)
    FORM2 = dict(FORM, components=[])
    deployed = client.deploy_resources_from_files([write(tmp_path, "order.form", json.dumps(FORM2))])
    [form2] = [d.form for d in deployed.deployments if d.form]
    assert form2.version == 2
    created = client.create_process_instance(
        data=m.ProcessCreationById(process_definition_id="rest_forms")
    )
    second = client.get_user_task_form(user_task_key=task_of(broker, str(created.process_instance_key)))
    assert (second.form_key, second.version) == (form2.form_key, 2)
    assert json.loads(second.schema) == FORM2


def test_no_linked_form_is_204_and_an_unknown_task_404(store_broker, tmp_path):
    broker = store_broker
    client = CamundaClient(configuration={"CAMUNDA_REST_ADDRESS": broker.rest_url, "CAMUNDA_AUTH_STRATEGY": "NONE"})
    plain = PROCESS.format(pid="rest_no_form", start_form="", task_form="")
    deployed = client.deploy_resources_from_files([write(tmp_path, "plain.bpmn", plain)])
    [definition] = [d.process_definition for d in deployed.deployments if d.process_definition]
    created = client.create_process_instance(
        data=m.ProcessCreationById(process_definition_id="rest_no_form")
    )
    task_key = task_of(broker, str(created.process_instance_key))
    assert http(broker, "GET", f"/v2/user-tasks/{task_key}/form")[0] == 204
    pd = f"/v2/process-definitions/{definition.process_definition_key}/form"
    assert eventually(lambda: http(broker, "GET", pd)[0] == 204, "the definition is exported")
    status, content_type, _ = http(broker, "GET", "/v2/user-tasks/2251799813999999/form")
    assert status == 404
    assert content_type.startswith("application/problem+json")


def test_a_form_without_an_id_is_rejected_naming_the_resource(store_broker, tmp_path):
    broker = store_broker
    client = CamundaClient(configuration={"CAMUNDA_REST_ADDRESS": broker.rest_url, "CAMUNDA_AUTH_STRATEGY": "NONE"})
    try:
        client.deploy_resources_from_files([write(tmp_path, "noid.form", '{"components": []}')])
    except Exception as e:  # the SDK raises its BadRequestError with the problem
        assert "noid.form" in str(e) or "noid.form" in str(getattr(e, "content", "")), e
    else:
        raise AssertionError("a form without an id was deployed")
