"""Searches of the REST API served from secondary storage, against the real
databases: the embedded SQLite of `waggle dev` and a PostgreSQL the test
starts (tests/pg.py). Deploys, creates instances, works their jobs through
camunda-orchestration-sdk, then finds what happened through the searches.
Also: without secondary storage the searches say so, and a PostgreSQL
stopped under load loses no acknowledged instance."""

import concurrent.futures
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from conftest import running_broker  # noqa: E402
from pg import Postgres  # noqa: E402
from camunda_orchestration_sdk import CamundaClient  # noqa: E402
import camunda_orchestration_sdk.models as m  # noqa: E402

# Bound on every wait in these tests.
TIMEOUT_S = 30

MODEL = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="t">
  <bpmn:process id="{pid}" name="Search me" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="task"/>
    <bpmn:serviceTask id="task">
      <bpmn:extensionElements><zeebe:taskDefinition type="{pid}-work" retries="1"/></bpmn:extensionElements>
    </bpmn:serviceTask>
    <bpmn:sequenceFlow id="f2" sourceRef="task" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>"""

STRAIGHT = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="t">
  <bpmn:process id="straight" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>"""


def http(broker, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(broker.rest_url + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as r:
            return r.status, r.headers.get("Content-Type"), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read()


def search(broker, resource, body):
    status, _, data = http(broker, "POST", f"/v2/{resource}/search", body)
    assert status == 200, (resource, status, data)
    return json.loads(data)


def eventually(probe, what):
    """Polls `probe` until it returns a true value (searches lag the engine)."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {TIMEOUT_S} s: {what}")
        time.sleep(0.1)


def deploy(client, tmp_path, name, text):
    path = os.path.join(tmp_path, name)
    with open(path, "w") as f:
        f.write(text)
    [item] = client.deploy_resources_from_files([path]).deployments
    return item.process_definition


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store_broker(request):
    if request.param == "sqlite":
        # waggle dev keeps its secondary storage in SQLite by default.
        with running_broker(prefix="waggle-search-") as b:
            yield b
        return
    pg = Postgres()
    try:
        env = {"WAGGLE_SECONDARY_STORAGE_TYPE": "postgresql", "WAGGLE_SECONDARY_STORAGE_URL": pg.url}
        with running_broker(env, prefix="waggle-search-") as b:
            yield b
    finally:
        pg.close()


def test_deployed_created_and_worked_instances_are_found_by_the_searches(store_broker, tmp_path):
    broker = store_broker
    client = CamundaClient(configuration={"CAMUNDA_REST_ADDRESS": broker.rest_url, "CAMUNDA_AUTH_STRATEGY": "NONE"})
    pid = "searched"
    definition = deploy(client, tmp_path, "searched.bpmn", MODEL.format(pid=pid))
    keys = []
    for amount in (10, 20, 30):
        created = client.create_process_instance(
            data=m.ProcessCreationById(
                process_definition_id=pid,
                variables=m.ProcessInstanceCreationInstructionBaseVariables.from_dict({"amount": amount}),
            )
        )
        keys.append(str(created.process_instance_key))
    jobs = []
    deadline = time.monotonic() + TIMEOUT_S
    while len(jobs) < 3 and time.monotonic() < deadline:
        batch = client.activate_jobs(
            data=m.JobActivationRequest(type_=f"{pid}-work", timeout=30_000, max_jobs_to_activate=3 - len(jobs), request_timeout=1000)
        )
        jobs.extend(batch.jobs)
    assert len(jobs) == 3
    by_instance = {str(j.process_instance_key): j for j in jobs}
    done, broken = keys[:2], keys[2]
    for key in done:
        client.complete_job(job_key=by_instance[key].job_key)
    client.fail_job(job_key=by_instance[broken].job_key, data=m.JobFailRequest(retries=0, error_message="card declined"))

    def instances(body):
        return search(broker, "process-instances", body)

    completed = eventually(
        lambda: (r := instances({"filter": {"processDefinitionId": pid, "state": "COMPLETED"}}))["page"]["totalItems"] == 2 and r,
        "two completed instances",
    )
    assert sorted(i["processInstanceKey"] for i in completed["items"]) == sorted(done)
    first = completed["items"][0]
    assert first["processDefinitionName"] == "Search me"
    assert first["processDefinitionKey"] == str(definition.process_definition_key)
    assert first["hasIncident"] is False and first["endDate"] is not None

    # The SDK reads the same search with its own models of the responses.
    troubled = eventually(
        lambda: (r := client.search_process_instances(
            data=m.ProcessInstanceSearchQuery.from_dict({"filter": {"processDefinitionId": pid, "hasIncident": True}})
        )).items and r,
        "the instance with an incident",
    )
    assert [str(i.process_instance_key) for i in troubled.items] == [broken]
    assert troubled.items[0].state.value == "ACTIVE"

    # Sort and pages: newest first, one per page, cursors both ways.
    body = {"filter": {"processDefinitionId": pid}, "sort": [{"field": "processInstanceKey", "order": "DESC"}]}
    page1 = instances({**body, "page": {"limit": 2}})
    assert [i["processInstanceKey"] for i in page1["items"]] == sorted(keys, key=int, reverse=True)[:2]
    assert page1["page"]["totalItems"] == 3
    page2 = instances({**body, "page": {"limit": 2, "after": page1["page"]["endCursor"]}})
    assert [i["processInstanceKey"] for i in page2["items"]] == [min(keys, key=int)]
    back = instances({**body, "page": {"limit": 2, "before": page2["page"]["startCursor"]}})
    assert back["items"] == page1["items"]
    offset = instances({**body, "page": {"from": 1, "limit": 1}})
    assert offset["items"] == [page1["items"][1]]

    # Definitions: search, get, XML.
    defs = search(broker, "process-definitions", {"filter": {"processDefinitionId": pid}})
    assert [d["processDefinitionKey"] for d in defs["items"]] == [str(definition.process_definition_key)]
    assert defs["items"][0]["name"] == "Search me" and defs["items"][0]["version"] == 1
    status, _, data = http(broker, "GET", f"/v2/process-definitions/{definition.process_definition_key}")
    assert status == 200 and json.loads(data)["resourceName"] == "searched.bpmn"
    status, content_type, data = http(broker, "GET", f"/v2/process-definitions/{definition.process_definition_key}/xml")
    assert status == 200 and content_type.startswith("text/xml")
    assert data.decode() == MODEL.format(pid=pid)
    status, _, data = http(broker, "GET", f"/v2/process-instances/{done[0]}")
    assert status == 200 and json.loads(data)["state"] == "COMPLETED"
    status, _, data = http(broker, "GET", "/v2/process-instances/1")
    assert status == 404, data

    # Element instances, variables, jobs, incidents, user tasks.
    elements = search(broker, "element-instances", {"filter": {"processInstanceKey": broken, "elementId": "task"}})
    [task] = elements["items"]
    assert task["state"] == "ACTIVE" and task["type"] == "SERVICE_TASK" and task["hasIncident"] is True
    variables = search(broker, "variables", {"filter": {"processInstanceKey": done[1], "name": "amount"}})
    assert [v["value"] for v in variables["items"]] == ["20"]
    worked = eventually(
        lambda: (r := search(broker, "jobs", {"filter": {"type": f"{pid}-work", "state": "COMPLETED"}}))["page"]["totalItems"] == 2 and r,
        "two completed jobs",
    )
    assert sorted(j["processInstanceKey"] for j in worked["items"]) == sorted(done)
    sdk_jobs = client.search_jobs(data=m.JobSearchQuery.from_dict({"filter": {"state": "FAILED", "type": f"{pid}-work"}}))
    assert [str(j.job_key) for j in sdk_jobs.items] == [str(by_instance[broken].job_key)]
    incidents = search(broker, "incidents", {"filter": {"processInstanceKey": broken}})
    [incident] = incidents["items"]
    assert incident["errorType"] == "JOB_NO_RETRIES" and incident["state"] == "ACTIVE"
    assert incident["errorMessage"] == "card declined"
    assert incident["jobKey"] == str(by_instance[broken].job_key)
    assert search(broker, "user-tasks", {})["page"]["totalItems"] == 0

    # Each of them by key, as the search found it; an unknown key is a 404.
    for path, item, key in [
        ("element-instances", task, "elementInstanceKey"),
        ("variables", variables["items"][0], "variableKey"),
        ("incidents", incident, "incidentKey"),
    ]:
        status, _, data = http(broker, "GET", f"/v2/{path}/{item[key]}")
        assert status == 200 and json.loads(data) == item, (path, data)
        status, content_type, data = http(broker, "GET", f"/v2/{path}/1")
        assert status == 404 and content_type == "application/problem+json", (path, data)
    status, _, data = http(broker, "GET", "/v2/user-tasks/1")
    assert status == 404 and "user task" in json.loads(data)["detail"], data

    # Statistics per element.
    status, _, data = http(broker, "GET", f"/v2/process-instances/{broken}/statistics/element-instances")
    stats = {s["elementId"]: s for s in json.loads(data)["items"]}
    assert stats["task"] == {"elementId": "task", "active": 1, "canceled": 0, "incidents": 1, "completed": 0}
    status, _, data = http(broker, "GET", f"/v2/process-instances/{done[0]}/statistics/element-instances")
    stats = {s["elementId"]: s for s in json.loads(data)["items"]}
    assert stats["task"]["completed"] == 1 and stats["end"]["completed"] == 1
    status, _, data = http(broker, "GET", "/v2/process-instances/1/statistics/element-instances")
    assert status == 200 and json.loads(data) == {"items": []}, data

    # A filter on an unknown field is refused naming it.
    status, content_type, data = http(broker, "POST", "/v2/jobs/search", {"filter": {"colour": "red"}})
    assert status == 400 and content_type == "application/problem+json"
    assert "colour" in json.loads(data)["detail"]


def test_without_secondary_storage_the_searches_say_how_to_configure_it():
    with running_broker({"WAGGLE_SECONDARY_STORAGE_TYPE": "none"}, prefix="waggle-nostore-") as broker:
        for method, path in [("POST", "/v2/process-instances/search"), ("GET", "/v2/process-definitions/1/xml")]:
            status, content_type, data = http(broker, method, path, {} if method == "POST" else None)
            assert status == 403, data
            assert content_type == "application/problem+json"
            problem = json.loads(data)
            assert "secondary_storage" in problem["detail"] and problem["instance"] == path


def test_an_outage_of_postgresql_under_load_loses_no_acknowledged_instance(tmp_path):
    pg = Postgres()
    env = {
        "WAGGLE_SECONDARY_STORAGE_TYPE": "postgresql",
        "WAGGLE_SECONDARY_STORAGE_URL": pg.url,
        # Small, so that the outage reaches the bound within the test.
        "WAGGLE_EXPORTER_MAX_LAG_RECORDS": "3000",
    }
    try:
        with running_broker(env, prefix="waggle-outage-") as broker:
            client = CamundaClient(configuration={"CAMUNDA_REST_ADDRESS": broker.rest_url, "CAMUNDA_AUTH_STRATEGY": "NONE"})
            deploy(client, tmp_path, "straight.bpmn", STRAIGHT)
            acknowledged, refused = [], []
            stop = threading.Event()

            def load():
                while not stop.is_set():
                    status, _, data = http(broker, "POST", "/v2/process-instances", {"processDefinitionId": "straight"})
                    if status == 200:
                        acknowledged.append(json.loads(data)["processInstanceKey"])
                    elif status == 503 and json.loads(data)["title"] == "RESOURCE_EXHAUSTED":
                        refused.append(time.monotonic())
                        time.sleep(0.01)
                    else:
                        raise AssertionError((status, data))

            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                workers = [pool.submit(load) for _ in range(4)]
                time.sleep(1.0)
                before_outage = len(acknowledged)
                pg.stop()
                stopped = time.monotonic()
                # Until the partition refuses work for lack of export, and
                # the writer gave up waiting for a connection (2 s) at least once.
                while (not refused or time.monotonic() < stopped + 4) and time.monotonic() < stopped + TIMEOUT_S:
                    time.sleep(0.1)
                pg.start()
                time.sleep(1.0)
                stop.set()
                for w in workers:
                    w.result(timeout=TIMEOUT_S)
            assert before_outage > 0
            assert refused, "the partition answered RESOURCE_EXHAUSTED while PostgreSQL was down"
            wanted = set(acknowledged)

            def all_exported():
                rows = pg.query("SELECT process_instance_key, state FROM process_instance")
                found = {key: state for key, state in rows}
                missing = wanted - found.keys()
                return not missing and all(found[k] == "COMPLETED" for k in wanted)

            eventually(all_exported, f"all {len(wanted)} acknowledged instances in PostgreSQL")
            log = open(os.path.join(broker.directory, "broker.log")).read()
            name = f"PostgreSQL database postgres://waggle@127.0.0.1:{pg.port}/waggle"
            assert f"writing partition 1's records failed: {name}: " in log, "names the database and the cause"
            assert f"{name} is back after" in log
    finally:
        pg.close()
