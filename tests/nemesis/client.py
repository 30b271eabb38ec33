"""The nemesis's client, run inside the client's network namespace with
pyzeebe's Zeebe gRPC stubs: deploys a process, creates instances, works
their jobs and publishes their messages through every node's gateway while
the faults go on, then (after --until) only works and publishes until every
acknowledged instance has ended or --drain-s passed.

Every acknowledged operation is one JSON line in --out:
  {"op": "create", "id": n, "key": k}
  {"op": "activate", "type": t, "job": j, "instance": k}
  {"op": "complete", "type": t, "job": j, "instance": k}
  {"op": "publish", "id": n, "message": m}
  {"op": "complete-gone", "type": t, "job": j, "instance": k}
An operation that failed or timed out is not written: nothing is claimed of
it, as a client cannot know whether it happened. A completion without an
answer (timed out, no leader) is sent again, as a worker would, until it is
answered: done, or NOT_FOUND, which after an unanswered attempt means that
attempt completed the job ("complete-gone")."""

import argparse
import json
import pathlib
import random
import sys
import time

import grpc
from pyzeebe.proto import gateway_pb2 as pb
from pyzeebe.proto.gateway_pb2_grpc import GatewayStub

# start → work (job) → wait for message "go" (correlation key = the
# instance's id) → finish (job) → end. A message that correlated twice would
# start a second "finish" job in the instance.
PROCESS = (pathlib.Path(__file__).parent / "model.bpmn").read_text()

# Per call; a call past it is not acknowledged.
CALL_TIMEOUT_S = 5
# A job activated but not completed is handed out again after this.
JOB_TIMEOUT_MS = 10_000
# Messages wait this long for their instance.
MESSAGE_TTL_MS = 600_000
# An instance whose work is done but that has no finish job after this gets
# its message published again (the first publish may have failed).
REPUBLISH_AFTER_S = 15
# Instances created per round of the load loop.
CREATES_PER_ROUND = 4
# Answers that leave open whether the command was carried out.
UNANSWERED = {"DEADLINE_EXCEEDED", "UNAVAILABLE", "CANCELLED", "UNKNOWN"}
# A completion is sent again for at most this long.
COMPLETE_RETRY_S = 30


class Client:
    def __init__(self, gateways, out, seed):
        self.rng = random.Random(seed)
        self.stubs = [GatewayStub(grpc.insecure_channel(g)) for g in gateways]
        self.out = open(out, "a", buffering=1)
        self.next_id = 0
        self.keys = {}  # id -> instance key
        self.ids = {}  # instance key -> id
        self.worked = {}  # instance key -> when its work job was completed
        self.finished = set()  # instance keys whose finish job was completed
        self.republished = {}  # instance key -> times published again
        self.errors = {}
        self.last_error = None

    def record(self, **op):
        self.out.write(json.dumps(op) + "\n")

    def call(self, method, request, stub=None):
        """The answer, or None after counting the error (`self.last_error`)."""
        stub = stub or self.rng.choice(self.stubs)
        try:
            return getattr(stub, method)(request, timeout=CALL_TIMEOUT_S)
        except grpc.RpcError as e:
            code = e.code().name if e.code() else "UNKNOWN"
            self.errors[code] = self.errors.get(code, 0) + 1
            self.last_error = code
            return None

    def complete(self, job_type, job):
        """Completes `job`, sending it again while unanswered; records what
        it learned."""
        request = pb.CompleteJobRequest(jobKey=job.key, variables="{}")
        unanswered = False
        deadline = time.time() + COMPLETE_RETRY_S
        while True:
            if self.call("CompleteJob", request) is not None:
                self.record(op="complete", type=job_type, job=job.key, instance=job.processInstanceKey)
                return True
            if self.last_error == "NOT_FOUND" and unanswered:
                self.record(op="complete-gone", type=job_type, job=job.key, instance=job.processInstanceKey)
                return True
            if self.last_error not in UNANSWERED or time.time() > deadline:
                return False
            unanswered = True
            time.sleep(0.2)

    def deploy(self, deadline):
        request = pb.DeployResourceRequest(resources=[pb.Resource(name="nemesis.bpmn", content=PROCESS.encode())])
        while time.time() < deadline:
            if self.call("DeployResource", request) is not None:
                # The deployment reaches every partition.
                time.sleep(1)
                return True
            time.sleep(0.5)
        return False

    def create(self):
        n = self.next_id
        self.next_id += 1
        request = pb.CreateProcessInstanceRequest(bpmnProcessId="nemesis", version=-1, variables=json.dumps({"id": n}))
        response = self.call("CreateProcessInstance", request)
        if response is None:
            return
        key = response.processInstanceKey
        self.keys[n] = key
        self.ids[key] = n
        self.record(op="create", id=n, key=key)
        self.publish(n, f"go-{n}")

    def publish(self, n, message_id):
        request = pb.PublishMessageRequest(
            name="go", correlationKey=str(n), timeToLive=MESSAGE_TTL_MS, messageId=message_id, variables="{}"
        )
        if self.call("PublishMessage", request) is not None:
            self.record(op="publish", id=n, message=message_id)

    def work(self, job_type):
        request = pb.ActivateJobsRequest(
            type=job_type, worker="nemesis", timeout=JOB_TIMEOUT_MS, maxJobsToActivate=32, requestTimeout=200
        )
        stub = self.rng.choice(self.stubs)
        jobs = []
        try:
            for response in stub.ActivateJobs(request, timeout=CALL_TIMEOUT_S):
                jobs.extend(response.jobs)
        except grpc.RpcError as e:
            code = e.code().name if e.code() else "UNKNOWN"
            self.errors[code] = self.errors.get(code, 0) + 1
        for job in jobs:
            self.record(op="activate", type=job_type, job=job.key, instance=job.processInstanceKey)
        for job in jobs:
            tries = 2 if self.rng.random() < 0.1 else 1  # sometimes complete twice: the second must fail
            for _ in range(tries):
                if self.complete(job_type, job):
                    if job_type == "work":
                        self.worked.setdefault(job.processInstanceKey, time.time())
                    else:
                        self.finished.add(job.processInstanceKey)
        return len(jobs)

    def republish(self):
        now = time.time()
        for key, at in self.worked.items():
            if key in self.finished or key not in self.ids:
                continue
            times = self.republished.get(key, 0)
            if now - at > REPUBLISH_AFTER_S * (times + 1):
                self.republished[key] = times + 1
                n = self.ids[key]
                self.publish(n, f"go-{n}-again-{times + 1}")

    def unfinished(self):
        return [k for k in self.ids if k not in self.finished]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--gateways", required=True, help="comma-separated host:port")
    parser.add_argument("--out", required=True)
    parser.add_argument("--until", type=float, required=True, help="end of the load (UNIX time)")
    parser.add_argument("--drain-s", type=float, default=180)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    client = Client(args.gateways.split(","), args.out, args.seed)
    if not client.deploy(args.until + args.drain_s):
        print(json.dumps({"error": "the process was never deployed", "errors": client.errors}))
        return 2
    while time.time() < args.until:
        for _ in range(CREATES_PER_ROUND):
            client.create()
        client.work("work")
        client.work("finish")
        client.republish()
    drain_until = time.time() + args.drain_s
    while client.unfinished() and time.time() < drain_until:
        worked = client.work("work") + client.work("finish")
        client.republish()
        if not worked:
            time.sleep(0.2)
    print(json.dumps({"created": len(client.keys), "unfinished": len(client.unfinished()), "errors": client.errors}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
