"""pyzeebe, a Zeebe client written by others, drives `waggle dev` through the
flows a user's worker goes through."""

import asyncio
import json
import os
import time
import urllib.request

import pytest
from pyzeebe import ZeebeClient, ZeebeWorker, Job, create_insecure_channel
from pyzeebe.proto import gateway_pb2
from pyzeebe.proto.gateway_pb2_grpc import GatewayStub
from pyzeebe.errors import BusinessError, ProcessDefinitionNotFoundError, ProcessInvalidError

ONE_TASK = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="t">
  <bpmn:process id="{pid}" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="task"/>
    <bpmn:serviceTask id="task">
      <bpmn:extensionElements><zeebe:taskDefinition type="{job_type}" retries="{retries}"/></bpmn:extensionElements>
    </bpmn:serviceTask>
    <bpmn:sequenceFlow id="f2" sourceRef="task" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>"""

# Bound on every wait in these tests.
TIMEOUT_S = 30


def write_process(tmp_path, pid, job_type, retries=3):
    path = os.path.join(tmp_path, f"{pid}.bpmn")
    with open(path, "w") as f:
        f.write(ONE_TASK.format(pid=pid, job_type=job_type, retries=retries))
    return path


async def run_worker_until(worker, done: asyncio.Event):
    task = asyncio.create_task(worker.work())
    try:
        await asyncio.wait_for(done.wait(), TIMEOUT_S)
    finally:
        await worker.stop()
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, Exception):
            pass


async def doubled_by_a_worker(channel, tmp_path, pid, amount):
    """Deploys a one-task process `pid` over `channel` (pyzeebe), runs it
    with a worker that doubles `amount`, and returns the doubled amount
    from the instance's result."""
    client = ZeebeClient(channel)
    assert (await client.topology()).cluster_size == 1
    await client.deploy_resource(write_process(tmp_path, pid, f"{pid}-job"))
    worker = ZeebeWorker(channel, poll_retry_delay=0)
    done = asyncio.Event()

    @worker.task(task_type=f"{pid}-job")
    async def work(amount: int):
        done.set()
        return {"doubled": amount * 2}

    result_task = asyncio.create_task(client.run_process_with_result(pid, {"amount": amount}, timeout=TIMEOUT_S * 1000))
    await run_worker_until(worker, done)
    result = await asyncio.wait_for(result_task, TIMEOUT_S)
    return result.variables["doubled"]


def test_deploy_create_and_a_worker_completes_the_job(broker, tmp_path):
    async def scenario():
        channel = create_insecure_channel(grpc_address=broker.address)
        client = ZeebeClient(channel)
        topology = await client.topology()
        assert topology.cluster_size == 1
        await client.deploy_resource(write_process(tmp_path, "pz_order", "pz-charge"))

        worker = ZeebeWorker(channel, poll_retry_delay=0)
        done = asyncio.Event()
        seen = []

        @worker.task(task_type="pz-charge")
        async def charge(amount: int):
            seen.append(amount)
            done.set()
            return {"charged": amount * 2}

        result_task = asyncio.create_task(
            client.run_process_with_result("pz_order", {"amount": 21}, timeout=TIMEOUT_S * 1000)
        )
        await run_worker_until(worker, done)
        result = await asyncio.wait_for(result_task, TIMEOUT_S)
        assert seen == [21]
        assert result.variables["charged"] == 42
        assert result.variables["amount"] == 21

        created = await client.run_process("pz_order", {"amount": 1})
        assert created.process_instance_key > 0

    asyncio.run(scenario())


def test_a_failed_job_is_retried_until_it_succeeds(broker, tmp_path):
    async def scenario():
        channel = create_insecure_channel(grpc_address=broker.address)
        client = ZeebeClient(channel)
        await client.deploy_resource(write_process(tmp_path, "pz_flaky", "pz-flaky", retries=3))
        worker = ZeebeWorker(channel, poll_retry_delay=0)
        attempts = []
        done = asyncio.Event()

        @worker.task(task_type="pz-flaky")
        async def flaky(job: Job):
            attempts.append(job.retries)
            if len(attempts) < 3:
                raise RuntimeError("temporarily unavailable")
            done.set()
            return {"ok": True}

        result_task = asyncio.create_task(client.run_process_with_result("pz_flaky", {}, timeout=TIMEOUT_S * 1000))
        await run_worker_until(worker, done)
        result = await asyncio.wait_for(result_task, TIMEOUT_S)
        assert result.variables["ok"] is True
        # Each failure took one retry off the job, as in Zeebe.
        assert attempts == [3, 2, 1]

    asyncio.run(scenario())


def test_bad_requests_get_zeebe_status_codes(broker, tmp_path):
    async def scenario():
        channel = create_insecure_channel(grpc_address=broker.address)
        client = ZeebeClient(channel)
        broken = os.path.join(tmp_path, "broken.bpmn")
        with open(broken, "w") as f:
            f.write(ONE_TASK.format(pid="pz_broken", job_type="x", retries=3).replace(' type="x"', ""))
        # pyzeebe raises these for INVALID_ARGUMENT and NOT_FOUND.
        with pytest.raises(ProcessInvalidError):
            await client.deploy_resource(broken)
        with pytest.raises(ProcessDefinitionNotFoundError):
            await client.run_process("pz_no_such_process", {})

    asyncio.run(scenario())


