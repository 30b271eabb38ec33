#!/usr/bin/python
"""Ansible module: wait until a waggle cluster is whole."""

from __future__ import annotations

import http.client
import re
import ssl
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
  - With I(only_ready), waits only until every endpoint answers C(/ready).
  - Each endpoint is asked over HTTPS when I(ca_file) is set, else over
    HTTP, and over the other scheme when that gets no HTTP answer: while a
    rolling restart turns TLS on or off, the nodes not yet restarted still
    speak the old one. HTTPS is verified against I(ca_file); without it
    (TLS being turned off) it is not verified, as only public readiness and
    metrics are read.
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
  only_ready:
    description: Wait only until every endpoint answers C(/ready) with 200.
    type: bool
    default: false
  ca_file:
    description: PEM CA certificates of the client-port certificates (C(gateway.tls_cert_file)); set, HTTPS is tried first.
    type: str
    default: ""
  client_cert:
    description: PEM certificate to present when the nodes require client certificates.
    type: str
    default: ""
  client_key:
    description: Private key of I(client_cert).
    type: str
    default: ""
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


class Transport:
    """How to reach the management endpoints: the schemes to try, in order,
    and the TLS context of HTTPS."""

    def __init__(self, ca_file: str, client_cert: str, client_key: str):
        self.schemes = ("https", "http") if ca_file else ("http", "https")
        if ca_file:
            self.context = ssl.create_default_context(cafile=ca_file)
        else:
            self.context = ssl.create_default_context()
            self.context.check_hostname = False
            self.context.verify_mode = ssl.CERT_NONE
        if client_cert:
            self.context.load_cert_chain(client_cert, client_key or None)

    def fetch(self, endpoint: str, path: str, request_timeout: float) -> tuple[int, str]:
        """GET path of endpoint: (status, body); status 0 when neither
        scheme got an HTTP answer."""
        errors = []
        for scheme in self.schemes:
            status, detail = fetch(f"{scheme}://{endpoint}{path}", request_timeout, self.context)
            if status:
                return status, detail
            errors.append(f"{scheme}: {detail}")
        return 0, "; ".join(errors)


def fetch(url: str, request_timeout: float, context: ssl.SSLContext) -> tuple[int, str]:
    """GET url: (status, body); status 0 when there was no HTTP answer."""
    try:
        with urllib.request.urlopen(url, timeout=request_timeout, context=context) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, ""
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
        # HTTPException: plain HTTP to a TLS port gets no status line.
        return 0, str(getattr(e, "reason", e))


def roles_of(metrics: str) -> dict[int, str]:
    """The current role of each local partition replica in a /metrics text."""
    roles = {}
    for line in metrics.splitlines():
        match = ROLE_LINE.match(line)
        if match and float(match.group(3)) == 1.0:
            roles[int(match.group(1))] = match.group(2)
    return roles


def poll_ready(transport, endpoints, request_timeout):
    """One look at every node's /ready: the problems."""
    problems = []
    for node, endpoint in enumerate(endpoints):
        status, detail = transport.fetch(endpoint, "/ready", request_timeout)
        if status != 200:
            what = f"HTTP {status}" if status else detail
            problems.append(f"node {node} ({endpoint}): /ready answered {what}")
    return problems


def poll(transport, endpoints, partitions, replication_factor, request_timeout):
    """One look at every node: (problems, partition map)."""
    problems = []
    leaders = {p: [] for p in range(1, partitions + 1)}
    replicas = {p: [] for p in range(1, partitions + 1)}
    for node, endpoint in enumerate(endpoints):
        for path in ("/ready", "/health"):
            status, detail = transport.fetch(endpoint, path, request_timeout)
            if status != 200:
                what = f"HTTP {status}" if status else detail
                problems.append(f"node {node} ({endpoint}): {path} answered {what}")
        status, text = transport.fetch(endpoint, "/metrics", request_timeout)
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
            "only_ready": {"type": "bool", "default": False},
            "ca_file": {"type": "str", "default": ""},
            "client_cert": {"type": "str", "default": ""},
            "client_key": {"type": "str", "default": ""},
        },
        supports_check_mode=True,
    )
    params = module.params
    if params["partitions"] < 1 or not 1 <= params["replication_factor"] <= len(params["endpoints"]):
        module.fail_json(msg="need partitions >= 1 and 1 <= replication_factor <= number of endpoints")
    try:
        transport = Transport(params["ca_file"], params["client_cert"], params["client_key"])
    except (OSError, ssl.SSLError) as e:
        module.fail_json(msg=f"cannot load the TLS files ca_file, client_cert, client_key: {e}")
    deadline = time.monotonic() + params["timeout"]
    polls = 0
    while True:
        polls += 1
        if params["only_ready"]:
            problems, summary = poll_ready(transport, params["endpoints"], params["request_timeout"]), {}
        else:
            problems, summary = poll(
                transport,
                params["endpoints"],
                params["partitions"],
                params["replication_factor"],
                params["request_timeout"],
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
