"""pyzeebe deploys DMN decisions with a business rule task, runs the process
with awaited result, evaluates decisions with EvaluateDecision, and runs a
script task using FEEL's iteration and Camunda's built-in functions."""

import asyncio
import os

import grpc
import pytest
from pyzeebe import ZeebeClient, create_insecure_channel
from pyzeebe.proto import gateway_pb2
from pyzeebe.proto.gateway_pb2_grpc import GatewayStub
from pyzeebe.errors import DecisionNotFoundError
from pyzeebe.grpc_internals.types import DeployResourceResponse

DINNER_DMN = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="pz_dinner" name="Dinner" namespace="http://waggle/test">
  <decision id="pz_dish" name="Dish">
    <decisionTable id="dishTable" hitPolicy="UNIQUE">
      <input id="seasonInput" label="Season">
        <inputExpression id="seasonExpr" typeRef="string"><text>season</text></inputExpression>
      </input>
      <input id="guestsInput" label="Guests">
        <inputExpression id="guestsExpr" typeRef="number"><text>guests</text></inputExpression>
      </input>
      <output id="dishOutput" name="dish" typeRef="string"/>
      <rule id="winterSmall">
        <inputEntry id="w1"><text>"Winter"</text></inputEntry><inputEntry id="w2"><text>&lt;= 4</text></inputEntry>
        <outputEntry id="w3"><text>"Roastbeef"</text></outputEntry>
      </rule>
      <rule id="winterBig">
        <inputEntry id="b1"><text>"Winter"</text></inputEntry><inputEntry id="b2"><text>&gt; 4</text></inputEntry>
        <outputEntry id="b3"><text>"Stew"</text></outputEntry>
      </rule>
      <rule id="summer">
        <inputEntry id="s1"><text>"Summer"</text></inputEntry><inputEntry id="s2"><text>-</text></inputEntry>
        <outputEntry id="s3"><text>"Salad"</text></outputEntry>
      </rule>
    </decisionTable>
  </decision>
  <decision id="pz_drink" name="Drink">
    <informationRequirement id="ir"><requiredDecision href="#pz_dish"/></informationRequirement>
    <literalExpression id="drinkExpr"><text>if Dish = "Stew" then "Red wine" else "Water"</text></literalExpression>
  </decision>
</definitions>"""

MEAL_BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="t">
  <bpmn:process id="pz_meal" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="decide"/>
    <bpmn:businessRuleTask id="decide">
      <bpmn:extensionElements>
        <zeebe:calledDecision decisionId="pz_drink" resultVariable="drinkChoice"/>
      </bpmn:extensionElements>
    </bpmn:businessRuleTask>
    <bpmn:sequenceFlow id="f2" sourceRef="decide" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>"""

