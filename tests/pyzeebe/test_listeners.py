"""Execution listeners through pyzeebe: the listener jobs are ordinary jobs a
pyzeebe worker serves, run in order around the element, and their variables
reach the task and the process. The job's kind and listener event type are
checked over REST, and a task listener denies a completion there."""

import asyncio
import json
import os
import threading
import time
import urllib.error
import urllib.request

from pyzeebe import ZeebeClient, ZeebeWorker, create_insecure_channel

LISTENED = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="t">
  <bpmn:process id="{pid}" isExecutable="true">
    <bpmn:extensionElements>
      <zeebe:executionListeners>
        <zeebe:executionListener eventType="start" type="{prefix}-process-start"/>
        <zeebe:executionListener eventType="end" type="{prefix}-process-end"/>
      </zeebe:executionListeners>
    </bpmn:extensionElements>
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="task"/>
    <bpmn:serviceTask id="task">
      <bpmn:extensionElements>
        <zeebe:taskDefinition type="{prefix}-work"/>
        <zeebe:executionListeners>
          <zeebe:executionListener eventType="start" type="{prefix}-task-start"/>
          <zeebe:executionListener eventType="end" type="{prefix}-task-end"/>
        </zeebe:executionListeners>
      </bpmn:extensionElements>
    </bpmn:serviceTask>
    <bpmn:sequenceFlow id="f2" sourceRef="task" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>"""

REVIEWED = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="t">
  <bpmn:process id="pz_reviewed" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="review"/>
    <bpmn:userTask id="review">
      <bpmn:extensionElements>
        <zeebe:userTask/>
        <zeebe:taskListeners>
          <zeebe:taskListener eventType="completing" type="pz-check"/>
        </zeebe:taskListeners>
      </bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="f2" sourceRef="review" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>"""

# Bound on every wait in these tests.
TIMEOUT_S = 30


def write(tmp_path, name, xml):
    path = os.path.join(tmp_path, name)
    with open(path, "w") as f:
        f.write(xml)
    return path


def rest(broker, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        broker.rest_url + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            text = response.read().decode()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        text = e.read().decode()
        return e.code, json.loads(text) if text else None


def created_user_task(broker, process_instance_key):
    """The key of the user task created in the instance, from the JSON-lines
    exporter's file."""
    path = os.path.join(broker.exports, "partition-1.jsonl")
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        if os.path.exists(path):
            with open(path) as f:
                for line in f:
                    record = json.loads(line)["record"]
                    value = record["value"].get("UserTask")
                    if (
                        value is not None
                        and record["intent"] == "Created"
                        and value["process_instance_key"] == process_instance_key
                    ):
                        return record["key"]
        time.sleep(0.1)
    raise AssertionError("no user task was created")


def activate(broker, job_type):
    status, body = rest(
        broker,
        "POST",
        "/v2/jobs/activation",
        {"type": job_type, "timeout": 30000, "maxJobsToActivate": 1, "requestTimeout": 10000},
    )
    assert status == 200, body
    return body["jobs"]


def test_run_execution_listeners(broker, tmp_path):
    async def scenario():
        channel = create_insecure_channel(grpc_address=broker.address)
        client = ZeebeClient(channel)
        await client.deploy_resource(write(tmp_path, "pz_listened.bpmn", LISTENED.format(pid="pz_listened", prefix="pz")))

        worker = ZeebeWorker(channel, poll_retry_delay=0)
        order = []

        @worker.task(task_type="pz-process-start")
        async def process_start():
            order.append("process-start")
            return {"traceId": "t-1"}

        @worker.task(task_type="pz-task-start")
        async def task_start(traceId: str):
            order.append("task-start")
            return {"fromStart": traceId + "/start"}

        @worker.task(task_type="pz-work")
        async def work(fromStart: str):
            order.append("work")
            return {"worked": fromStart}

        @worker.task(task_type="pz-task-end")
        async def task_end(worked: str):
            order.append("task-end")
            return {"audited": worked + "/end"}

        @worker.task(task_type="pz-process-end")
        async def process_end():
            order.append("process-end")
            return {}

        result_task = asyncio.create_task(
            client.run_process_with_result("pz_listened", {}, timeout=TIMEOUT_S * 1000)
        )
        worker_task = asyncio.create_task(worker.work())
        try:
            result = await asyncio.wait_for(result_task, TIMEOUT_S)
        finally:
            await worker.stop()
            worker_task.cancel()
            try:
                await worker_task
            except (asyncio.CancelledError, Exception):
                pass
        assert order == ["process-start", "task-start", "work", "task-end", "process-end"]
        # A start listener's variables are the element's own; an end
        # listener's reach the process like output mappings.
        assert result.variables["traceId"] == "t-1"
        assert result.variables["worked"] == "t-1/start"
        assert result.variables["audited"] == "t-1/start/end"
        assert "fromStart" not in result.variables

    asyncio.run(scenario())


def test_listener_jobs_carry_their_kind_and_a_task_listener_denies_over_rest(broker, tmp_path):
    async def deploy_and_start():
        channel = create_insecure_channel(grpc_address=broker.address)
        client = ZeebeClient(channel)
        await client.deploy_resource(write(tmp_path, "pz_kind.bpmn", LISTENED.format(pid="pz_kind", prefix="rk")))
        await client.deploy_resource(write(tmp_path, "pz_reviewed.bpmn", REVIEWED))
        await client.run_process("pz_kind", {})
        created = await client.run_process("pz_reviewed", {})
        return created.process_instance_key

    reviewed = asyncio.run(deploy_and_start())

    jobs = activate(broker, "rk-process-start")
    assert len(jobs) == 1
    assert jobs[0]["kind"] == "EXECUTION_LISTENER"
    assert jobs[0]["listenerEventType"] == "START"
    assert jobs[0]["elementId"] == "pz_kind"
    status, _ = rest(broker, "POST", f"/v2/jobs/{jobs[0]['jobKey']}/completion", {})
    assert status == 204
    jobs = activate(broker, "rk-task-start")
    assert jobs[0]["kind"] == "EXECUTION_LISTENER" and jobs[0]["elementId"] == "task"

    # The user task's completion waits for its completing listener, which denies it.
    task_key = created_user_task(broker, reviewed)
    answer = {}

    def complete_task():
        answer["completion"] = rest(broker, "POST", f"/v2/user-tasks/{task_key}/completion", {"variables": {"ok": False}})

    thread = threading.Thread(target=complete_task)
    thread.start()
    jobs = activate(broker, "pz-check")
    assert jobs[0]["kind"] == "TASK_LISTENER"
    assert jobs[0]["listenerEventType"] == "COMPLETING"
    assert jobs[0]["userTask"]["userTaskKey"] == str(task_key)
    assert jobs[0]["userTask"]["action"] == "complete"
    status, body = rest(
        broker,
        "POST",
        f"/v2/jobs/{jobs[0]['jobKey']}/completion",
        {"result": {"type": "userTask", "denied": True, "deniedReason": "missing receipt"}},
    )
    assert status == 204, body
    thread.join(TIMEOUT_S)
    status, body = answer["completion"]
    assert status >= 400, body
    assert "missing receipt" in json.dumps(body)
