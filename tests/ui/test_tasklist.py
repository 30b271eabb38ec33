"""Tasklist in the browser, against `waggle dev`: the task list's filters
(assignee, candidate group, due date) and claiming; completing a task
through its linked Camunda form, its embedded form, or the JSON editor of
a task without a form, checked over REST; unclaiming and a refused claim;
starting a process from its start form. Every page type is checked for
accessible names and for fitting 1280×800 and a phone."""

import json

from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select

from browser import (  # noqa: F401
    DESKTOP,
    PHONE,
    assert_accessible,
    broker,
    browser,
    button,
    deploy,
    eventually,
    link,
    page_text,
    rest,
    shows,
    textbox,
)

USER_TASK_PROCESS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="t">
  <bpmn:process id="{pid}" name="{process_name}" isExecutable="true">{process_extensions}
    <bpmn:startEvent id="start">{start}</bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="task"/>
    <bpmn:userTask id="task" name="{task_name}">
      <bpmn:extensionElements><zeebe:userTask/>{task}</bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="f2" sourceRef="task" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>"""


def process(pid, process_name, task_name, task="", start="", process_extensions=""):
    return USER_TASK_PROCESS.format(
        pid=pid, process_name=process_name, task_name=task_name, task=task, start=start, process_extensions=process_extensions
    )


def text_form(form_id, key, label):
    return json.dumps({"id": form_id, "type": "default", "components": [{"type": "textfield", "key": key, "label": label}]})


def start_instance(broker, pid, variables=None):
    return rest(broker, "POST", "/process-instances", {"processDefinitionId": pid, "variables": variables or {}})["processInstanceKey"]


def task_of(broker, instance):
    items = eventually(
        lambda: rest(broker, "POST", "/user-tasks/search", {"filter": {"processInstanceKey": instance}})["items"],
        f"the user task of instance {instance} is exported",
    )
    return items[0]["userTaskKey"]


def user_task(broker, key):
    return rest(broker, "GET", f"/user-tasks/{key}")


def variable(broker, instance, name):
    items = rest(broker, "POST", "/variables/search", {"filter": {"processInstanceKey": instance, "name": name}})["items"]
    return json.loads(items[0]["value"]) if items else None


def task_completed_with(broker, key, instance, name, value):
    eventually(lambda: user_task(broker, key)["state"] == "COMPLETED", f"task {key} is completed")
    eventually(lambda: variable(broker, instance, name) == value, f"instance {instance} has {name} = {value!r}")


def accessible_at_both_sizes(browser, text):
    """The page shows `text`, names its controls and fits 1280×800 and a phone."""
    for size in (PHONE, DESKTOP):
        browser.set_window_size(*size)
        shows(browser, text)
        assert_accessible(browser)


def table_text(browser):
    tables = browser.find_elements(By.CSS_SELECTOR, "main table")
    return tables[0].text if tables else ""


def choose(browser, label, option):
    Select(textbox(browser, label)).select_by_visible_text(option)


def listed(browser, *names, absent=()):
    """The task table shows every one of `names` and none of `absent`."""
    eventually(
        lambda: all(n in page_text(browser) for n in names) and not any(a in table_text(browser) for a in absent),
        f"the list shows {names} and not {absent}",
    )


def test_the_list_filters_claims_and_a_task_completes_through_its_linked_form(broker, browser):
    deploy(broker, "tl_review.form", text_form("tl_review_form", "decision", "Decision"))
    deploy(
        broker,
        "tl_review.bpmn",
        process(
            "tl_review",
            "Order review",
            "Review order",
            '<zeebe:formDefinition formId="tl_review_form"/>'
            '<zeebe:assignmentDefinition candidateGroups="sales"/>'
            '<zeebe:taskSchedule dueDate="2020-01-01T09:00:00+01:00"/>',
        ),
    )
    deploy(
        broker,
        "tl_chore.bpmn",
        process("tl_chore", "Chores", "Sweep floor", '<zeebe:assignmentDefinition candidateGroups="ops"/>'),
    )
    review = start_instance(broker, "tl_review", {"decision": "pending"})
    chore = start_instance(broker, "tl_chore")
    review_task, chore_task = task_of(broker, review), task_of(broker, chore)

    browser.get(broker.rest_url + "/tasklist/#/")
    listed(browser, "Review order", "Sweep floor")
    assert "Order review" in table_text(browser) and "sales" in table_text(browser)
    accessible_at_both_sizes(browser, "Review order")

    def listed_first(first, then):
        text = table_text(browser)
        return first in text and then in text and text.index(first) < text.index(then)

    eventually(lambda: listed_first("Sweep floor", "Review order"), "the newest task first")
    choose(browser, "Sort", "Due soonest first")
    eventually(lambda: listed_first("Review order", "Sweep floor"), "the task due soonest first")
    assert "sort=due" in browser.current_url
    choose(browser, "Sort", "Newest first")
    eventually(lambda: listed_first("Sweep floor", "Review order"), "the newest task first again")

    textbox(browser, "Candidate group").send_keys("sales")
    listed(browser, "Review order", absent=["Sweep floor"])
    assert "group=sales" in browser.current_url
    textbox(browser, "Candidate group").clear()
    textbox(browser, "Candidate group").send_keys("ops")
    listed(browser, "Sweep floor", absent=["Review order"])
    textbox(browser, "Candidate group").clear()

    choose(browser, "Due", "Overdue")
    listed(browser, "Review order", absent=["Sweep floor"])
    assert "due=overdue" in browser.current_url
    choose(browser, "Due", "Due before a date")
    due_before = textbox(browser, "Due before")
    browser.execute_script(
        "arguments[0].value = '2019-12-31'; arguments[0].dispatchEvent(new Event('change'))", due_before
    )
    listed(browser, absent=["Review order", "Sweep floor"])
    browser.execute_script(
        "arguments[0].value = '2020-01-02'; arguments[0].dispatchEvent(new Event('change'))", due_before
    )
    listed(browser, "Review order", absent=["Sweep floor"])
    choose(browser, "Due", "Any time")

    # the filters are in the address: a reload keeps them
    choose(browser, "Show", "Assigned to me")
    listed(browser, absent=["Review order", "Sweep floor"])
    browser.get(broker.rest_url + "/tasklist/#/?show=unassigned")
    listed(browser, "Review order", "Sweep floor")
    assert Select(textbox(browser, "Show")).first_selected_option.text == "Unassigned"

    button(browser, "Claim Review order").click()
    eventually(lambda: user_task(broker, review_task)["assignee"] == "anonymous", "the task is claimed")
    listed(browser, "Sweep floor", absent=["Review order"])
    choose(browser, "Show", "Assigned to me")
    listed(browser, "Review order", absent=["Sweep floor"])

    link(browser, "Review order").click()
    shows(browser, "Form (linked)")
    accessible_at_both_sizes(browser, "Decision")
    decision = textbox(browser, "Decision")
    eventually(lambda: decision.get_attribute("value") == "pending", "the form shows the instance's variable")
    decision.clear()
    decision.send_keys("approved")
    button(browser, "Complete task").click()
    task_completed_with(broker, review_task, review, "decision", "approved")
    eventually(lambda: browser.current_url.endswith("/tasklist/#/"), "back on the list")

    # a task without a form: claim and unclaim on its page, complete with JSON
    browser.get(f"{broker.rest_url}/tasklist/#/tasks/{chore_task}")
    shows(browser, "Claim the task to work on it.")
    accessible_at_both_sizes(browser, "Variables (JSON)")
    assert textbox(browser, "Variables (JSON)").get_attribute("readonly") is not None
    button(browser, "Claim Sweep floor").click()
    eventually(lambda: user_task(broker, chore_task)["assignee"] == "anonymous", "the chore is claimed")
    button(browser, "Unclaim Sweep floor").click()
    eventually(lambda: user_task(broker, chore_task)["assignee"] is None, "the chore is unclaimed")
    button(browser, "Claim Sweep floor").click()
    editor = textbox(browser, "Variables (JSON)")
    eventually(lambda: editor.get_attribute("readonly") is None, "the editor opens to its assignee")
    editor.clear()
    editor.send_keys('{"swept": true}')
    button(browser, "Complete task").click()
    task_completed_with(broker, chore_task, chore, "swept", True)


def test_a_claim_of_a_task_someone_else_took_shows_the_refusal(broker, browser):
    deploy(broker, "tl_race.bpmn", process("tl_race", "Race", "Contested task"))
    key = task_of(broker, start_instance(broker, "tl_race"))
    browser.get(f"{broker.rest_url}/tasklist/#/tasks/{key}")
    claim = button(browser, "Claim Contested task")
    rest(broker, "POST", f"/user-tasks/{key}/assignment", {"assignee": "bob", "allowOverride": True})
    claim.click()
    shows(browser, "409")
    assert user_task(broker, key)["assignee"] == "bob"
    shows(browser, "bob works on this task.")


def test_an_embedded_form_is_read_from_the_process_and_completes_the_task(broker, browser):
    form = json.dumps({"components": [{"type": "textfield", "key": "city", "label": "City"}], "type": "default"})
    # as the Camunda Modeler writes it: the form's JSON escaped in the XML
    escaped = form.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&#34;")
    deploy(
        broker,
        "tl_embedded.bpmn",
        process(
            "tl_embedded",
            "Travel",
            "Pick a city",
            '<zeebe:formDefinition formKey="camunda-forms:bpmn:userTaskForm_city"/>',
            process_extensions=f'<bpmn:extensionElements><zeebe:userTaskForm id="userTaskForm_city">{escaped}'
            "</zeebe:userTaskForm></bpmn:extensionElements>",
        ),
    )
    instance = start_instance(broker, "tl_embedded", {"city": "Oslo"})
    key = task_of(broker, instance)
    assert user_task(broker, key)["externalFormReference"] == "camunda-forms:bpmn:userTaskForm_city"
    browser.get(f"{broker.rest_url}/tasklist/#/tasks/{key}")
    shows(browser, "Form (embedded)")
    city = textbox(browser, "City")
    eventually(lambda: city.get_attribute("value") == "Oslo", "the form shows the instance's variable")
    button(browser, "Claim Pick a city").click()
    button(browser, "Complete task")
    city = textbox(browser, "City")
    eventually(lambda: city.get_attribute("readonly") is None, "the form opens to its assignee")
    city.clear()
    city.send_keys("Bergen")
    button(browser, "Complete task").click()
    task_completed_with(broker, key, instance, "city", "Bergen")


def test_a_process_starts_from_its_start_form_or_a_plain_button(broker, browser):
    signup_form = {
        "id": "tl_signup_form",
        "type": "default",
        "components": [{"type": "textfield", "key": "customer", "label": "Customer", "validate": {"required": True}}],
    }
    deploy(broker, "tl_signup.form", json.dumps(signup_form))
    deploy(
        broker,
        "tl_signup.bpmn",
        process(
            "tl_signup",
            "Sign-up",
            "Welcome customer",
            start='<bpmn:extensionElements><zeebe:formDefinition formId="tl_signup_form"/></bpmn:extensionElements>',
        ),
    )
    deploy(broker, "tl_plain.bpmn", process("tl_plain", "Plain start", "Plain step"))

    browser.get(broker.rest_url + "/tasklist/#/processes")
    eventually(lambda: "Sign-up" in table_text(browser) and "Plain start" in table_text(browser), "both processes listed")
    accessible_at_both_sizes(browser, "Sign-up")
    rows = {row.text.split(" ")[0]: row.text for row in browser.find_elements(By.CSS_SELECTOR, "main tbody tr")}
    assert rows["Sign-up"].endswith("Yes") and rows["Plain"].endswith("No"), rows
    link(browser, "Sign-up").click()
    customer = textbox(browser, "Customer")
    accessible_at_both_sizes(browser, "Customer")
    button(browser, "Start Sign-up").click()
    shows(browser, "Please correct the fields the form marks.")
    customer.send_keys("ACME")
    button(browser, "Start Sign-up").click()
    shows(browser, "Started instance")

    def started(pid):
        return rest(broker, "POST", "/process-instances/search", {"filter": {"processDefinitionId": pid}})["items"]

    [signed_up] = eventually(lambda: started("tl_signup"), "the instance is exported")
    instance = signed_up["processInstanceKey"]
    eventually(lambda: variable(broker, instance, "customer") == "ACME", "the instance has the typed customer")

    browser.get(broker.rest_url + "/tasklist/#/processes")
    link(browser, "Plain start").click()
    button(browser, "Start Plain start").click()
    eventually(lambda: started("tl_plain"), "the plain process is started")
