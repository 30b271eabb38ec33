"""pyzeebe (a Zeebe client written by others) repairs running instances on
`waggle dev`: a token stuck on an incident is moved past the broken task
(ModifyProcessInstance), a running instance is migrated to version 2 and
finishes there (MigrateProcessInstance), and an instance starts at a given
element (startInstructions). pyzeebe's client has no call for these, so the
tests use the generated gRPC stub pyzeebe ships, over the same channel."""

import asyncio
import json
import os
import time
import urllib.request

import grpc
import pytest
from pyzeebe import ZeebeClient, create_insecure_channel
from pyzeebe.proto import gateway_pb2
from pyzeebe.proto.gateway_pb2_grpc import GatewayStub

# Bound on every wait in these tests.
TIMEOUT_S = 30

HEADER = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="t">
  <bpmn:process id="{pid}" isExecutable="true">"""
FOOTER = """  </bpmn:process>
</bpmn:definitions>"""


def task(element_id, job_type, retries=3):
    return f"""<bpmn:serviceTask id="{element_id}">
      <bpmn:extensionElements><zeebe:taskDefinition type="{job_type}" retries="{retries}"/></bpmn:extensionElements>
    </bpmn:serviceTask>"""


def chain(pid, *tasks):
    """start → each (id, job type) task in turn → end."""
    ids = ["start"] + [t[0] for t in tasks] + ["end"]
    body = ['<bpmn:startEvent id="start"/>']
    body += [task(i, j, retries=1) for i, j in tasks]
    body.append('<bpmn:endEvent id="end"/>')
    body += [f'<bpmn:sequenceFlow id="f{n}" sourceRef="{a}" targetRef="{b}"/>' for n, (a, b) in enumerate(zip(ids, ids[1:]))]
    return HEADER.format(pid=pid) + "\n".join(body) + FOOTER


def write(tmp_path, name, xml):
    path = os.path.join(tmp_path, name)
    with open(path, "w") as f:
        f.write(xml)
    return path


def open_incidents(broker):
    with urllib.request.urlopen(f"http://127.0.0.1:{broker.management_port}/incidents", timeout=5) as r:
        return json.loads(r.read())


async def activate(stub, job_type):
    """One job of `job_type`, waiting for it up to TIMEOUT_S."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        request = gateway_pb2.ActivateJobsRequest(type=job_type, worker="repair-test", timeout=30_000, maxJobsToActivate=1, requestTimeout=1000)
        async for response in stub.ActivateJobs(request):
            if response.jobs:
                return response.jobs[0]
    raise AssertionError(f"no job of type {job_type}")


