"""Starts a `waggle dev` broker for the tests of outside clients (pyzeebe over
gRPC, camunda-orchestration-sdk over REST): a fresh data directory, free
loopback ports, and SIGTERM (by PID) at the end."""

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Longest wait for the broker to start or stop.
MAX_WAIT_S = 60


# Ports handed out in this process: the kernel may offer a closed probe's
# port again, and a broker with two equal ports refuses its configuration.
_GIVEN_PORTS = set()


def free_port() -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _GIVEN_PORTS:
            _GIVEN_PORTS.add(port)
            return port


def waggle_binary() -> str:
    path = os.environ.get("WAGGLE_BIN", os.path.join(REPO, "target", "debug", "waggle"))
    if not os.path.exists(path):
        raise RuntimeError(f"{path} does not exist: build it with `cargo build -p node` or set WAGGLE_BIN")
    return path


class Broker:
    def __init__(self, process, address, management_port, rest_port, directory, scheme="http"):
        self.process = process
        self.address = address
        self.management_port = management_port
        self.rest_url = f"{scheme}://127.0.0.1:{rest_port}"
        self.directory = directory
        # The JSON-lines exporter's files (`partition-<id>.jsonl`).
        self.exports = os.path.join(directory, "data", "exports")


@contextlib.contextmanager
def running_broker(extra_env=None, prefix="waggle-pyzeebe-", ca_file=None, client_cert=None):
    """A `waggle dev` broker on free loopback ports with `extra_env` over its
    environment (WAGGLE_ configuration keys); SIGTERM by PID at the end. With
    `ca_file`, its client ports speak TLS (gateway.tls_* in `extra_env`) with
    a certificate of that CA for 127.0.0.1; `client_cert` (certificate file,
    key file) is what the readiness probe presents if the broker wants one."""
    directory = tempfile.mkdtemp(prefix=prefix)
    gateway_port, management_port = free_port(), free_port()
    # A test may choose the REST port (redirect URIs of an OpenID provider).
    rest_port = int((extra_env or {}).get("WAGGLE_REST_PORT") or free_port())
    # Only the configuration below: the broker refuses WAGGLE_ variables that
    # name no configuration key (WAGGLE_BIN is the test's own).
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAGGLE_")}
    env.update(
        {
            "WAGGLE_NETWORK_HOST": "127.0.0.1",
            "WAGGLE_NETWORK_GATEWAY_PORT": str(gateway_port),
            "WAGGLE_NETWORK_MANAGEMENT_PORT": str(management_port),
            "WAGGLE_NETWORK_INTERNAL_PORT": str(free_port()),
            "WAGGLE_REST_PORT": str(rest_port),
            "WAGGLE_RUNTIME_SHARDS": "1",
            "WAGGLE_RUNTIME_PIN_SHARDS": "false",
            "WAGGLE_EXPORTER_ENABLED": "true",
        }
    )
    env.update(extra_env or {})
    log = open(os.path.join(directory, "broker.log"), "w")
    process = subprocess.Popen([waggle_binary(), "dev"], cwd=directory, env=env, stdout=log, stderr=subprocess.STDOUT)
    scheme, tls = ("https", ssl.create_default_context(cafile=ca_file)) if ca_file else ("http", None)
    if client_cert:
        tls.load_cert_chain(*client_cert)
    deadline = time.monotonic() + MAX_WAIT_S
    while True:
        try:
            with urllib.request.urlopen(f"{scheme}://127.0.0.1:{management_port}/ready", timeout=2, context=tls) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("waggle dev did not become ready: " + open(os.path.join(directory, "broker.log")).read())
        time.sleep(0.05)
    try:
        yield Broker(process, f"127.0.0.1:{gateway_port}", management_port, rest_port, directory, scheme)
    finally:
        os.kill(process.pid, signal.SIGTERM)
        try:
            assert process.wait(timeout=MAX_WAIT_S) == 0, "waggle dev exits 0 on SIGTERM"
        finally:
            if process.poll() is None:
                process.kill()
            log.close()
    # Kept for a look when the broker did not stop cleanly; removed otherwise.
    shutil.rmtree(directory, ignore_errors=True)


OIDC_DIR = os.path.join(REPO, "tests", "oidc")


