"""camunda-orchestration-sdk over HTTPS with mutual TLS: the broker's client
ports speak TLS (gateway.tls_cert_file, gateway.tls_key_file) and want client
certificates of a CA (gateway.tls_client_ca_file); the SDK gets the CA and
its certificate through CAMUNDA_MTLS_*. Without a certificate, or with one of
another CA, it gets nowhere. Certificates by trustme."""

import os
import warnings

import httpx
import pytest
import trustme

warnings.filterwarnings("ignore", category=DeprecationWarning)
from camunda_orchestration_sdk import CamundaClient  # noqa: E402

from conftest import running_broker  # noqa: E402
from test_rest_api import deploy  # noqa: E402


def write_cert(cert, directory, name):
    cert_file, key_file = os.path.join(directory, f"{name}.pem"), os.path.join(directory, f"{name}-key.pem")
    for i, blob in enumerate(cert.cert_chain_pems):
        blob.write_to_path(cert_file, append=i > 0)
    cert.private_key_pem.write_to_path(key_file)
    return cert_file, key_file


@pytest.fixture(scope="module")
def mtls(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("mtls"))
    ca, foreign = trustme.CA(), trustme.CA()
    ca_file = os.path.join(directory, "ca.pem")
    ca.cert_pem.write_to_path(ca_file)
    server = write_cert(ca.issue_cert("localhost", "127.0.0.1"), directory, "server")
    client = write_cert(ca.issue_cert("sdk.client.test"), directory, "client")
    stranger = write_cert(foreign.issue_cert("sdk.client.test"), directory, "stranger")
    env = {
        "WAGGLE_GATEWAY_TLS_CERT_FILE": server[0],
        "WAGGLE_GATEWAY_TLS_KEY_FILE": server[1],
        "WAGGLE_GATEWAY_TLS_CLIENT_CA_FILE": ca_file,
    }
    with running_broker(env, prefix="waggle-mtls-", ca_file=ca_file, client_cert=client) as broker:
        yield broker, ca_file, client, stranger


def sdk(broker, ca_file, cert=None):
    configuration = {
        "CAMUNDA_REST_ADDRESS": broker.rest_url,
        "CAMUNDA_AUTH_STRATEGY": "NONE",
        "CAMUNDA_MTLS_CA_PATH": ca_file,
    }
    if cert:
        configuration.update({"CAMUNDA_MTLS_CERT_PATH": cert[0], "CAMUNDA_MTLS_KEY_PATH": cert[1]})
    return CamundaClient(configuration=configuration)


def test_the_sdk_with_a_client_certificate_works_over_https(mtls, tmp_path):
    broker, ca_file, client, _ = mtls
    assert broker.rest_url.startswith("https://")
    c = sdk(broker, ca_file, client)
    assert c.get_topology().cluster_size == 1
    definition = deploy(c, tmp_path, "rest_tls", "rest-tls-job")
    assert int(definition.process_definition_key) > 0


def test_without_a_certificate_of_the_ca_the_sdk_gets_nowhere(mtls):
    broker, ca_file, _, stranger = mtls
    for cert, alert in ((None, "CERTIFICATE_REQUIRED"), (stranger, "UNKNOWN_CA")):
        # The handshake's alert, not an HTTP answer.
        with pytest.raises(httpx.TransportError, match=alert):
            sdk(broker, ca_file, cert).get_topology()
