"""With OIDC authentication, Operate and Tasklist sign their user in at
the OpenID provider (node's oidc-provider, tests/oidc): the authorization
code flow with PKCE as the public client waggle-ui, back to the app with an
access token that every API call carries."""

import pytest
from browser import browser, button, eventually, link, shows  # noqa: F401
from conftest import free_port, oidc_env, running_broker, running_oidc_provider
from selenium.webdriver.common.by import By


@pytest.fixture(scope="module")
def oidc_broker():
    rest_port = free_port()
    redirects = [f"http://127.0.0.1:{rest_port}/{app}/" for app in ("operate", "tasklist")]
    with running_oidc_provider(ui_redirects=redirects) as issuer:
        env = oidc_env(issuer)
        env.update(
            {
                "WAGGLE_REST_PORT": str(rest_port),
                "WAGGLE_SECURITY_OIDC_UI_CLIENT_ID": "waggle-ui",
                "WAGGLE_SECURITY_OIDC_UI_SCOPE": "openid api",
                # The provider's client credentials tokens name their client
                # in `app`; a user's token has only `sub` (and client_id).
                "WAGGLE_SECURITY_OIDC_CLIENT_ID_CLAIM": "app",
                "WAGGLE_SECURITY_AUTHORIZATIONS_ENABLED": "false",
            }
        )
        with running_broker(env, prefix="waggle-ui-oidc-") as b:
            yield b


def test_sign_in_at_the_provider_and_out(oidc_broker, browser):
    browser.get(oidc_broker.rest_url + "/operate/#/")
    shows(browser, "Sign in to Operate")
    button(browser, "Sign in with OpenID Connect").click()
    # The provider's own login page takes any user name.
    shows(browser, "Sign-in")
    browser.find_element(By.NAME, "login").send_keys("ana")
    browser.find_element(By.NAME, "password").send_keys("anything")
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    eventually(lambda: browser.find_element(By.CSS_SELECTOR, "header .user").text == "ana", "ana signed in")
    shows(browser, "Incidents by error")
    assert browser.current_url == oidc_broker.rest_url + "/operate/#/", "the code and state left the address"
    link(browser, "Tasklist").click()
    shows(browser, "waggle Tasklist")
    button(browser, "Sign out").click()
    shows(browser, "Sign in to Tasklist")
    button(browser, "Sign in with OpenID Connect")
