"""Both applications open on a development broker without a login, name
their controls, and fit a phone."""

from browser import DESKTOP, PHONE, assert_accessible, broker, browser, link, shows  # noqa: F401


def test_both_applications_open_without_a_login_and_lead_to_each_other(broker, browser):
    browser.get(broker.rest_url + "/operate")
    shows(browser, "waggle Operate")
    shows(browser, "anonymous")
    link(browser, "Tasklist").click()
    shows(browser, "waggle Tasklist")
    assert browser.current_url.endswith("/tasklist/")
    for size in (DESKTOP, PHONE):
        browser.set_window_size(*size)
        for app in ("operate", "tasklist"):
            browser.get(f"{broker.rest_url}/{app}/")
            shows(browser, f"waggle {app.capitalize()}")
            assert_accessible(browser)
    browser.set_window_size(*DESKTOP)
