"""Load for the rollout test: creates process instances and completes their
jobs through the Zeebe gateway of every node, and afterwards checks that
every instance whose creation was acknowledged was completed.

An instance counts as completed when the CompleteJob of its job was
acknowledged, or answered NOT_FOUND after this worker had activated the job
(activation is committed, so the job existed; NOT_FOUND then means an
earlier completion whose answer got lost). Every loop is bounded in time.

Phases: `--run` creates instances until the file --stop-file appears (or
--max-seconds pass), then keeps completing jobs until every acknowledged
instance is completed (or --drain-seconds pass). Results go to --out as JSON.
Exit status 0 only when no acknowledged instance is missing.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import threading
import time

import grpc
from pyzeebe.proto import gateway_pb2 as pb
from pyzeebe.proto import gateway_pb2_grpc as rpc

PROCESS_ID = "rollout_check"
JOB_TYPE = "rollout-check"
BPMN = f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="t">
  <bpmn:process id="{PROCESS_ID}" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="work"/>
    <bpmn:serviceTask id="work">
      <bpmn:extensionElements><zeebe:taskDefinition type="{JOB_TYPE}"/></bpmn:extensionElements>
    </bpmn:serviceTask>
    <bpmn:sequenceFlow id="f2" sourceRef="work" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>
"""
RPC_TIMEOUT_S = 10.0
COMPLETE_ATTEMPTS = 5


class Gateways:
    """One channel per gateway; callers take them round-robin."""

    def __init__(self, addresses: list[str]):
        self.stubs = [(a, rpc.GatewayStub(grpc.insecure_channel(a))) for a in addresses]
        self._next = itertools.cycle(range(len(self.stubs)))
        self._lock = threading.Lock()

    def pick(self):
        with self._lock:
            return self.stubs[next(self._next)]


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.acked: list[int] = []
        self.completed: set[int] = set()
        self.errors: dict[str, int] = {}
        self.activated = 0

    def error(self, what: str, e: grpc.RpcError):
        key = f"{what}:{e.code().name}"
        with self.lock:
            self.errors[key] = self.errors.get(key, 0) + 1


def deploy(gateways: Gateways, deadline: float):
    last = None
    while time.monotonic() < deadline:
        address, stub = gateways.pick()
        try:
            stub.DeployResource(
                pb.DeployResourceRequest(resources=[pb.Resource(name="rollout.bpmn", content=BPMN.encode())]),
                timeout=RPC_TIMEOUT_S,
            )
            return
        except grpc.RpcError as e:
            last = f"{address}: {e.code().name} {e.details()}"
            time.sleep(1)
    raise SystemExit(f"deploy failed: {last}")


def creator(gateways: Gateways, tally: Tally, stop: threading.Event, rate: float, log):
    period = 1.0 / rate
    next_at = time.monotonic()
    while not stop.is_set():
        address, stub = gateways.pick()
        try:
            response = stub.CreateProcessInstance(
                pb.CreateProcessInstanceRequest(bpmnProcessId=PROCESS_ID, version=-1, variables="{}"),
                timeout=RPC_TIMEOUT_S,
            )
            with tally.lock:
                tally.acked.append(response.processInstanceKey)
            log.write(f"{response.processInstanceKey}\n")
            log.flush()
        except grpc.RpcError as e:
            tally.error("create", e)
        next_at += period
        delay = next_at - time.monotonic()
        if delay > 0:
            stop.wait(delay)
        else:
            next_at = time.monotonic()


def complete(gateways: Gateways, tally: Tally, job) -> None:
    for attempt in range(COMPLETE_ATTEMPTS):
        address, stub = gateways.pick()
        try:
            stub.CompleteJob(pb.CompleteJobRequest(jobKey=job.key, variables="{}"), timeout=RPC_TIMEOUT_S)
        except grpc.RpcError as e:
            tally.error("complete", e)
            if e.code() != grpc.StatusCode.NOT_FOUND:
                time.sleep(0.2 * (attempt + 1))
                continue
        with tally.lock:
            tally.completed.add(job.processInstanceKey)
        return
    # Left to the job timeout: it is activated again and completed then.


def worker(gateways: Gateways, tally: Tally, done: threading.Event):
    while not done.is_set():
        address, stub = gateways.pick()
        try:
            for response in stub.ActivateJobs(
                pb.ActivateJobsRequest(
                    type=JOB_TYPE, worker="rollout-test", timeout=8000, maxJobsToActivate=64, requestTimeout=1000
                ),
                timeout=RPC_TIMEOUT_S,
            ):
                for job in response.jobs:
                    with tally.lock:
                        tally.activated += 1
                    complete(gateways, tally, job)
        except grpc.RpcError as e:
            tally.error("activate", e)
            done.wait(0.2)


def missing(tally: Tally) -> list[int]:
    with tally.lock:
        return [k for k in tally.acked if k not in tally.completed]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gateways", required=True, help="comma-separated host:port of every gateway")
    parser.add_argument("--out", required=True, help="directory for acked.txt and result.json")
    parser.add_argument("--stop-file", required=True, help="creation stops once this file exists")
    parser.add_argument("--rate", type=float, default=20.0, help="instances created per second")
    parser.add_argument("--max-seconds", type=float, default=900.0, help="longest creation phase")
    parser.add_argument("--drain-seconds", type=float, default=120.0, help="longest wait for the last completions")
    args = parser.parse_args()

    gateways = Gateways(args.gateways.split(","))
    tally = Tally()
    deploy(gateways, time.monotonic() + 60)

    stop, done = threading.Event(), threading.Event()
    os.makedirs(args.out, exist_ok=True)
    started = time.monotonic()
    with open(os.path.join(args.out, "acked.txt"), "w") as log:
        threads = [threading.Thread(target=creator, args=(gateways, tally, stop, args.rate, log))]
        threads += [threading.Thread(target=worker, args=(gateways, tally, done)) for _ in range(2)]
        for t in threads:
            t.start()
        print(f"load: creating {args.rate:g}/s through {args.gateways}", flush=True)
        last_report = started
        while not os.path.exists(args.stop_file) and time.monotonic() - started < args.max_seconds:
            time.sleep(0.5)
            if time.monotonic() - last_report >= 15:
                last_report = time.monotonic()
                with tally.lock:
                    print(
                        f"load: {len(tally.acked)} acknowledged, {len(tally.completed)} completed, "
                        f"errors {tally.errors}",
                        flush=True,
                    )
        stop.set()
        threads[0].join(timeout=RPC_TIMEOUT_S + 5)
        created_s = time.monotonic() - started
        drain_deadline = time.monotonic() + args.drain_seconds
        while missing(tally) and time.monotonic() < drain_deadline:
            time.sleep(0.5)
        done.set()
        for t in threads[1:]:
            t.join(timeout=RPC_TIMEOUT_S + 5)

    lost = missing(tally)
    result = {
        "acknowledged": len(tally.acked),
        "completed": len(tally.completed),
        "activated": tally.activated,
        "missing": len(lost),
        "missing_keys": lost[:50],
        "errors": tally.errors,
        "creation_seconds": round(created_s, 1),
    }
    with open(os.path.join(args.out, "result.json"), "w") as f:
        json.dump(result, f, indent=2)
    print("load: " + json.dumps(result), flush=True)
    return 0 if not lost and tally.acked else 1


if __name__ == "__main__":
    sys.exit(main())
