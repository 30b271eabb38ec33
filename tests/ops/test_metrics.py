"""`/metrics` as an operator's Prometheus reads it: clean under
`promtool check metrics`, OpenMetrics when asked for, and the families move
with the work done. The dashboard refers only to families the broker
exports."""

import asyncio
import json
import os
import re
import subprocess
import time
import urllib.request

from pyzeebe import ZeebeClient, create_insecure_channel
from pyzeebe.errors import ProcessDefinitionNotFoundError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIMEOUT_S = 30

ONE_TASK = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="t">
  <bpmn:process id="ops_plain" isExecutable="true">
    <bpmn:startEvent id="start"/><bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>"""


def promtool() -> str:
    path = os.environ.get("PROMTOOL", os.path.join(REPO, ".cache/promtool/usr/bin/promtool"))
    assert os.path.exists(path), f"promtool not found at {path}: scripts/test.sh unpacks it (setup_promtool)"
    return path


def scrape(broker, accept=None):
    request = urllib.request.Request(f"http://127.0.0.1:{broker.management_port}/metrics")
    if accept:
        request.add_header("Accept", accept)
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as r:
        return r.headers.get("Content-Type"), r.read().decode()


def sample(text, name, **labels):
    """The value of the series `name` whose labels include `labels`."""
    for line in text.splitlines():
        m = re.match(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(m.group(3))
    return None


def test_metrics_pass_promtool_and_follow_the_work(broker, tmp_path):
    _, before = scrape(broker)

    async def work():
        channel = create_insecure_channel(grpc_address=broker.address)
        client = ZeebeClient(channel)
        path = os.path.join(tmp_path, "ops_plain.bpmn")
        with open(path, "w") as f:
            f.write(ONE_TASK)
        await client.deploy_resource(path)
        for i in range(5):
            await client.run_process("ops_plain", {"i": i})
        try:
            await client.run_process("ops_no_such_process", {})
        except ProcessDefinitionNotFoundError:
            pass

    asyncio.run(work())
    content_type, text = scrape(broker)
    assert content_type.startswith("text/plain; version=0.0.4"), content_type
    checked = subprocess.run([promtool(), "check", "metrics"], input=text, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    def grew(name, by, **labels):
        old = sample(before, name, **labels) or 0.0
        new = sample(text, name, **labels)
        assert new is not None and new - old >= by, f"{name}{labels}: {old} -> {new}"

    grew("waggle_instances_created_total", 5, partition="1")
    grew("waggle_instances_completed_total", 5, partition="1")
    grew("waggle_commands_processed_total", 5, partition="1", kind="PROCESS_INSTANCE_CREATION")
    grew("waggle_commands_rejected_total", 1, partition="1", kind="NOT_FOUND")
    grew("waggle_gateway_requests_total", 5, api="grpc", method="CreateProcessInstance", code="Ok")
    grew("waggle_gateway_requests_total", 1, api="grpc", method="CreateProcessInstance", code="NotFound")
    assert sample(text, "waggle_build_info") == 1
    assert sample(text, "waggle_log_sync_seconds_count", partition="1") >= 1
    # Gauges published every half second and every disk check.
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        _, text = scrape(broker)
        gauges = {
            "term": sample(text, "waggle_raft_term", partition="1"),
            "commit": sample(text, "waggle_raft_commit_index", partition="1"),
            "free": sample(text, "waggle_disk_free_bytes"),
        }
        if gauges["term"] >= 1 and gauges["commit"] >= 7 and gauges["free"] > 0:
            break
        assert time.monotonic() < deadline, gauges
        time.sleep(0.2)


def test_openmetrics_when_asked_for(broker):
    content_type, text = scrape(broker, accept="application/openmetrics-text;version=1.0.0,text/plain;q=0.5")
    assert content_type.startswith("application/openmetrics-text; version=1.0.0"), content_type
    assert text.rstrip().endswith("# EOF")
    assert "# TYPE waggle_appended_records counter" in text


def test_the_dashboard_uses_only_exported_families(broker):
    _, text = scrape(broker)
    exported = {m.group(1) for m in re.finditer(r"^# TYPE (\S+) ", text, re.M)}
    histograms = {m.group(1) for m in re.finditer(r"^# TYPE (\S+) histogram", text, re.M)}
    exported |= {f"{h}_{suffix}" for h in histograms for suffix in ("bucket", "sum", "count")}
    # Series a single node has none of (a leader's view of its followers).
    exported |= {"waggle_raft_replication_lag_entries"}
    with open(os.path.join(REPO, "packaging/monitoring/waggle-dashboard.json")) as f:
        dashboard = json.load(f)
    used = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used |= set(re.findall(r"\bwaggle_\w+", target["expr"]))
    assert used, "the dashboard queries no waggle family"
    assert used <= exported, f"not exported: {sorted(used - exported)}"
