"""The nemesis: a waggle cluster of real brokers (3 or 5 nodes, each in its
own network namespace) under load from a client while faults come and go,
then a check of what the client was told.

Faults, one at a time, each held a few seconds and then healed:
  kill9        SIGKILL a node, start it again
  pause        SIGSTOP a node, SIGCONT it
  split        nftables: the nodes in two groups that do not hear each other
  bridge       two groups that do not hear each other, both hearing one node
  one-way      one node hears nobody, everybody hears it
  disk-full    a node's file system filled up to the last block
  slow-disk    a node's disk throttled to a few operations a second (blkio)
  corrupt-tail SIGKILL a node, garbage over the tail of one of its logs, start it

The checker, from the client's acknowledged operations: every acknowledged
instance ended (its last job completed) after the faults stopped; no job was
completed twice; no instance's message correlated twice (a second "finish"
job); no node exited by itself; no replica marked itself diverged. The last
line printed is one JSON object with the figures; the exit code is 1 when
anything was violated."""

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from cluster import BLKIO, Cluster

HERE = os.path.dirname(os.path.abspath(__file__))
FAULTS = ["kill9", "pause", "split", "bridge", "one-way", "disk-full", "slow-disk", "corrupt-tail"]
# Longest wait for the cluster to become ready.
READY_S = 180
# The client's time to finish the acknowledged instances after the faults.
DRAIN_S = 240
# Longest wait for the exporters to write what is committed.
EXPORT_WAIT_S = 60


def log(message):
    print(f"[nemesis {time.strftime('%H:%M:%S')}] {message}", flush=True)


class Nemesis:
    def __init__(self, cluster, rng):
        self.cluster = cluster
        self.rng = rng
        self.faults = {}
        self.crashes = []

    def count(self, fault):
        self.faults[fault] = self.faults.get(fault, 0) + 1

    def check_crashes(self):
        for n in self.cluster.nodes:
            code = n.exited()
            if code is not None:
                self.crashes.append({"node": n.id, "exit": code})
                log(f"node {n.id} exited by itself ({code}); starting it again")
                n.process = None
                n.start()

    def apply(self, fault, hold_s):
        c = self.cluster
        nodes = list(c.nodes)
        victim = self.rng.choice(nodes)
        if fault == "kill9":
            victim.kill()
            time.sleep(hold_s)
            victim.start()
            return f"node {victim.id}"
        if fault == "pause":
            victim.signal(signal.SIGSTOP)
            time.sleep(hold_s)
            victim.signal(signal.SIGCONT)
            return f"node {victim.id}"
        if fault == "split":
            self.rng.shuffle(nodes)
            minority = len(nodes) // 2
            groups = [nodes[:minority], nodes[minority:]]
            c.partition(groups)
            time.sleep(hold_s)
            c.heal_network()
            return " | ".join(",".join(str(n.id) for n in g) for g in groups)
        if fault == "bridge":
            self.rng.shuffle(nodes)
            middle, rest = nodes[0], nodes[1:]
            half = len(rest) // 2
            left, right = rest[:half], rest[half:]
            for n in left:
                c.nft_drop(n, [m.ip for m in right])
            for n in right:
                c.nft_drop(n, [m.ip for m in left])
            time.sleep(hold_s)
            c.heal_network()
            return f"{[n.id for n in left]} <- {middle.id} -> {[n.id for n in right]}"
        if fault == "one-way":
            c.nft_drop(victim, [n.ip for n in nodes if n is not victim])
            time.sleep(hold_s)
            c.heal_network()
            return f"node {victim.id} hears nobody"
        if fault == "disk-full":
            c.fill_disk(victim)
            time.sleep(hold_s)
            c.free_disk(victim)
            return f"node {victim.id}"
        if fault == "slow-disk":
            c.slow_disk(victim, 20)
            time.sleep(hold_s)
            c.slow_disk(victim, 0)
            return f"node {victim.id}, 20 I/O per second"
        if fault == "corrupt-tail":
            victim.kill()
            where = c.corrupt_tail(victim, self.rng)
            victim.start()
            time.sleep(hold_s)
            return f"node {victim.id}: {where}"
        raise ValueError(fault)

    def heal_all(self):
        c = self.cluster
        c.heal_network()
        for n in c.nodes:
            c.free_disk(n)
            c.slow_disk(n, 0)
            n.signal(signal.SIGCONT)
            if n.process is None:
                n.start()


