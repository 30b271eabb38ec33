"""zbctl, Camunda's Go command line client (from npm, tests/zbctl), against
a broker whose client ports speak TLS and take OIDC tokens: with
`--certPath` and the client credentials of an OAuth client it reads the
topology, deploys, creates an instance, activates and completes its job;
without a token it is refused UNAUTHENTICATED, and trusting another CA, or
speaking plaintext, it gets nowhere."""

import json
import os
import subprocess

import pytest
import trustme

from conftest import REPO, fetch_token, oidc_env, running_broker, running_oidc_provider, wait_for_admin, write_tls_files
from test_flows import write_process

ZBCTL = os.path.join(REPO, "tests", "zbctl", "node_modules", "zbctl", "bin", "zbctl-cli.linux")
TIMEOUT_S = 60


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    if not os.access(ZBCTL, os.X_OK):
        raise RuntimeError("tests/zbctl/node_modules is missing: scripts/test.sh installs it (npm ci in tests/zbctl)")
    directory = tmp_path_factory.mktemp("zbctl")
    cert_file, key_file, ca_file = write_tls_files(trustme.CA(), directory)
    foreign_ca = os.path.join(directory, "foreign-ca.pem")
    trustme.CA().cert_pem.write_to_path(foreign_ca)
    with running_oidc_provider() as issuer:
        env = {**oidc_env(issuer), "WAGGLE_GATEWAY_TLS_CERT_FILE": cert_file, "WAGGLE_GATEWAY_TLS_KEY_FILE": key_file}
        with running_broker(env, prefix="waggle-zbctl-", ca_file=ca_file) as broker:
            wait_for_admin(broker, "Bearer " + fetch_token(issuer, "sdk-app"), ca_file=ca_file)
            yield broker, issuer, ca_file, foreign_ca, str(directory)


def zbctl(secured, *args, ca="own", oauth=True):
    """Runs zbctl with `args`; returns (exit status, stdout + stderr)."""
    broker, issuer, ca_file, foreign_ca, home = secured
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZEEBE_")}
    env["HOME"] = home  # zbctl caches tokens under ~/.camunda
    if oauth:
        env.update(
            {
                "ZEEBE_CLIENT_ID": "sdk-app",
                "ZEEBE_CLIENT_SECRET": "secret",
                "ZEEBE_AUTHORIZATION_SERVER_URL": f"{issuer}/token",
                "ZEEBE_TOKEN_AUDIENCE": "waggle-api",
            }
        )
    transport = {"own": ["--certPath", ca_file], "foreign": ["--certPath", foreign_ca], "plaintext": ["--insecure"]}[ca]
    command = [ZBCTL, "--address", broker.address, *transport, *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    return done.returncode, done.stdout + done.stderr


def test_zbctl_with_the_ca_and_a_token_runs_a_process(secured, tmp_path):
    status, out = zbctl(secured, "status")
    assert status == 0 and "Cluster size: 1" in out, out
    status, out = zbctl(secured, "deploy", "resource", write_process(tmp_path, "zbctl_tls", "zbctl-job"))
    assert status == 0, out
    assert json.loads(out)["deployments"][0]["process"]["bpmnProcessId"] == "zbctl_tls", out
    status, out = zbctl(secured, "create", "instance", "zbctl_tls", "--variables", '{"amount": 2}')
    assert status == 0, out
    instance = json.loads(out)["processInstanceKey"]
    status, out = zbctl(secured, "activate", "jobs", "zbctl-job", "--maxJobsToActivate", "1")
    assert status == 0, out
    [job] = json.loads(out)["jobs"]
    assert str(job["processInstanceKey"]) == str(instance), out
    status, out = zbctl(secured, "complete", "job", str(job["key"]), "--variables", '{"amount": 4}')
    assert status == 0 and "Completed job" in out, out


def test_zbctl_without_a_token_or_the_ca_gets_nowhere(secured):
    status, out = zbctl(secured, "status", oauth=False)
    assert status != 0 and "Unauthenticated" in out, out
    for transport in ("foreign", "plaintext"):
        status, out = zbctl(secured, "status", ca=transport)
        assert status != 0 and "Cluster size" not in out, f"{transport}: {out}"
