"""A waggle cluster for the nemesis: every node in its own network namespace
on a bridge in a switch namespace, its data on its own loop-mounted ext4 (so
that its disk can fill up) in its own blkio cgroup (so that its disk can be
slowed down), and the faults the nemesis applies to it.

Everything created here is named after the orchestrator's PID and removed by
`Cluster.close`, also after a failure: namespaces, loop devices, mounts,
cgroups, and the processes it started (ended by PID)."""

import json
import os
import signal
import subprocess
import time

SUBNET = "10.213.0"
GATEWAY_PORT = 26500
INTERNAL_PORT = 26502
MANAGEMENT_PORT = 9600
# Size of each node's file system.
DISK_MB = 1024
BLKIO = "/sys/fs/cgroup/blkio"


def run(*args, check=True, input=None):
    result = subprocess.run(args, capture_output=True, text=True, input=input)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


class Node:
    def __init__(self, cluster, node_id):
        self.cluster = cluster
        self.id = node_id
        self.ip = f"{SUBNET}.{node_id + 1}"
        self.netns = f"{cluster.prefix}n{node_id}"
        self.dir = os.path.join(cluster.root, f"node-{node_id}")
        self.data = os.path.join(self.dir, "data")
        self.image = os.path.join(cluster.root, f"node-{node_id}.img")
        self.loop = None
        self.cgroup = os.path.join(BLKIO, f"{cluster.prefix}-node{node_id}")
        self.process = None
        self.log = None

    def in_netns(self, *args, check=True):
        return run("ip", "netns", "exec", self.netns, *args, check=check)

    def http(self, path):
        """(status, body) of a GET on the node's management port, from inside
        its namespace; status 0 when it does not answer."""
        result = self.in_netns(
            "curl", "-s", "-m", "3", "-w", "\n%{http_code}", f"http://{self.ip}:{MANAGEMENT_PORT}{path}", check=False
        )
        body, _, status = result.stdout.rpartition("\n")
        return (int(status) if status.isdigit() else 0), body

    def start(self):
        assert self.process is None
        log = open(os.path.join(self.dir, "broker.log"), "a")
        # `ip netns exec` execs the broker, so the PID is the broker's.
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", self.netns, self.cluster.binary, "broker", "--config", "waggle.toml"],
            cwd=self.dir,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        log.close()
        if os.path.isdir(self.cgroup):
            with open(os.path.join(self.cgroup, "cgroup.procs"), "w") as f:
                f.write(str(self.process.pid))

    def signal(self, sig):
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, sig)

    def kill(self):
        if self.process is None:
            return
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process = None

    def exited(self):
        """The exit code if the broker ended by itself, else None."""
        if self.process is None or self.process.poll() is None:
            return None
        return self.process.returncode

    def newest_segments(self):
        """The newest log segment holding frames, of each partition replica
        on this node (segments are `<20-digit sequence>.seg`; a spare one
        is still all zeros)."""
        newest = []
        partitions = os.path.join(self.data, "partitions")
        for p in sorted(os.listdir(partitions)) if os.path.isdir(partitions) else []:
            log_dir = os.path.join(partitions, p, "log")
            names = sorted(
                n for n in (os.listdir(log_dir) if os.path.isdir(log_dir) else [])
                if n.endswith(".seg") and n[:-4].isdigit() and len(n) == 24
            )
            for name in reversed(names):
                path = os.path.join(log_dir, name)
                with open(path, "rb") as f:
                    if f.read().rstrip(b"\0"):
                        newest.append(path)
                        break
        return newest

    def export_files(self):
        exports = os.path.join(self.data, "exports")
        if not os.path.isdir(exports):
            return []
        return [os.path.join(exports, f) for f in sorted(os.listdir(exports)) if f.endswith(".jsonl")]

    def exporter_lag(self):
        """Records committed and not yet exported, summed over the node's
        partitions (None when it does not answer)."""
        status, metrics = self.http("/metrics")
        if status != 200:
            return None
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("waggle_exporter_lag_records{")
        )

    def loop_device_number(self):
        name = os.path.basename(self.loop)
        with open(f"/sys/block/{name}/dev") as f:
            return f.read().strip()


