"""What the browser tests of Operate and Tasklist share: Debian's Chromium,
headless, driven by selenium through Debian's chromium-driver, against
`waggle dev` (tests/conftest.py); the `broker` and `browser` fixtures
(import them into a test module); and finding controls by their
accessible names, as a screen reader would. A failing test that uses
`browser` leaves a screenshot, the page's HTML and the console in
tests/ui/failures/ (or $WAGGLE_UI_FAILURES), named after it (the hook is in
tests/conftest.py)."""

import os
import sys
import time

import pytest
import requests
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from conftest import running_broker  # noqa: E402

TIMEOUT_S = 30
DESKTOP = (1280, 800)
PHONE = (390, 844)


@pytest.fixture(scope="module")
def broker():
    with running_broker(prefix="waggle-ui-") as b:
        yield b


def chromium(window=DESKTOP):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", f"--window-size={window[0]},{window[1]}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    driver.set_window_size(*window)
    return driver


@pytest.fixture(scope="module")
def browser():
    driver = chromium()
    yield driver
    driver.quit()


# --- the REST API, for setting up what the pages show ---------------------


def rest(broker, method, path, body=None, **kwargs):
    response = requests.request(method, broker.rest_url + "/v2" + path, json=body, timeout=TIMEOUT_S, **kwargs)
    assert response.status_code < 300, (method, path, response.status_code, response.text)
    return response.json() if response.content and "json" in response.headers.get("content-type", "") else None


def deploy(broker, name, text, **kwargs):
    response = requests.post(
        broker.rest_url + "/v2/deployments",
        files={"resources": (name, text.encode(), "application/octet-stream")},
        timeout=TIMEOUT_S,
        **kwargs,
    )
    assert response.status_code == 200, response.text
    return response.json()["deployments"]


def eventually(probe, what, timeout=TIMEOUT_S):
    """Polls `probe` until it returns a true value; searches lag the engine
    and the pages refresh every two seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = probe()
        # The page is not there yet (a redirect under way, a redraw).
        except (NoSuchElementException, StaleElementReferenceException, AssertionError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.2)


# --- the page, as a user (and a screen reader) sees it ---------------------


def named(driver, role_tags, name):
    """The displayed element among `role_tags` (CSS) whose accessible name
    is `name`, waiting for it."""

    def probe():
        for el in driver.find_elements(By.CSS_SELECTOR, role_tags):
            if el.is_displayed() and el.accessible_name.strip() == name:
                return el
        return None

    return eventually(probe, f"a {role_tags} named {name!r} on {driver.current_url}")


def button(driver, name):
    return named(driver, "button, [role=button], input[type=submit]", name)


def textbox(driver, name):
    return named(driver, "input, textarea, select", name)


def link(driver, name):
    return named(driver, "a", name)


def page_text(driver):
    return driver.find_element(By.TAG_NAME, "body").text


def shows(driver, text):
    return eventually(lambda: text in page_text(driver), f"{text!r} on {driver.current_url}")


def assert_accessible(driver):
    """Every visible control has an accessible name, and the page does not
    scroll sideways (wide tables scroll within their own box)."""
    nameless = [
        el.get_attribute("outerHTML")[:200]
        for el in driver.find_elements(By.CSS_SELECTOR, "a, button, input, select, textarea, [role=button]")
        if el.is_displayed() and el.get_attribute("type") != "hidden" and not el.accessible_name.strip()
    ]
    assert not nameless, f"controls without an accessible name: {nameless}"
    overflow = driver.execute_script("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 1, f"the page is {overflow}px wider than the window at {driver.get_window_size()}"
