"""With basic authentication on, both applications ask for a login of
their own (the broker answers their calls 401 without a challenge, so the
browser opens no dialog of its own), refuse a wrong password, keep the
user signed in across the two applications of the tab, and sign out."""

import pytest
import requests
from browser import assert_accessible, browser, button, eventually, link, shows, textbox  # noqa: F401
from conftest import running_broker, wait_for_admin
from selenium.webdriver.common.by import By


@pytest.fixture(scope="module")
def auth_broker():
    env = {"WAGGLE_SECURITY_AUTHENTICATION": "basic", "WAGGLE_SECURITY_INITIAL_USER": "demo:demo"}
    with running_broker(env, prefix="waggle-ui-login-") as b:
        wait_for_admin(b, "Basic ZGVtbzpkZW1v")
        yield b


def sign_in(browser, name, password):
    textbox(browser, "User name").clear()
    textbox(browser, "User name").send_keys(name)
    textbox(browser, "Password").clear()
    textbox(browser, "Password").send_keys(password)
    button(browser, "Sign in").click()


def test_the_apps_calls_get_no_challenge_and_others_do(auth_broker):
    me = auth_broker.rest_url + "/v2/authentication/me"
    from_app = requests.get(me, headers={"X-Requested-With": "XMLHttpRequest"}, timeout=10)
    assert from_app.status_code == 401 and "www-authenticate" not in from_app.headers
    other = requests.get(me, timeout=10)
    assert other.status_code == 401 and other.headers["www-authenticate"].startswith("Basic")


def test_login_wrong_password_sign_out(auth_broker, browser):
    browser.get(auth_broker.rest_url + "/operate/")
    shows(browser, "Sign in to Operate")
    assert_accessible(browser)
    sign_in(browser, "demo", "wrong")
    shows(browser, "The user name or password is wrong.")
    sign_in(browser, "demo", "demo")
    eventually(lambda: browser.find_element(By.CSS_SELECTOR, "header .user").text == "demo", "demo signed in")
    shows(browser, "Incidents by error")
    button(browser, "Sign out")
    # The same tab stays signed in in Tasklist.
    link(browser, "Tasklist").click()
    shows(browser, "waggle Tasklist")
    button(browser, "Sign out").click()
    shows(browser, "Sign in to Tasklist")
    browser.refresh()
    shows(browser, "Sign in to Tasklist")