def check_stream(records, created):
    """What the exported record stream (every partition's log, through the
    exporter) says of the acknowledged instances `created`: the ones it
    never saw (lost), the ones it never saw end, jobs completed twice, and
    instances whose message correlated twice (two "finish" jobs)."""
    started, ended, completed, finish_jobs = set(), set(), {}, {}
    for record in records.values():
        if record.get("record_type") != "Event":
            continue
        value = record.get("value", {})
        intent = record.get("intent")
        if "ProcessInstance" in value and value["ProcessInstance"].get("bpmn_element_type") == "Process":
            if intent == "ElementActivating":
                started.add(record["key"])
            elif intent == "ElementCompleted":
                ended.add(record["key"])
        elif "Job" in value:
            job = value["Job"]
            if intent == "Completed":
                completed[record["key"]] = completed.get(record["key"], 0) + 1
            elif intent == "Created" and job.get("job_type") == "finish":
                finish_jobs.setdefault(job.get("process_instance_key"), set()).add(record["key"])
    return {
        "exported_records": len(records),
        "lost": [k for k in created if k not in started],
        "unfinished": [k for k in created if k in started and k not in ended],
        "duplicate_completions": sum(n - 1 for n in completed.values()),
        "duplicate_correlations": sum(1 for jobs in finish_jobs.values() if len(jobs) > 1),
    }


def check(ops_path):
    created, activations, completions, gone = {}, {}, {}, {}
    with open(ops_path) as f:
        for line in f:
            op = json.loads(line)
            if op["op"] == "create":
                created[op["key"]] = op["id"]
            elif op["op"] == "activate":
                activations.setdefault((op["instance"], op["type"]), set()).add(op["job"])
            elif op["op"] == "complete":
                completions.setdefault(op["job"], []).append(op)
            elif op["op"] == "complete-gone":
                gone[op["job"]] = op
    # A job whose unanswered completion was followed by NOT_FOUND was
    # completed by it (unless it was lost: counted apart, as indeterminate).
    ended_by = list(completions.values()) + [[op] for op in gone.values()]
    finished = {ops[0]["instance"] for ops in ended_by if ops[0]["type"] == "finish"}
    unfinished = [k for k in created if k not in finished]
    never_seen = [k for k in created if (k, "work") not in activations]
    duplicate_completions = sum(len(ops) - 1 for ops in completions.values())
    duplicate_correlations = [k for (k, t), jobs in activations.items() if t == "finish" and len(jobs) > 1]
    return {
        "created": created,
        "acknowledged": len(created),
        "client_unfinished": len(unfinished),
        "never_activated": len(never_seen),
        "completed_jobs": len(completions),
        "indeterminate_completions": len(gone),
        "duplicate_completions": duplicate_completions,
        "duplicate_correlations": len(duplicate_correlations),
    }