class Cluster:
    def __init__(self, size, binary, root):
        self.size = size
        self.binary = binary
        self.root = root
        self.prefix = f"wn{os.getpid() % 100000}"
        self.switch = f"{self.prefix}s"
        self.client_netns = f"{self.prefix}c"
        self.client_ip = f"{SUBNET}.100"
        self.nodes = [Node(self, i) for i in range(size)]
        self.namespaces = []
        self.fillers = {}

    # --- set-up and tear-down -------------------------------------------

    def create(self):
        self._netns(self.switch)
        run("ip", "-n", self.switch, "link", "add", "br0", "type", "bridge")
        run("ip", "-n", self.switch, "link", "set", "br0", "up")
        for n in self.nodes:
            self._attach(n.netns, n.ip, f"{self.prefix}v{n.id}")
        self._attach(self.client_netns, self.client_ip, f"{self.prefix}vc")
        certs = run(
            self.binary, "certs", "--dir", os.path.join(self.root, "certs"),
            "--cluster-name", "nemesis", "--nodes", str(self.size),
        ).stdout
        certs = json.loads(certs)
        for n in self.nodes:
            os.makedirs(n.data, exist_ok=True)
            run("truncate", "-s", f"{DISK_MB}M", n.image)
            run("mkfs.ext4", "-q", "-F", n.image)
            n.loop = run("losetup", "-f", "--show", n.image).stdout.strip()
            run("mount", n.loop, n.data)
            if os.path.isdir(BLKIO):
                os.makedirs(n.cgroup, exist_ok=True)
            issued = certs["issued"][n.id]
            absolute = lambda p: p if os.path.isabs(p) else os.path.join(self.root, p)
            with open(os.path.join(n.dir, "waggle.toml"), "w") as f:
                f.write(self._config(n, absolute(certs["ca_file"]), absolute(issued["cert_file"]),
                                     absolute(issued["key_file"])))

    def _netns(self, name):
        run("ip", "netns", "add", name)
        self.namespaces.append(name)
        run("ip", "-n", name, "link", "set", "lo", "up")

    def _attach(self, netns, ip, veth):
        self._netns(netns)
        run("ip", "link", "add", f"{veth}a", "type", "veth", "peer", "name", f"{veth}b")
        run("ip", "link", "set", f"{veth}a", "netns", netns)
        run("ip", "link", "set", f"{veth}b", "netns", self.switch)
        run("ip", "-n", netns, "addr", "add", f"{ip}/24", "dev", f"{veth}a")
        run("ip", "-n", netns, "link", "set", f"{veth}a", "up")
        run("ip", "-n", self.switch, "link", "set", f"{veth}b", "master", "br0")
        run("ip", "-n", self.switch, "link", "set", f"{veth}b", "up")

    def _config(self, node, ca, cert, key):
        points = ", ".join(f'"{n.ip}:{INTERNAL_PORT}"' for n in self.nodes)
        return f"""
[cluster]
node_id = {node.id}
size = {self.size}
partitions = 3
replication_factor = 3
contact_points = [{points}]
name = "nemesis"
heartbeat_interval_ms = 100
election_timeout_ms = 1000
state_check_entries = 200

[network]
host = "{node.ip}"
gateway_port = {GATEWAY_PORT}
internal_port = {INTERNAL_PORT}
management_port = {MANAGEMENT_PORT}

[rest]
enabled = false

# The clients are the test's, inside network namespaces it created.
[security]
allow_unauthenticated = true

[data]
directory = "data"
segment_size_bytes = 8388608
snapshot_period_ms = 5000
min_free_space_bytes = 16777216

[exporter]
enabled = true

[runtime]
shards = 1
pin_shards = false

[tls]
ca_file = "{ca}"
cert_file = "{cert}"
key_file = "{key}"
"""

    def close(self):
        for n in self.nodes:
            try:
                n.kill()
            except Exception:
                pass
        for name in self.namespaces:
            run("ip", "netns", "del", name, check=False)
        for n in self.nodes:
            if n.loop:
                run("umount", n.data, check=False)
                run("losetup", "-d", n.loop, check=False)
            if os.path.isdir(n.cgroup):
                try:
                    os.rmdir(n.cgroup)
                except OSError:
                    pass

    # --- readiness ------------------------------------------------------

    def gateways(self):
        return [f"{n.ip}:{GATEWAY_PORT}" for n in self.nodes]

    def wait_exported(self, timeout_s):
        """Waits until no node has records waiting for export."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(n.exporter_lag() == 0 for n in self.nodes):
                return True
            time.sleep(0.5)
        return False

    def exported_records(self):
        """Every record the partitions exported, once each (the exporter is
        at least once: a leader change repeats some, on another node)."""
        seen = {}
        for n in self.nodes:
            for path in n.export_files():
                with open(path, errors="replace") as f:
                    for line in f:
                        try:
                            entry = json.loads(line)
                            at = (entry["partitionId"], entry["position"], entry["sequence"])
                        except (ValueError, KeyError, TypeError):
                            continue  # a line cut by a crash or a full disk
                        seen.setdefault(at, entry["record"])
        return seen

    def wait_ready(self, timeout_s):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(n.http("/ready")[0] == 200 for n in self.nodes):
                return True
            time.sleep(0.5)
        return False

    # --- faults ---------------------------------------------------------

    def nft_drop(self, node, sources):
        """Drops the packets from the IPs `sources` arriving in `node`'s
        namespace."""
        rules = "\n".join(f"add rule inet nemesis input ip saddr {ip} drop" for ip in sources)
        script = f"""
