"""camunda-orchestration-sdk deploys a DMN resource over REST and evaluates
its decisions by id and by key: outputs, evaluated decisions with matched
rules and inputs, a failing decision, and an unknown one (404)."""

import json
import os
import warnings

import pytest

warnings.filterwarnings("ignore", category=DeprecationWarning)
from camunda_orchestration_sdk import CamundaClient  # noqa: E402
from camunda_orchestration_sdk import errors  # noqa: E402
import camunda_orchestration_sdk.models as m  # noqa: E402

DMN = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="rest_sizes" name="Sizes" namespace="http://waggle/rest">
  <decision id="rest_size" name="Size">
    <decisionTable id="sizeTable" hitPolicy="UNIQUE">
      <input id="amountInput" label="Amount">
        <inputExpression id="amountExpr" typeRef="number"><text>amount</text></inputExpression>
      </input>
      <output id="sizeOutput" name="size" typeRef="string"/>
      <rule id="big"><inputEntry id="b1"><text>&gt; 10</text></inputEntry><outputEntry id="b2"><text>"big"</text></outputEntry></rule>
      <rule id="huge"><inputEntry id="h1"><text>&gt; 100</text></inputEntry><outputEntry id="h2"><text>"huge"</text></outputEntry></rule>
    </decisionTable>
  </decision>
  <decision id="rest_label" name="Label">
    <informationRequirement id="ir"><requiredDecision href="#rest_size"/></informationRequirement>
    <literalExpression id="labelExpr"><text>"a " + Size + " order"</text></literalExpression>
  </decision>
</definitions>"""


@pytest.fixture(scope="module")
def client(broker):
    return CamundaClient(configuration={"CAMUNDA_REST_ADDRESS": broker.rest_url, "CAMUNDA_AUTH_STRATEGY": "NONE"})


def by_id(decision_id, variables):
    return m.DecisionEvaluationByID(
        decision_definition_id=decision_id, variables=m.DecisionEvaluationByIdVariables.from_dict(variables)
    )


def test_deploy_and_evaluate_decisions_over_rest(client, tmp_path):
    path = os.path.join(tmp_path, "sizes.dmn")
    with open(path, "w") as f:
        f.write(DMN)
    deployed = client.deploy_resources_from_files([path])
    decisions = [d.decision_definition for d in deployed.deployments if d.decision_definition]
    [drg] = [d.decision_requirements for d in deployed.deployments if d.decision_requirements]
    assert sorted(d.decision_definition_id for d in decisions) == ["rest_label", "rest_size"]
    assert drg.decision_requirements_id == "rest_sizes"
    assert drg.resource_name == "sizes.dmn"
    assert all(d.decision_requirements_key == drg.decision_requirements_key for d in decisions)
    size_key = next(d.decision_definition_key for d in decisions if d.decision_definition_id == "rest_size")

    result = client.evaluate_decision(data=by_id("rest_label", {"amount": 50}))
    assert result.decision_definition_id == "rest_label"
    assert result.decision_definition_version == 1
    assert result.decision_requirements_id == "rest_sizes"
    assert json.loads(result.output) == "a big order"
    assert result.failure_message is None
    assert [d.decision_definition_id for d in result.evaluated_decisions] == ["rest_size", "rest_label"]
    size = result.evaluated_decisions[0]
    assert size.decision_definition_type == "DECISION_TABLE"
    assert size.decision_definition_key == size_key
    assert size.decision_evaluation_instance_key == f"{result.decision_evaluation_key}-1"
    assert [r.rule_id for r in size.matched_rules] == ["big"]
    assert [(i.input_id, json.loads(i.input_value)) for i in size.evaluated_inputs] == [("amountInput", 50)]

    by_key = client.evaluate_decision(
        data=m.DecisionEvaluationByKey(
            decision_definition_key=size_key, variables=m.DecisionEvaluationByIdVariables.from_dict({"amount": 5})
        )
    )
    assert by_key.decision_definition_id == "rest_size"
    assert json.loads(by_key.output) is None, "no rule matches"

    failed = client.evaluate_decision(data=by_id("rest_size", {"amount": 500}))
    assert failed.failed_decision_definition_id == "rest_size"
    assert "UNIQUE" in failed.failure_message

    with pytest.raises(errors.NotFoundError):
        client.evaluate_decision(data=by_id("rest_no_such_decision", {}))