PAYMENT = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="t">
  <bpmn:message id="m" name="payment-received">
    <bpmn:extensionElements><zeebe:subscription correlationKey="=orderId"/></bpmn:extensionElements>
  </bpmn:message>
  <bpmn:process id="pz_payment" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="wait"/>
    <bpmn:intermediateCatchEvent id="wait">
      <bpmn:messageEventDefinition messageRef="m"/>
    </bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="f2" sourceRef="wait" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>"""

CHECKED = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="t">
  <bpmn:error id="e" errorCode="CARD_DECLINED"/>
  <bpmn:process id="pz_checked" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="charge"/>
    <bpmn:serviceTask id="charge">
      <bpmn:extensionElements><zeebe:taskDefinition type="pz-decline"/></bpmn:extensionElements>
    </bpmn:serviceTask>
    <bpmn:sequenceFlow id="f2" sourceRef="charge" targetRef="paid"/>
    <bpmn:endEvent id="paid"/>
    <bpmn:boundaryEvent id="declined" attachedToRef="charge">
      <bpmn:errorEventDefinition errorRef="e"/>
    </bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="f3" sourceRef="declined" targetRef="notify"/>
    <bpmn:scriptTask id="notify">
      <bpmn:extensionElements><zeebe:script expression="=&quot;declined&quot;" resultVariable="outcome"/></bpmn:extensionElements>
    </bpmn:scriptTask>
    <bpmn:sequenceFlow id="f4" sourceRef="notify" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>"""


def write(tmp_path, name, text):
    path = os.path.join(tmp_path, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def test_a_published_message_correlates(broker, tmp_path):
    async def scenario():
        channel = create_insecure_channel(grpc_address=broker.address)
        client = ZeebeClient(channel)
        await client.deploy_resource(write(tmp_path, "payment.bpmn", PAYMENT))
        waiting = asyncio.create_task(
            client.run_process_with_result("pz_payment", {"orderId": "order-7"}, timeout=TIMEOUT_S * 1000)
        )
        # The message is buffered if it arrives before the subscription opens.
        await client.publish_message("payment-received", "order-7", {"amount": 99})
        result = await asyncio.wait_for(waiting, TIMEOUT_S)
        assert result.variables["amount"] == 99
        assert result.variables["orderId"] == "order-7"

    asyncio.run(scenario())


def test_a_thrown_error_is_caught_by_the_boundary_event(broker, tmp_path):
    async def scenario():
        channel = create_insecure_channel(grpc_address=broker.address)
        client = ZeebeClient(channel)
        await client.deploy_resource(write(tmp_path, "checked.bpmn", CHECKED))
        worker = ZeebeWorker(channel, poll_retry_delay=0)
        done = asyncio.Event()

        @worker.task(task_type="pz-decline")
        async def decline():
            done.set()
            raise BusinessError("CARD_DECLINED")

        result_task = asyncio.create_task(
            client.run_process_with_result("pz_checked", {}, timeout=TIMEOUT_S * 1000)
        )
        await run_worker_until(worker, done)
        result = await asyncio.wait_for(result_task, TIMEOUT_S)
        assert result.variables["outcome"] == "declined"

    asyncio.run(scenario())


def open_incidents(broker):
    with urllib.request.urlopen(f"http://127.0.0.1:{broker.management_port}/incidents", timeout=5) as r:
        return json.loads(r.read())


def test_a_job_out_of_retries_raises_an_incident_that_is_resolved(broker, tmp_path):
    async def scenario():
        channel = create_insecure_channel(grpc_address=broker.address)
        client = ZeebeClient(channel)
        stub = GatewayStub(channel)
        await client.deploy_resource(write_process(tmp_path, "pz_incident", "pz-broken", retries=2))
        worker = ZeebeWorker(channel, poll_retry_delay=0)
        attempts = []
        healed = asyncio.Event()
        done = asyncio.Event()

        @worker.task(task_type="pz-broken")
        async def broken(job: Job):
            attempts.append(job.retries)
            if not healed.is_set():
                raise RuntimeError("the downstream system is down")
            done.set()
            return {"fixed": True}

        result_task = asyncio.create_task(
            client.run_process_with_result("pz_incident", {}, timeout=TIMEOUT_S * 1000)
        )
        worker_task = asyncio.create_task(worker.work())
        try:
            incident = None
            deadline = time.monotonic() + TIMEOUT_S
            while incident is None:
                assert time.monotonic() < deadline, "no incident after the retries ran out"
                found = [i for i in open_incidents(broker) if i["bpmnProcessId"] == "pz_incident"]
                incident = found[0] if found else None
                await asyncio.sleep(0.05)
            assert incident["errorType"] == "JOB_NO_RETRIES"
            assert "downstream system is down" in incident["errorMessage"]
            assert attempts == [2, 1]
            # As in Zeebe: give the job retries, then resolve the incident.
            healed.set()
            await stub.UpdateJobRetries(gateway_pb2.UpdateJobRetriesRequest(jobKey=incident["jobKey"], retries=1))
            await stub.ResolveIncident(gateway_pb2.ResolveIncidentRequest(incidentKey=incident["incidentKey"]))
            result = await asyncio.wait_for(result_task, TIMEOUT_S)
            assert result.variables["fixed"] is True
            assert not [i for i in open_incidents(broker) if i["bpmnProcessId"] == "pz_incident"]
        finally:
            await worker.stop()
            worker_task.cancel()
            try:
                await worker_task
            except (asyncio.CancelledError, Exception):
                pass

    asyncio.run(scenario())
