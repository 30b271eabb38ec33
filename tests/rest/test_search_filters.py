"""Process instance searches with `$or` and `variables` filters, and the
call hierarchy of called instances, over REST on secondary storage (SQLite
and PostgreSQL, as in test_search.py): a parent calls a child through a call
activity, the child calls a grandchild, each waits on a service task."""

import json
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
warnings.filterwarnings("ignore", category=DeprecationWarning)

from camunda_orchestration_sdk import CamundaClient  # noqa: E402
import camunda_orchestration_sdk.models as m  # noqa: E402
from test_search import eventually, http, search, store_broker  # noqa: E402,F401

CALLER = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="t">
  <bpmn:process id="{pid}" {name} isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="call"/>
    <bpmn:callActivity id="call">
      <bpmn:extensionElements><zeebe:calledElement processId="{called}" propagateAllChildVariables="false"/></bpmn:extensionElements>
    </bpmn:callActivity>
    <bpmn:sequenceFlow id="f2" sourceRef="call" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>"""

WORKER = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="t">
  <bpmn:process id="hier_leaf" name="Leaf" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="task"/>
    <bpmn:serviceTask id="task">
      <bpmn:extensionElements><zeebe:taskDefinition type="hier-work"/></bpmn:extensionElements>
    </bpmn:serviceTask>
    <bpmn:sequenceFlow id="f2" sourceRef="task" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>"""


def test_or_and_variables_filters_and_the_call_hierarchy(store_broker, tmp_path):
    broker = store_broker
    client = CamundaClient(configuration={"CAMUNDA_REST_ADDRESS": broker.rest_url, "CAMUNDA_AUTH_STRATEGY": "NONE"})
    definitions = {}
    for name, text in [
        ("leaf.bpmn", WORKER),
        ("middle.bpmn", CALLER.format(pid="hier_middle", name="", called="hier_leaf")),
        ("root.bpmn", CALLER.format(pid="hier_root", name='name="Root"', called="hier_middle")),
    ]:
        path = os.path.join(tmp_path, name)
        with open(path, "w") as f:
            f.write(text)
        [item] = client.deploy_resources_from_files([path]).deployments
        definitions[item.process_definition.process_definition_id] = str(item.process_definition.process_definition_key)

    roots = []
    for customer in ("anna", "bob"):
        created = client.create_process_instance(
            data=m.ProcessCreationById(
                process_definition_id="hier_root",
                variables=m.ProcessInstanceCreationInstructionBaseVariables.from_dict({"customer": customer}),
            )
        )
        roots.append(str(created.process_instance_key))

    leaves = eventually(
        lambda: (r := search(broker, "process-instances", {"filter": {"processDefinitionId": "hier_leaf"}}))["page"]["totalItems"] == 2
        and r["items"],
        "two leaf instances",
    )
    leaf = leaves[0]
    middle = leaf["parentProcessInstanceKey"]
    status, _, data = http(broker, "GET", f"/v2/process-instances/{middle}")
    assert status == 200, data
    root = json.loads(data)["parentProcessInstanceKey"]
    assert root in roots

    # The callers of the leaf, the root first; the name falls back to the id.
    status, content_type, data = http(broker, "GET", f"/v2/process-instances/{leaf['processInstanceKey']}/call-hierarchy")
    assert status == 200 and content_type.startswith("application/json"), data
    assert json.loads(data) == [
        {"processInstanceKey": root, "processDefinitionKey": definitions["hier_root"], "processDefinitionName": "Root"},
        {"processInstanceKey": middle, "processDefinitionKey": definitions["hier_middle"], "processDefinitionName": "hier_middle"},
    ]
    status, _, data = http(broker, "GET", f"/v2/process-instances/{root}/call-hierarchy")
    assert status == 200 and json.loads(data) == [], data
    status, content_type, data = http(broker, "GET", "/v2/process-instances/1/call-hierarchy")
    assert status == 404 and content_type == "application/problem+json", data
    status, _, data = http(broker, "GET", "/v2/process-instances/abc/call-hierarchy")
    assert status == 400, data

    # The SDK reads the hierarchy with its own models.
    entries = client.get_process_instance_call_hierarchy(process_instance_key=leaf["processInstanceKey"])
    assert [str(e.process_instance_key) for e in entries] == [root, middle]

    def keys(body):
        return sorted(i["processInstanceKey"] for i in search(broker, "process-instances", body)["items"])

    # variables: the root instance whose customer is "bob" (serialized JSON);
    # the called instances got a copy of the variable.
    bob = keys({"filter": {"processDefinitionId": "hier_root", "variables": [{"name": "customer", "value": '"bob"'}]}})
    assert bob == [roots[1]]
    either = keys({"filter": {"processDefinitionId": "hier_root",
                              "variables": [{"name": "customer", "value": {"$in": ['"anna"', '"bob"']}}]}})
    assert either == sorted(roots)
    assert keys({"filter": {"variables": [{"name": "customer", "value": '"carl"'}]}}) == []
    anna_leaf = keys({"filter": {"processDefinitionId": "hier_leaf",
                                 "variables": [{"name": "customer", "value": '"anna"'}]}})
    assert len(anna_leaf) == 1 and anna_leaf != keys({"filter": {"processDefinitionId": "hier_leaf",
                                                               "variables": [{"name": "customer", "value": '"bob"'}]}})

    # $or: the instances of anna's chain, or any instance of the middle
    # process; no leaves.
    middles = keys({"filter": {"processDefinitionId": "hier_middle"}})
    assert len(middles) == 2
    alternatives = keys({"filter": {"processDefinitionId": {"$neq": "hier_leaf"}, "$or": [
        {"variables": [{"name": "customer", "value": '"anna"'}]},
        {"processDefinitionId": "hier_middle"},
    ]}})
    assert alternatives == sorted([roots[0]] + middles)
    # ... ANDed with the fields beside it.
    assert keys({"filter": {"processDefinitionId": "hier_root", "$or": [
        {"variables": [{"name": "customer", "value": '"anna"'}]},
        {"processDefinitionId": "hier_middle"},
    ]}}) == [roots[0]]

    # The SDK's own model of the filter carries both.
    found = client.search_process_instances(
        data=m.ProcessInstanceSearchQuery.from_dict(
            {"filter": {"$or": [{"processDefinitionId": "hier_leaf"}], "variables": []}}
        )
    )
    assert sorted(str(i.process_instance_key) for i in found.items) == sorted(i["processInstanceKey"] for i in leaves)

    # Refusals name what is wrong.
    status, _, data = http(broker, "POST", "/v2/process-instances/search", {"filter": {"$or": [{"$or": []}]}})
    assert status == 400 and "$or" in json.loads(data)["detail"], data
    status, _, data = http(broker, "POST", "/v2/process-instances/search", {"filter": {"variables": [{"name": "customer"}]}})
    assert status == 400 and "value" in json.loads(data)["detail"], data
