"""camunda-orchestration-sdk against a broker with basic authentication
(security.authentication = "basic", security.initial_user = "demo:demo"):
with CAMUNDA_AUTH_STRATEGY=BASIC and the user's credentials it deploys and
manages users; without credentials it gets 401, and users it creates log
in until they are deleted."""

import os
import time
import warnings

import httpx
import pytest

warnings.filterwarnings("ignore", category=DeprecationWarning)
from camunda_orchestration_sdk import CamundaClient  # noqa: E402

from conftest import running_broker, wait_for_admin  # noqa: E402
from test_rest_api import deploy  # noqa: E402

TIMEOUT_S = 30


@pytest.fixture(scope="module")
def auth_broker():
    env = {"WAGGLE_SECURITY_AUTHENTICATION": "basic", "WAGGLE_SECURITY_INITIAL_USER": "demo:demo"}
    with running_broker(env, prefix="waggle-rest-auth-") as b:
        wait_for_admin(b, "Basic ZGVtbzpkZW1v")
        yield b


def sdk(broker, name=None, password=None):
    configuration = {"CAMUNDA_REST_ADDRESS": broker.rest_url, "CAMUNDA_AUTH_STRATEGY": "NONE"}
    if name:
        configuration.update(
            {"CAMUNDA_AUTH_STRATEGY": "BASIC", "CAMUNDA_BASIC_AUTH_USERNAME": name, "CAMUNDA_BASIC_AUTH_PASSWORD": password}
        )
    return CamundaClient(configuration=configuration)


def status_of(call):
    try:
        call()
        return 200
    except Exception as e:  # the SDK's error type per status; the status is what counts
        response = getattr(e, "response", None)
        status = getattr(e, "status_code", None) or getattr(response, "status_code", None)
        if status is None:
            raise
        return status


def test_the_sdk_with_basic_credentials_deploys(auth_broker, tmp_path):
    c = sdk(auth_broker, "demo", "demo")
    assert c.get_topology().cluster_size == 1
    definition = deploy(c, tmp_path, "rest_auth", "rest-auth-job")
    assert int(definition.process_definition_key) > 0


def test_anonymous_and_wrong_credentials_get_401(auth_broker, tmp_path):
    for client in (sdk(auth_broker), sdk(auth_broker, "demo", "wrong")):
        assert status_of(client.get_topology) == 401
    response = httpx.post(f"{auth_broker.rest_url}/v2/process-instances", json={"processDefinitionId": "rest_auth"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].lower().startswith("basic")
    assert response.json()["title"] == "UNAUTHORIZED"


def test_users_created_through_rest_log_in_until_deleted(auth_broker):
    base, demo = auth_broker.rest_url, ("demo", "demo")
    created = httpx.post(f"{base}/v2/users", auth=demo, json={"username": "carol", "password": "pw-1", "name": "Carol", "email": "carol@example.com"})
    assert created.status_code == 201, created.text
    assert created.json() == {"username": "carol", "name": "Carol", "email": "carol@example.com"}
    carol = sdk(auth_broker, "carol", "pw-1")
    deadline = time.monotonic() + TIMEOUT_S
    while status_of(carol.get_topology) != 200:
        assert time.monotonic() < deadline, "carol cannot log in"
        time.sleep(0.2)
    me = httpx.get(f"{base}/v2/authentication/me", auth=("carol", "pw-1"))
    assert me.json()["username"] == "carol" and me.json()["displayName"] == "Carol"
    found = httpx.post(f"{base}/v2/users/search", auth=demo, json={"filter": {"email": "carol@example.com"}}).json()
    assert [u["username"] for u in found["items"]] == ["carol"]
    assert httpx.delete(f"{base}/v2/users/carol", auth=demo).status_code == 204
    deadline = time.monotonic() + TIMEOUT_S
    while status_of(carol.get_topology) != 401:
        assert time.monotonic() < deadline, "a deleted user still logs in"
        time.sleep(0.2)
