#!/usr/bin/python
"""Ansible module: wait until a waggle cluster is whole."""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
---
module: waggle_cluster_health
short_description: Wait until every waggle node is ready and every partition has a leader and its full replica set
description:
  - Polls the management endpoint of every node (C(/ready), C(/health),
    C(/metrics)) until every node answers ready and healthy and every
    partition has exactly one leader and I(replication_factor) replicas that
    are leader or follower, or until I(timeout) runs out.
  - Roles come from the C(waggle_partition_role) gauge each node reports for
    its own replicas, so the result does not depend on what one node believes
    about the others.
  - Reads only; supports check mode.
options:
  endpoints:
    description: C(host:port) of every node's management endpoint, in node id order.
    type: list
    elements: str
    required: true
  partitions:
    description: Number of partitions (C(cluster.partitions)).
    type: int
    required: true
  replication_factor:
    description: Replicas per partition (C(cluster.replication_factor)).
    type: int
    required: true
  timeout:
    description: Seconds to wait for the cluster to be whole.
    type: int
    default: 300
  interval:
    description: Seconds between two polls.
    type: float
    default: 2.0
  request_timeout:
    description: Seconds one HTTP request may take.
    type: float
    default: 5.0
author:
  - waggle maintainers
"""

RETURN = r"""
healthy:
  description: Whether the cluster was whole when the module returned.
  type: bool
  returned: always
partitions:
  description: Per partition id, the leader's node id and the node ids of the replicas that are leader or follower.
  type: dict
  returned: always
problems:
  description: What was missing at the last poll (empty when healthy).
  type: list
  elements: str
  returned: always
polls:
  description: Number of polls made.
  type: int
  returned: always
"""

ROLE_LINE = re.compile(
    r'^waggle_partition_role\{(?=[^}]*partition="(\d+)")(?=[^}]*role="(\w+)")[^}]*\}\s+(\S+)'
)


def fetch(url: str, request_timeout: float) -> tuple[int, str]:
    """GET url: (status, body); status 0 when there was no HTTP answer."""
    try:
        with urllib.request.urlopen(url, timeout=request_timeout) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, ""
    except (urllib.error.URLError, OSError, ValueError) as e:
        return 0, str(getattr(e, "reason", e))


def roles_of(metrics: str) -> dict[int, str]:
    """The current role of each local partition replica in a /metrics text."""
    roles = {}
    for line in metrics.splitlines():
        match = ROLE_LINE.match(line)
        if match and float(match.group(3)) == 1.0:
            roles[int(match.group(1))] = match.group(2)
    return roles


def poll(endpoints, partitions, replication_factor, request_timeout):
    """One look at every node: (problems, partition map)."""
    problems = []
    leaders = {p: [] for p in range(1, partitions + 1)}
    replicas = {p: [] for p in range(1, partitions + 1)}
    for node, endpoint in enumerate(endpoints):
        base = f"http://{endpoint}"
        for path in ("/ready", "/health"):
            status, detail = fetch(base + path, request_timeout)
            if status != 200:
                what = f"HTTP {status}" if status else detail
                problems.append(f"node {node} ({endpoint}): {path} answered {what}")
        status, text = fetch(base + "/metrics", request_timeout)
        if status != 200:
            problems.append(f"node {node} ({endpoint}): /metrics answered {status or text}")
            continue
        for partition, role in roles_of(text).items():
            if partition not in replicas:
                problems.append(f"node {node} ({endpoint}) reports partition {partition}, outside 1..{partitions}")
                continue
            if role in ("leader", "follower"):
                replicas[partition].append(node)
            if role == "leader":
                leaders[partition].append(node)
    for p in range(1, partitions + 1):
        if not leaders[p]:
            problems.append(f"partition {p}: no leader")
        elif len(leaders[p]) > 1:
            problems.append(f"partition {p}: leaders on nodes {leaders[p]}")
        if len(replicas[p]) != replication_factor:
            problems.append(
                f"partition {p}: {len(replicas[p])} of {replication_factor} replicas "
                f"are leader or follower (nodes {replicas[p]})"
            )
    summary = {
        str(p): {"leader": leaders[p][0] if len(leaders[p]) == 1 else None, "replicas": replicas[p]}
        for p in range(1, partitions + 1)
    }
    return problems, summary


def main():
    module = AnsibleModule(
        argument_spec={
            "endpoints": {"type": "list", "elements": "str", "required": True},
            "partitions": {"type": "int", "required": True},
            "replication_factor": {"type": "int", "required": True},
            "timeout": {"type": "int", "default": 300},
            "interval": {"type": "float", "default": 2.0},
            "request_timeout": {"type": "float", "default": 5.0},
        },
        supports_check_mode=True,
    )
    params = module.params
    if params["partitions"] < 1 or not 1 <= params["replication_factor"] <= len(params["endpoints"]):
        module.fail_json(msg="need partitions >= 1 and 1 <= replication_factor <= number of endpoints")
    deadline = time.monotonic() + params["timeout"]
    polls = 0
    while True:
        polls += 1
        problems, summary = poll(
            params["endpoints"], params["partitions"], params["replication_factor"], params["request_timeout"]
        )
        if not problems:
            module.exit_json(changed=False, healthy=True, partitions=summary, problems=[], polls=polls)
        if time.monotonic() + params["interval"] > deadline:
            module.fail_json(
                msg=f"the cluster is not whole after {params['timeout']}s: " + "; ".join(problems),
                healthy=False,
                partitions=summary,
                problems=problems,
                polls=polls,
            )
        time.sleep(params["interval"])


if __name__ == "__main__":
    main()