async def wait_ended(stub, process_instance_key):
    """Waits until the instance is gone: cancelling it is then NOT_FOUND."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        try:
            await stub.CancelProcessInstance(gateway_pb2.CancelProcessInstanceRequest(processInstanceKey=process_instance_key))
        except grpc.aio.AioRpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND, e
            return
        raise AssertionError("the instance was still running and is now canceled")
    raise AssertionError("the instance did not end")


def test_a_token_stuck_on_an_incident_is_moved_to_the_next_task(broker, tmp_path):
    async def scenario():
        channel = create_insecure_channel(grpc_address=broker.address)
        client = ZeebeClient(channel)
        stub = GatewayStub(channel)
        await client.deploy_resource(write(tmp_path, "pz_repair.bpmn", chain("pz_repair", ("charge", "pz-repair-charge"), ("ship", "pz-repair-ship"))))
        created = await client.run_process("pz_repair", {"orderId": "r-1"})
        pi = created.process_instance_key

        job = await activate(stub, "pz-repair-charge")
        await stub.FailJob(gateway_pb2.FailJobRequest(jobKey=job.key, retries=0, errorMessage="payment provider is gone"))
        deadline = time.monotonic() + TIMEOUT_S
        incident = None
        while incident is None:
            assert time.monotonic() < deadline, "no incident"
            found = [i for i in open_incidents(broker) if i["processInstanceKey"] == pi]
            incident = found[0] if found else None
            await asyncio.sleep(0.05)

        # An instruction naming an element that does not exist is rejected
        # with Zeebe's message, and nothing changes.
        with pytest.raises(grpc.aio.AioRpcError) as rejected:
            await stub.ModifyProcessInstance(
                gateway_pb2.ModifyProcessInstanceRequest(
                    processInstanceKey=pi,
                    activateInstructions=[gateway_pb2.ModifyProcessInstanceRequest.ActivateInstruction(elementId="shipp")],
                )
            )
        assert rejected.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "activate instructions with an element that could not be found: 'shipp'" in rejected.value.details()
        assert [i["incidentKey"] for i in open_incidents(broker) if i["processInstanceKey"] == pi] == [incident["incidentKey"]]

        # Skip the broken task: terminate it, activate the next one with a variable.
        await stub.ModifyProcessInstance(
            gateway_pb2.ModifyProcessInstanceRequest(
                processInstanceKey=pi,
                activateInstructions=[
                    gateway_pb2.ModifyProcessInstanceRequest.ActivateInstruction(
                        elementId="ship",
                        variableInstructions=[gateway_pb2.ModifyProcessInstanceRequest.VariableInstruction(variables='{"paidBy": "invoice"}')],
                    )
                ],
                terminateInstructions=[gateway_pb2.ModifyProcessInstanceRequest.TerminateInstruction(elementInstanceKey=incident["elementInstanceKey"])],
            )
        )
        assert not [i for i in open_incidents(broker) if i["processInstanceKey"] == pi], "the incident is resolved"
        ship = await activate(stub, "pz-repair-ship")
        assert ship.processInstanceKey == pi
        assert json.loads(ship.variables) == {"orderId": "r-1", "paidBy": "invoice"}
        await stub.CompleteJob(gateway_pb2.CompleteJobRequest(jobKey=ship.key, variables="{}"))
        await wait_ended(stub, pi)

    asyncio.run(scenario())


def test_a_running_instance_is_migrated_to_version_2_and_finishes_there(broker, tmp_path):
    async def scenario():
        channel = create_insecure_channel(grpc_address=broker.address)
        client = ZeebeClient(channel)
        stub = GatewayStub(channel)
        v1 = await client.deploy_resource(write(tmp_path, "pz_migrate.bpmn", chain("pz_migrate", ("review", "pz-migrate-review"))))
        v1_key = v1.deployments[0].process_definition_key
        created = await client.run_process("pz_migrate", {"orderId": "m-1"})
        pi = created.process_instance_key
        job = await activate(stub, "pz-migrate-review")
        assert job.processDefinitionKey == v1_key

        v2 = await client.deploy_resource(
            write(tmp_path, "pz_migrate.bpmn", chain("pz_migrate", ("review2", "pz-migrate-review"), ("audit", "pz-migrate-audit")))
        )
        v2_key = v2.deployments[0].process_definition_key
        assert v2.deployments[0].version == 2

        plan = gateway_pb2.MigrateProcessInstanceRequest.MigrationPlan
        mapping = gateway_pb2.MigrateProcessInstanceRequest.MappingInstruction
        # A plan that leaves the active task unmapped is refused, naming it.
        with pytest.raises(grpc.aio.AioRpcError) as rejected:
            await stub.MigrateProcessInstance(
                gateway_pb2.MigrateProcessInstanceRequest(processInstanceKey=pi, migrationPlan=plan(targetProcessDefinitionKey=v2_key))
            )
        assert rejected.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "no mapping instruction defined for active element with id 'review'" in rejected.value.details()

        await stub.MigrateProcessInstance(
            gateway_pb2.MigrateProcessInstanceRequest(
                processInstanceKey=pi,
                migrationPlan=plan(targetProcessDefinitionKey=v2_key, mappingInstructions=[mapping(sourceElementId="review", targetElementId="review2")]),
            )
        )
        # The activated job belongs to version 2 now; completing it goes on in version 2.
        await stub.CompleteJob(gateway_pb2.CompleteJobRequest(jobKey=job.key, variables='{"approved": true}'))
        audit = await activate(stub, "pz-migrate-audit")
        assert audit.processInstanceKey == pi
        assert audit.processDefinitionKey == v2_key
        assert audit.processDefinitionVersion == 2
        assert json.loads(audit.variables) == {"orderId": "m-1", "approved": True}
        await stub.CompleteJob(gateway_pb2.CompleteJobRequest(jobKey=audit.key, variables="{}"))
        await wait_ended(stub, pi)

    asyncio.run(scenario())


def test_start_instructions_start_an_instance_at_a_later_task(broker, tmp_path):
    async def scenario():
        channel = create_insecure_channel(grpc_address=broker.address)
        client = ZeebeClient(channel)
        stub = GatewayStub(channel)
        await client.deploy_resource(write(tmp_path, "pz_start.bpmn", chain("pz_start", ("first", "pz-start-first"), ("second", "pz-start-second"))))
        start = gateway_pb2.ProcessInstanceCreationStartInstruction
        created = await stub.CreateProcessInstance(
            gateway_pb2.CreateProcessInstanceRequest(bpmnProcessId="pz_start", version=-1, variables='{"x": 1}', startInstructions=[start(elementId="second")])
        )
        second = await activate(stub, "pz-start-second")
        assert second.processInstanceKey == created.processInstanceKey
        await stub.CompleteJob(gateway_pb2.CompleteJobRequest(jobKey=second.key, variables="{}"))
        await wait_ended(stub, created.processInstanceKey)
        with pytest.raises(grpc.aio.AioRpcError) as rejected:
            await stub.CreateProcessInstance(
                gateway_pb2.CreateProcessInstanceRequest(bpmnProcessId="pz_start", version=-1, startInstructions=[start(elementId="nope")])
            )
        assert rejected.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "no element found with id 'nope'" in rejected.value.details()

    asyncio.run(scenario())