add table inet nemesis
add chain inet nemesis input {{ type filter hook input priority 0; policy accept; }}
{rules}
"""
        run("ip", "netns", "exec", node.netns, "nft", "-f", "-", input=script)

    def heal_network(self):
        for n in self.nodes:
            n.in_netns("nft", "delete", "table", "inet", "nemesis", check=False)

    def partition(self, groups):
        """Every node drops what comes from nodes outside its group."""
        for group in groups:
            outside = [n.ip for n in self.nodes if n not in group]
            for n in group:
                self.nft_drop(n, outside)

    def fill_disk(self, node):
        stat = os.statvfs(node.data)
        free = stat.f_bavail * stat.f_frsize
        filler = os.path.join(node.data, "nemesis-filler")
        run("fallocate", "-l", str(max(free - 4096, 4096)), filler, check=False)
        self.fillers[node.id] = filler

    def free_disk(self, node):
        filler = self.fillers.pop(node.id, None)
        if filler and os.path.exists(filler):
            os.remove(filler)

    def slow_disk(self, node, iops):
        """Throttles the node's writes to its disk to `iops` (0: unthrottled)."""
        if not os.path.isdir(node.cgroup):
            return
        for knob in ("blkio.throttle.write_iops_device", "blkio.throttle.read_iops_device"):
            with open(os.path.join(node.cgroup, knob), "w") as f:
                f.write(f"{node.loop_device_number()} {iops}")

    def corrupt_tail(self, node, rng):
        """Overwrites the last written bytes of the newest segment of one of
        the node's partition logs with garbage (the node is down)."""
        segments = node.newest_segments()
        if not segments:
            return None
        segment = rng.choice(segments)
        with open(segment, "rb") as f:
            data = f.read()
        end = len(data.rstrip(b"\0"))
        if end == 0:
            return None
        start = max(0, end - rng.randint(16, 512))
        with open(segment, "r+b") as f:
            f.seek(start)
            f.write(bytes(rng.randrange(256) for _ in range(end - start)))
        return f"{os.path.relpath(segment, node.data)}@{start}"