def diverged_replicas(cluster):
    diverged = 0
    for n in cluster.nodes:
        _, metrics = n.http("/metrics")
        diverged += sum(1 for line in metrics.splitlines()
                        if line.startswith("waggle_state_diverged{") and line.rstrip().endswith(" 1"))
    return diverged


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--nodes", type=int, choices=[3, 5], default=3)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--keep", help="copy the logs and operations here")
    parser.add_argument("--faults", default=",".join(FAULTS))
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("the nemesis needs root (network namespaces, nftables, loop devices, cgroups)")
    for tool in ["ip", "nft", "curl", "mkfs.ext4", "losetup", "fallocate"]:
        if shutil.which(tool) is None:
            sys.exit(f"the nemesis needs {tool} (scripts/nemesis.sh installs it)")
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    faults = args.faults.split(",")
    root = tempfile.mkdtemp(prefix="waggle-nemesis-")
    cluster = Cluster(args.nodes, os.path.abspath(args.binary), root)
    if "slow-disk" in faults and not os.path.isdir(os.path.join(BLKIO, "")):
        log(f"no blkio cgroup controller at {BLKIO}: no slow-disk faults")
        faults.remove("slow-disk")
    result = {"nodes": args.nodes, "minutes": args.minutes, "seed": seed}
    failed = True
    client = None
    try:
        log(f"{args.nodes} nodes in {root}, seed {seed}")
        cluster.create()
        for n in cluster.nodes:
            n.start()
        if not cluster.wait_ready(READY_S):
            raise RuntimeError(f"the cluster was not ready within {READY_S} s")
        until = time.time() + args.minutes * 60
        ops = os.path.join(root, "operations.jsonl")
        client = subprocess.Popen(
            ["ip", "netns", "exec", cluster.client_netns, sys.executable, os.path.join(HERE, "client.py"),
             "--gateways", ",".join(cluster.gateways()), "--out", ops, "--until", str(until),
             "--drain-s", str(DRAIN_S), "--seed", str(seed)],
            stdout=subprocess.PIPE, text=True,
        )
        nemesis = Nemesis(cluster, rng)
        try:
            while time.time() < until - 5:
                time.sleep(rng.uniform(1, 4))
                fault = rng.choice(faults)
                hold = rng.uniform(2, 6)
                what = nemesis.apply(fault, hold)
                nemesis.count(fault)
                log(f"{fault}: {what}, held {hold:.1f} s")
                nemesis.check_crashes()
        finally:
            nemesis.heal_all()
        log("faults over; the client finishes the acknowledged instances")
        summary, _ = client.communicate(timeout=DRAIN_S + 120)
        nemesis.check_crashes()
        log(f"client: {summary.strip()}")
        client_view = check(ops)
        created = client_view.pop("created")
        result.update(client_view)
        if not cluster.wait_exported(EXPORT_WAIT_S):
            log(f"records still waiting for export after {EXPORT_WAIT_S} s")
        stream = check_stream(cluster.exported_records(), created)
        result["exported_records"] = stream["exported_records"]
        result["lost"] = len(stream["lost"])
        result["unfinished"] = len(stream["unfinished"])
        result["lost_keys"] = (stream["lost"] + stream["unfinished"])[:20]
        # The client saw every acknowledged completion; the stream sees every
        # completion, answered or not.
        result["duplicate_completions"] += stream["duplicate_completions"]
        result["duplicate_correlations"] = max(result["duplicate_correlations"], stream["duplicate_correlations"])
        result["faults"] = nemesis.faults
        result["crashes"] = len(nemesis.crashes)
        result["diverged_replicas"] = diverged_replicas(cluster)
        violations = result["lost"] + result["unfinished"] + result["duplicate_completions"] \
            + result["duplicate_correlations"] + result["crashes"] + result["diverged_replicas"]
        failed = violations > 0 or result["acknowledged"] == 0
    except Exception as e:
        result["error"] = str(e)
        raise
    finally:
        if client is not None and client.poll() is None:
            client.kill()
            client.wait()
        if args.keep:
            os.makedirs(args.keep, exist_ok=True)
            for n in cluster.nodes:
                path = os.path.join(n.dir, "broker.log")
                if os.path.exists(path):
                    shutil.copy(path, os.path.join(args.keep, f"node-{n.id}.log"))
            ops = os.path.join(root, "operations.jsonl")
            if os.path.exists(ops):
                shutil.copy(ops, args.keep)
        elif failed:
            for n in cluster.nodes:
                path = os.path.join(n.dir, "broker.log")
                if os.path.exists(path):
                    with open(path) as f:
                        tail = f.readlines()[-30:]
                    print(f"--- node {n.id} ---\n{''.join(tail)}", file=sys.stderr)
        cluster.close()
        shutil.rmtree(root, ignore_errors=True)
        print(json.dumps(result), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