@contextlib.contextmanager
def running_oidc_provider(port=None, ui_redirects=()):
    """node's oidc-provider (tests/oidc/provider.mjs) on 127.0.0.1:`port`
    (a free one by default), with a new signing key; yields its issuer URL.
    `ui_redirects`: the redirect URIs of its public client waggle-ui (the
    login of Operate and Tasklist). SIGTERM by PID at the end."""
    if not os.path.isdir(os.path.join(OIDC_DIR, "node_modules", "oidc-provider")):
        raise RuntimeError("tests/oidc/node_modules is missing: scripts/test.sh installs it (npm ci in tests/oidc)")
    port = port or free_port()
    env = dict(os.environ, OIDC_PORT=str(port), OIDC_UI_REDIRECTS=",".join(ui_redirects))
    log_path = tempfile.mktemp(prefix="waggle-oidc-provider-", suffix=".log")
    log = open(log_path, "w")
    process = subprocess.Popen(["node", "provider.mjs"], cwd=OIDC_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + MAX_WAIT_S
        while not any(line.startswith("ready ") for line in open(log_path)):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the OpenID provider did not start: " + open(log_path).read())
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=MAX_WAIT_S)
        finally:
            if process.poll() is None:
                process.kill()
            log.close()
            os.unlink(log_path)


def oidc_env(issuer, audience="waggle-api", skew_ms=60_000):
    """The broker's configuration for tokens of `issuer`; the provider's
    sdk-app and pyzeebe-app clients are admins."""
    return {
        "WAGGLE_SECURITY_AUTHENTICATION": "oidc",
        "WAGGLE_SECURITY_OIDC_ISSUER_URI": issuer,
        "WAGGLE_SECURITY_OIDC_AUDIENCES": audience,
        "WAGGLE_SECURITY_OIDC_CLOCK_SKEW_MS": str(skew_ms),
        "WAGGLE_SECURITY_ADMIN_CLIENTS": "sdk-app,pyzeebe-app",
    }


def write_tls_files(ca, directory):
    """A certificate of trustme CA `ca` for localhost and 127.0.0.1, written
    to `directory`: (certificate chain, key, CA) file names."""
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert_file, key_file, ca_file = (os.path.join(directory, n) for n in ("cert.pem", "key.pem", "ca.pem"))
    for i, blob in enumerate(cert.cert_chain_pems):
        blob.write_to_path(cert_file, append=i > 0)
    cert.private_key_pem.write_to_path(key_file)
    ca.cert_pem.write_to_path(ca_file)
    return cert_file, key_file, ca_file


def wait_for_admin(broker, authorization, ca_file=None):
    """Waits until `authorization` (a header value) is an admin's: the
    broker sets up its default roles and admins just after it started.
    `ca_file`: the CA of a broker whose ports speak TLS."""
    tls = ssl.create_default_context(cafile=ca_file) if ca_file else None
    deadline = time.monotonic() + MAX_WAIT_S
    while True:
        request = urllib.request.Request(
            f"{broker.rest_url}/v2/users/search", data=b"{}", method="POST",
            headers={"Authorization": authorization, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10, context=tls) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the broker did not make the caller an admin")
        time.sleep(0.1)


def fetch_token(issuer, client_id, secret="secret"):
    """An access token by client credentials (client_secret_post)."""
    import json
    import urllib.parse

    body = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}).encode()
    with urllib.request.urlopen(f"{issuer}/token", data=body, timeout=10) as r:
        return json.load(r)["access_token"]


@pytest.fixture(scope="module")
def broker():
    with running_broker() as b:
        yield b


# Where a failed browser test (tests/ui) leaves what the browser showed.
UI_FAILURES = os.environ.get("WAGGLE_UI_FAILURES", os.path.join(REPO, "tests", "ui", "failures"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    driver = item.funcargs.get("browser") if hasattr(item, "funcargs") else None
    if report.when == "call" and report.failed and driver is not None:
        os.makedirs(UI_FAILURES, exist_ok=True)
        base = os.path.join(UI_FAILURES, item.name.replace("/", "_"))
        try:
            driver.save_screenshot(base + ".png")
            with open(base + ".html", "w") as f:
                f.write(driver.page_source)
            with open(base + ".console.txt", "w") as f:
                f.write("\n".join(json.dumps(e) for e in driver.get_log("browser")))
            report.sections.append(("browser", f"screenshot and page saved as {base}.png / .html / .console.txt"))
        except Exception as e:  # noqa: BLE001 (the browser may be gone)
            report.sections.append(("browser", f"no screenshot: {e}"))