SCRIPT_BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="t">
  <bpmn:process id="pz_feel" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="script"/>
    <bpmn:scriptTask id="script">
      <bpmn:extensionElements>
        <zeebe:script expression="{expression}" resultVariable="summary"/>
      </bpmn:extensionElements>
    </bpmn:scriptTask>
    <bpmn:sequenceFlow id="f2" sourceRef="script" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>"""

# Bound on every wait in these tests.
TIMEOUT_S = 30


def write(tmp_path, name, text):
    path = os.path.join(tmp_path, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def of_kind(deployed, kind):
    return [d for d in deployed.deployments if isinstance(d, kind)]


def run(coroutine_factory, broker):
    async def scenario():
        channel = create_insecure_channel(grpc_address=broker.address)
        return await asyncio.wait_for(coroutine_factory(ZeebeClient(channel)), TIMEOUT_S)

    return asyncio.run(scenario())


def test_a_business_rule_task_evaluates_the_deployed_decision(broker, tmp_path):
    async def scenario(client):
        deployed = await client.deploy_resource(
            write(tmp_path, "meal.bpmn", MEAL_BPMN), write(tmp_path, "dinner.dmn", DINNER_DMN)
        )
        processes = of_kind(deployed, DeployResourceResponse.ProcessMetadata)
        decisions = of_kind(deployed, DeployResourceResponse.DecisionMetadata)
        [drg] = of_kind(deployed, DeployResourceResponse.DecisionRequirementsMetadata)
        assert [p.bpmn_process_id for p in processes] == ["pz_meal"]
        assert sorted(d.dmn_decision_id for d in decisions) == ["pz_dish", "pz_drink"]
        assert drg.dmn_decision_requirements_id == "pz_dinner"
        assert drg.resource_name == "dinner.dmn"
        assert all(d.decision_requirements_key == drg.decision_requirements_key for d in decisions)
        winter = await client.run_process_with_result("pz_meal", {"season": "Winter", "guests": 8})
        summer = await client.run_process_with_result("pz_meal", {"season": "Summer", "guests": 2})
        return winter.variables, summer.variables

    winter, summer = run(scenario, broker)
    assert winter["drinkChoice"] == "Red wine"
    assert summer["drinkChoice"] == "Water"


def test_evaluate_decision_by_id_and_by_key(broker, tmp_path):
    async def scenario(client):
        deployed = await client.deploy_resource(write(tmp_path, "dinner2.dmn", DINNER_DMN.replace("pz_", "pz2_")))
        decisions = of_kind(deployed, DeployResourceResponse.DecisionMetadata)
        dish_key = next(d.decision_key for d in decisions if d.dmn_decision_id == "pz2_dish")
        by_id = await client.evaluate_decision(None, "pz2_drink", {"season": "Winter", "guests": 6})
        by_key = await client.evaluate_decision(dish_key, None, {"season": "Winter", "guests": 2})
        try:
            await client.evaluate_decision(None, "pz_no_such_decision", {})
            missing = None
        except DecisionNotFoundError as e:
            missing = e
        return by_id, by_key, dish_key, missing

    by_id, by_key, dish_key, missing = run(scenario, broker)
    assert by_id.decision_id == "pz2_drink"
    assert by_id.decision_name == "Drink"
    assert by_id.decision_version == 1
    assert by_id.decision_requirements_id == "pz2_dinner"
    assert by_id.decision_output == "Red wine"
    assert by_id.failure_message == ""
    assert by_id.decision_instance_key > 0
    assert [d.decision_id for d in by_id.evaluated_decisions] == ["pz2_dish", "pz2_drink"]
    dish = by_id.evaluated_decisions[0]
    assert dish.decision_type == "DECISION_TABLE"
    assert dish.decision_key == dish_key
    assert [(i.input_id, i.input_value) for i in dish.evaluated_inputs] == [("seasonInput", "Winter"), ("guestsInput", 6)]
    [rule] = dish.matched_rules
    assert (rule.rule_id, rule.rule_index) == ("winterBig", 2)
    assert rule.evaluated_outputs[0].output_value == "Stew"
    assert by_key.decision_key == dish_key
    assert by_key.decision_output == "Roastbeef"
    assert missing is not None, "an unknown decision id is NOT_FOUND"


@pytest.mark.parametrize(
    "expression, variables, expected",
    [
        (
            "=for item in items return item.price * item.quantity",
            {"items": [{"price": 2, "quantity": 3}, {"price": 5, "quantity": 1}]},
            [6, 5],
        ),
        (
            "={some: some x in items satisfies x.price &gt; 4, every: every x in items satisfies x.price &gt; 4}",
            {"items": [{"price": 2}, {"price": 5}]},
            {"some": True, "every": False},
        ),
        (
            "=string join(for i in items return i.name, \", \")",
            {"items": [{"name": "tea"}, {"name": "cake"}]},
            "tea, cake",
        ),
        (
            "=[is defined(customer), is defined(missing), get or else(missing, \"fallback\")]",
            {"customer": "Ada"},
            [True, False, "fallback"],
        ),
        (
            "=context put(order, \"total\", sum(for i in order.lines return i))",
            {"order": {"id": "o-1", "lines": [1.5, 2.5]}},
            {"id": "o-1", "lines": [1.5, 2.5], "total": 4},
        ),
    ],
)
def test_a_script_task_evaluates_feel_iteration_and_builtins(broker, tmp_path, expression, variables, expected):
    escaped = expression.replace('"', "&quot;")

    async def scenario(client):
        await client.deploy_resource(write(tmp_path, "feel.bpmn", SCRIPT_BPMN.format(expression=escaped)))
        result = await client.run_process_with_result("pz_feel", variables)
        return result.variables

    assert run(scenario, broker)["summary"] == expected


def test_a_bad_dmn_is_refused_naming_the_resource_and_the_decision(broker):
    broken = DINNER_DMN.replace("pz_", "pz3_").replace('if Dish = "Stew" then', "if Dish = then")

    async def scenario():
        channel = create_insecure_channel(grpc_address=broker.address)
        stub = GatewayStub(channel)
        request = gateway_pb2.DeployResourceRequest(
            resources=[
                gateway_pb2.Resource(name="meal3.bpmn", content=MEAL_BPMN.replace("pz_", "pz3_").encode()),
                gateway_pb2.Resource(name="broken.dmn", content=broken.encode()),
            ]
        )
        try:
            await stub.DeployResource(request)
        except grpc.aio.AioRpcError as e:
            return e
        return None

    error = asyncio.run(scenario())
    assert error is not None, "the deployment must be refused"
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "'broken.dmn'" in error.details() and "decision 'pz3_drink'" in error.details(), error.details()
