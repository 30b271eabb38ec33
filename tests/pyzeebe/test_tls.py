"""pyzeebe over a TLS channel to a broker whose client ports speak TLS
(gateway.tls_cert_file, gateway.tls_key_file), with a CA and certificate
made by trustme; a plaintext channel and a channel trusting another CA get
nowhere."""

import asyncio
import http.client
import ssl
import urllib.request

import grpc
import pytest
import trustme
from pyzeebe import ZeebeClient, create_insecure_channel, create_secure_channel

from conftest import running_broker, write_tls_files
from test_flows import doubled_by_a_worker

# The certificate names localhost; clients dial 127.0.0.1 and check that name.
NAME_OVERRIDE = (("grpc.ssl_target_name_override", "localhost"),)


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_broker(ca, tmp_path_factory):
    cert_file, key_file, ca_file = write_tls_files(ca, tmp_path_factory.mktemp("tls"))
    env = {"WAGGLE_GATEWAY_TLS_CERT_FILE": cert_file, "WAGGLE_GATEWAY_TLS_KEY_FILE": key_file}
    with running_broker(env, prefix="waggle-tls-", ca_file=ca_file) as b:
        b.ca_file = ca_file
        yield b


def secure_channel(broker, root_pem: bytes):
    return create_secure_channel(
        grpc_address=broker.address,
        channel_options=NAME_OVERRIDE,
        channel_credentials=grpc.ssl_channel_credentials(root_certificates=root_pem),
    )


def test_pyzeebe_over_tls_deploys_creates_and_completes(tls_broker, ca, tmp_path):
    async def scenario():
        channel = secure_channel(tls_broker, ca.cert_pem.bytes())
        try:
            return await doubled_by_a_worker(channel, tmp_path, "pz_tls", 4)
        finally:
            await channel.close()

    assert asyncio.run(scenario()) == 8


def test_plaintext_and_foreign_ca_clients_get_nowhere(tls_broker):
    async def topology(channel):
        try:
            await asyncio.wait_for(ZeebeClient(channel, max_connection_retries=1).topology(), 10)
            return "answered"
        except Exception as e:  # the refusal's type depends on where it failed
            return type(e).__name__
        finally:
            await channel.close()

    async def scenario():
        plain = await topology(create_insecure_channel(grpc_address=tls_broker.address))
        foreign = await topology(secure_channel(tls_broker, trustme.CA().cert_pem.bytes()))
        return plain, foreign

    plain, foreign = asyncio.run(scenario())
    assert (plain, foreign) == ("ZeebeGatewayUnavailableError", "ZeebeGatewayUnavailableError")


def test_rest_and_management_speak_https(tls_broker):
    context = ssl.create_default_context(cafile=tls_broker.ca_file)
    with urllib.request.urlopen(f"{tls_broker.rest_url}/v2/topology", timeout=10, context=context) as r:
        assert r.status == 200
    assert tls_broker.rest_url.startswith("https://")
    # The TLS port answers plain HTTP with a TLS alert or by closing.
    with pytest.raises((OSError, http.client.HTTPException)):
        urllib.request.urlopen(f"http://127.0.0.1:{tls_broker.management_port}/ready", timeout=10)
