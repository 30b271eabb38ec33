"""Searches of decisions and message subscriptions on secondary storage
(SQLite and PostgreSQL, as in test_search.py): a deployed DRG and its
decisions, each decision evaluated on the way as a decision instance (by
key with its inputs and matched rules), the DMN XML, and the subscription of
a waiting message catch event before and after its message."""

import json
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
warnings.filterwarnings("ignore", category=DeprecationWarning)

from camunda_orchestration_sdk import CamundaClient  # noqa: E402
import camunda_orchestration_sdk.models as m  # noqa: E402
from test_search import eventually, http, search, store_broker  # noqa: E402,F401

DMN = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="srch_drg" name="Search DRG" namespace="http://waggle/search">
  <decision id="srch_size" name="Size">
    <decisionTable id="t" hitPolicy="FIRST">
      <input id="amountInput" label="Amount">
        <inputExpression id="e" typeRef="number"><text>amount</text></inputExpression>
      </input>
      <output id="o" name="size" typeRef="string"/>
      <rule id="big"><inputEntry id="b1"><text>&gt; 10</text></inputEntry><outputEntry id="b2"><text>"big"</text></outputEntry></rule>
      <rule id="small"><inputEntry id="s1"><text>-</text></inputEntry><outputEntry id="s2"><text>"small"</text></outputEntry></rule>
    </decisionTable>
  </decision>
  <decision id="srch_label" name="Label">
    <informationRequirement id="ir"><requiredDecision href="#srch_size"/></informationRequirement>
    <literalExpression id="l"><text>"a " + Size + " order"</text></literalExpression>
  </decision>
</definitions>"""

WAITING = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="t">
  <bpmn:message id="paid" name="srch-paid">
    <bpmn:extensionElements><zeebe:subscription correlationKey="=orderId"/></bpmn:extensionElements>
  </bpmn:message>
  <bpmn:process id="srch_waiting" name="Waiting" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="wait"/>
    <bpmn:intermediateCatchEvent id="wait"><bpmn:messageEventDefinition messageRef="paid"/></bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="f2" sourceRef="wait" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>"""


def deployed(broker, tmp_path, name, text):
    """A client of `broker` that has deployed `text` as resource `name`."""
    client = CamundaClient(configuration={"CAMUNDA_REST_ADDRESS": broker.rest_url, "CAMUNDA_AUTH_STRATEGY": "NONE"})
    path = os.path.join(tmp_path, name)
    with open(path, "w") as f:
        f.write(text)
    client.deploy_resources_from_files([path])
    return client


def test_decisions_are_searchable_with_their_evaluations(store_broker, tmp_path):
    broker = store_broker
    client = deployed(broker, tmp_path, "search.dmn", DMN)
    evaluation = client.evaluate_decision(
        data=m.DecisionEvaluationByID(
            decision_definition_id="srch_label", variables=m.DecisionEvaluationByIdVariables.from_dict({"amount": 50})
        )
    )
    assert json.loads(evaluation.output) == "a big order"

    definitions = eventually(
        lambda: (r := search(broker, "decision-definitions", {"filter": {"decisionRequirementsId": "srch_drg"}}))["page"]["totalItems"] == 2 and r,
        "both decisions of the DRG",
    )
    by_id = {d["decisionDefinitionId"]: d for d in definitions["items"]}
    assert by_id["srch_size"]["name"] == "Size" and by_id["srch_size"]["version"] == 1
    assert by_id["srch_label"]["decisionRequirementsName"] == "Search DRG"
    size_key = by_id["srch_size"]["decisionDefinitionKey"]
    status, _, data = http(broker, "GET", f"/v2/decision-definitions/{size_key}")
    assert status == 200 and json.loads(data) == by_id["srch_size"]
    status, content_type, data = http(broker, "GET", f"/v2/decision-definitions/{size_key}/xml")
    assert status == 200 and content_type.startswith("text/xml") and data.decode() == DMN

    [drg] = search(broker, "decision-requirements", {"filter": {"decisionRequirementsId": "srch_drg"}})["items"]
    assert drg["resourceName"] == "search.dmn" and drg["version"] == 1
    status, _, data = http(broker, "GET", f"/v2/decision-requirements/{drg['decisionRequirementsKey']}/xml")
    assert status == 200 and data.decode() == DMN
    sdk_drg = client.get_decision_requirements(decision_requirements_key=drg["decisionRequirementsKey"])
    assert sdk_drg.decision_requirements_name == "Search DRG"

    # One decision instance per decision evaluated: the required one first.
    key = str(evaluation.decision_evaluation_key)
    instances = eventually(
        lambda: (r := search(broker, "decision-instances", {"filter": {"decisionEvaluationKey": key}}))["page"]["totalItems"] == 2 and r,
        "the two evaluated decisions",
    )
    by_decision = {i["decisionDefinitionId"]: i for i in instances["items"]}
    size = by_decision["srch_size"]
    assert size["decisionEvaluationInstanceKey"] == f"{key}-1" and size["state"] == "EVALUATED"
    assert size["decisionDefinitionType"] == "DECISION_TABLE" and json.loads(size["result"]) == "big"
    assert by_decision["srch_label"]["rootDecisionDefinitionKey"] == by_id["srch_label"]["decisionDefinitionKey"]
    status, _, data = http(broker, "GET", f"/v2/decision-instances/{key}-1")
    detail = json.loads(data)
    assert status == 200 and [r["ruleId"] for r in detail["matchedRules"]] == ["big"]
    assert [(i["inputId"], json.loads(i["inputValue"])) for i in detail["evaluatedInputs"]] == [("amountInput", 50)]
    status, _, _ = http(broker, "GET", f"/v2/decision-instances/{key}-9")
    assert status == 404
    status, _, data = http(broker, "GET", "/v2/decision-instances/nonsense")
    assert status == 400 and b"decisionEvaluationInstanceKey" in data


def test_message_subscriptions_are_searchable(store_broker, tmp_path):
    broker = store_broker
    client = deployed(broker, tmp_path, "waiting.bpmn", WAITING)
    created = client.create_process_instance(
        data=m.ProcessCreationById(
            process_definition_id="srch_waiting",
            variables=m.ProcessInstanceCreationInstructionBaseVariables.from_dict({"orderId": "o-77"}),
        )
    )
    instance = str(created.process_instance_key)
    body = {"filter": {"processInstanceKey": instance}}
    [waiting] = eventually(
        lambda: search(broker, "message-subscriptions", body)["items"],
        "the subscription of the waiting instance",
    )
    assert waiting["messageName"] == "srch-paid" and waiting["correlationKey"] == "o-77"
    assert waiting["messageSubscriptionState"] == "CREATED" and waiting["elementId"] == "wait"
    assert waiting["processDefinitionId"] == "srch_waiting" and waiting["processDefinitionName"] == "Waiting"
    client.publish_message(data=m.MessagePublicationRequest(name="srch-paid", correlation_key="o-77"))
    eventually(
        lambda: search(broker, "message-subscriptions", {"filter": {"processInstanceKey": instance, "messageSubscriptionState": "CORRELATED"}})["items"],
        "the subscription correlated",
    )
