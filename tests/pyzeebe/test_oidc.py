"""pyzeebe against a broker with OIDC (security.authentication = "oidc")
and a real OpenID provider (node's oidc-provider, tests/oidc/provider.mjs):
with create_oauth2_client_credentials_channel it deploys, runs and
completes; every method of the Gateway service answers UNAUTHENTICATED
without a token, with an expired one, one for another audience, one of a
foreign issuer and garbage, and PERMISSION_DENIED (Topology aside) to a
valid client without roles; the refused calls change nothing."""

import asyncio
import os
import time

import grpc
import pytest
from pyzeebe import ZeebeClient, create_oauth2_client_credentials_channel
from pyzeebe.proto import gateway_pb2

from conftest import wait_for_admin, fetch_token, oidc_env, running_broker, running_oidc_provider
from test_flows import doubled_by_a_worker, write_process


@pytest.fixture(scope="module")
def oidc():
    # The provider serves plain HTTP on loopback; oauthlib (under pyzeebe)
    # insists on https unless told this.
    os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    with running_oidc_provider() as issuer, running_oidc_provider() as foreign:
        # No clock skew: the short-lived client's tokens expire after 1 s.
        with running_broker(oidc_env(issuer, skew_ms=0), prefix="waggle-pz-oidc-") as broker:
            wait_for_admin(broker, "Bearer " + fetch_token(issuer, "sdk-app"))
            yield broker, issuer, foreign


def oauth_channel(broker, issuer):
    """pyzeebe's client-credentials channel (client_secret_basic at the
    token endpoint), over gRPC's local credentials: plaintext on loopback,
    which carries call credentials."""
    return create_oauth2_client_credentials_channel(
        grpc_address=broker.address,
        client_id="pyzeebe-app",
        client_secret="secret",
        authorization_server=f"{issuer}/token",
        audience="waggle-api",
        channel_credentials=grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP),
    )


def test_pyzeebe_with_client_credentials_deploys_creates_and_completes(oidc, tmp_path):
    broker, issuer, _ = oidc

    async def scenario():
        channel = oauth_channel(broker, issuer)
        try:
            return await doubled_by_a_worker(channel, tmp_path, "pz_oidc", 6)
        finally:
            await channel.close()

    assert asyncio.run(scenario()) == 12


def test_every_gateway_method_refuses_bad_tokens_and_changes_nothing(oidc, tmp_path):
    broker, issuer, foreign = oidc
    expired = fetch_token(issuer, "short-lived")
    callers = [
        ("no credentials", None),
        ("wrong audience", "Bearer " + fetch_token(issuer, "other-audience")),
        ("foreign issuer", "Bearer " + fetch_token(foreign, "sdk-app")),
        ("garbage", "Bearer not.a.jwt"),
    ]
    time.sleep(2.1)
    callers.append(("expired", "Bearer " + expired))
    model = write_process(tmp_path, "pz_oidc_refused", "pz-oidc-refused-job")
    with open(model, "rb") as f:
        deployment = gateway_pb2.DeployResourceRequest(resources=[gateway_pb2.Resource(name="refused.bpmn", content=f.read())])
    methods = gateway_pb2.DESCRIPTOR.services_by_name["Gateway"].methods
    assert len(methods) >= 20

    async def refusals():
        found = []
        async with grpc.aio.insecure_channel(broker.address) as channel:
            for what, header in callers:
                metadata = (("authorization", header),) if header else ()
                for method in methods:
                    request_type = getattr(gateway_pb2, method.input_type.name)
                    request = deployment if method.name == "DeployResource" else request_type()
                    path = f"/gateway_protocol.Gateway/{method.name}"
                    kind = channel.unary_stream if method.server_streaming else channel.unary_unary
                    call = kind(path, request_serializer=request_type.SerializeToString, response_deserializer=lambda b: b)
                    try:
                        if method.server_streaming:
                            async for _ in call(request, metadata=metadata, timeout=10):
                                pass
                        else:
                            await call(request, metadata=metadata, timeout=10)
                        found.append((what, method.name, "answered"))
                    except grpc.aio.AioRpcError as e:
                        found.append((what, method.name, e.code()))
        return found

    callers.append(("a client without roles", "Bearer " + fetch_token(issuer, "no-roles")))
    outcomes = asyncio.run(refusals())
    assert len(outcomes) == len(callers) * len(methods)
    expected = {
        (what, method.name): grpc.StatusCode.UNAUTHENTICATED
        if what != "a client without roles"
        else ("answered" if method.name == "Topology" else grpc.StatusCode.PERMISSION_DENIED)
        for what, _ in callers
        for method in methods
    }
    wrong = [o for o in outcomes if o[2] != expected[(o[0], o[1])]]
    assert not wrong, wrong

    async def deployed_version():
        channel = oauth_channel(broker, issuer)
        result = await ZeebeClient(channel).deploy_resource(model)
        await channel.close()
        return result.deployments[0].version

    assert asyncio.run(deployed_version()) == 1, "a refused deployment got through"
