"""pyzeebe against a broker with basic authentication
(security.authentication = "basic", security.initial_user = "demo:demo"):
with the user's credentials as call credentials it deploys, runs and
completes; without them, or with a wrong password, every call is refused
with UNAUTHENTICATED and nothing is deployed."""

import asyncio
import base64

import grpc
import pytest
from pyzeebe import ZeebeClient, create_insecure_channel, create_secure_channel
from pyzeebe.errors import UnknownGrpcStatusCodeError

from conftest import running_broker, wait_for_admin
from test_flows import doubled_by_a_worker, write_process


@pytest.fixture(scope="module")
def auth_broker():
    env = {"WAGGLE_SECURITY_AUTHENTICATION": "basic", "WAGGLE_SECURITY_INITIAL_USER": "demo:demo"}
    with running_broker(env, prefix="waggle-auth-") as b:
        yield b


class BasicAuth(grpc.AuthMetadataPlugin):
    def __init__(self, name, password):
        self.header = "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()

    def __call__(self, context, callback):
        callback((("authorization", self.header),), None)


def channel_as(broker, name, password):
    """pyzeebe's secure channel with the user's call credentials, over
    gRPC's local credentials (plaintext on loopback, which carries call
    credentials)."""
    credentials = grpc.composite_channel_credentials(
        grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP),
        grpc.metadata_call_credentials(BasicAuth(name, password)),
    )
    return create_secure_channel(grpc_address=broker.address, channel_credentials=credentials)


async def refusal(channel, call):
    try:
        await asyncio.wait_for(call(ZeebeClient(channel, max_connection_retries=1)), 10)
        return "answered"
    except UnknownGrpcStatusCodeError as e:
        return e.grpc_error.code()
    finally:
        await channel.close()


def wait_for_initial_user(broker):
    wait_for_admin(broker, "Basic " + base64.b64encode(b"demo:demo").decode())


def test_pyzeebe_with_credentials_deploys_creates_and_completes(auth_broker, tmp_path):
    wait_for_initial_user(auth_broker)

    async def scenario():
        channel = channel_as(auth_broker, "demo", "demo")
        try:
            return await doubled_by_a_worker(channel, tmp_path, "pz_auth", 5)
        finally:
            await channel.close()

    assert asyncio.run(scenario()) == 10


def test_without_credentials_pyzeebe_is_refused_and_changes_nothing(auth_broker, tmp_path):
    wait_for_initial_user(auth_broker)
    model = write_process(tmp_path, "pz_anonymous", "pz-anonymous-job")

    async def scenario():
        outcomes = []
        for channel in (create_insecure_channel(grpc_address=auth_broker.address), channel_as(auth_broker, "demo", "wrong")):
            outcomes.append(await refusal(channel, lambda c: c.deploy_resource(model)))
        return outcomes

    assert asyncio.run(scenario()) == [grpc.StatusCode.UNAUTHENTICATED] * 2

    async def deployed_version():
        channel = channel_as(auth_broker, "demo", "demo")
        result = await ZeebeClient(channel).deploy_resource(model)
        await channel.close()
        return result.deployments[0].version

    assert asyncio.run(deployed_version()) == 1, "the refused deployments left nothing"
