"""Operate against `waggle dev`: the dashboard with incidents grouped by
error, the processes view's filters (reflected in the hash) and batch
commands, an instance's detail (the diagram with its token overlays,
retrying an incident, editing variables, cancelling, moving a token,
migrating) and the decision instances, all through the REST API v2; each
page type named and fitting a phone."""

import json

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

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
    rest,
    shows,
    textbox,
)


def model(pid, *tasks, name=None):
    """start → each (id, what) task in turn → end, laid out left to right
    with diagram interchange, so that bpmn-js draws it. `what` is a job type
    (a service task), "call:<process id>" (a call activity) or
    "decision:<decision id>" (a business rule task, its result in `result`)."""
    nodes = [("start", "startEvent", "")]
    for i, what in tasks:
        if what.startswith("call:"):
            nodes.append((i, "callActivity", f'<zeebe:calledElement processId="{what[5:]}"/>'))
        elif what.startswith("decision:"):
            nodes.append((i, "businessRuleTask", f'<zeebe:calledDecision decisionId="{what[9:]}" resultVariable="result"/>'))
        else:
            nodes.append((i, "serviceTask", f'<zeebe:taskDefinition type="{what}"/>'))
    nodes.append(("end", "endEvent", ""))
    body, shapes, flows = [], [], []
    for n, (i, kind, extension) in enumerate(nodes):
        extensions = f"<bpmn:extensionElements>{extension}</bpmn:extensionElements>" if extension else ""
        body.append(f'<bpmn:{kind} id="{i}" name="{i.capitalize()}">{extensions}</bpmn:{kind}>')
        w, h = (100, 80) if extension else (36, 36)
        shapes.append(f'<bpmndi:BPMNShape id="{i}_di" bpmnElement="{i}"><dc:Bounds x="{100 + 170 * n}" y="{120 - h // 2}" width="{w}" height="{h}"/></bpmndi:BPMNShape>')
    for n, ((a, _, task), (b, _, _)) in enumerate(zip(nodes, nodes[1:])):
        body.append(f'<bpmn:sequenceFlow id="f{n}" sourceRef="{a}" targetRef="{b}"/>')
        flows.append(
            f'<bpmndi:BPMNEdge id="f{n}_di" bpmnElement="f{n}"><di:waypoint x="{100 + 170 * n + (100 if task else 36)}" y="120"/>'
            f'<di:waypoint x="{100 + 170 * (n + 1)}" y="120"/></bpmndi:BPMNEdge>'
        )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" xmlns:dc="http://www.omg.org/spec/DD/20100524/DC"
    xmlns:di="http://www.omg.org/spec/DD/20100524/DI" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="t">
  <bpmn:process id="{pid}" name="{name or pid}" isExecutable="true">{"".join(body)}</bpmn:process>
  <bpmndi:BPMNDiagram id="diagram"><bpmndi:BPMNPlane id="plane" bpmnElement="{pid}">{"".join(shapes + flows)}</bpmndi:BPMNPlane></bpmndi:BPMNDiagram>
</bpmn:definitions>"""


DMN = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="op_drg" name="Operate DRG" namespace="http://waggle/operate">
  <decision id="op_size" name="Parcel size">
    <decisionTable id="t" hitPolicy="FIRST">
      <input id="weightInput" label="Weight">
        <inputExpression id="e" typeRef="number"><text>weight</text></inputExpression>
      </input>
      <output id="o" name="size" typeRef="string"/>
      <rule id="heavy"><inputEntry id="h1"><text>&gt; 10</text></inputEntry><outputEntry id="h2"><text>"large"</text></outputEntry></rule>
      <rule id="light"><inputEntry id="l1"><text>-</text></inputEntry><outputEntry id="l2"><text>"small"</text></outputEntry></rule>
    </decisionTable>
  </decision>
</definitions>"""


# --- the REST API -----------------------------------------------------------


def create(broker, pid, **variables):
    return rest(broker, "POST", "/process-instances", {"processDefinitionId": pid, "variables": variables})["processInstanceKey"]


def items(broker, entity, filter):
    return rest(broker, "POST", f"/{entity}/search", {"filter": filter})["items"]


def fail_jobs(broker, job_type, count, message):
    """Fails `count` jobs of `job_type` without retries: an incident each."""
    failed = 0
    while failed < count:
        jobs = rest(broker, "POST", "/jobs/activation", {"type": job_type, "timeout": 60000, "maxJobsToActivate": count - failed, "requestTimeout": 2000})["jobs"]
        for job in jobs:
            rest(broker, "POST", f"/jobs/{job['jobKey']}/failure", {"retries": 0, "errorMessage": message})
        failed += len(jobs)


def with_incident(broker, key):
    return eventually(lambda: items(broker, "incidents", {"processInstanceKey": key, "state": "ACTIVE"}), f"an incident of {key}")


def visible(broker, key):
    """Waits until the searches know instance `key` (they lag the engine)."""
    return eventually(lambda: items(broker, "process-instances", {"processInstanceKey": key}), f"instance {key} in the searches")


# --- the page ---------------------------------------------------------------


def open_page(browser, broker, path):
    """Loads Operate afresh at `path` (no messages left from an earlier page)."""
    browser.get("about:blank")
    browser.get(f"{broker.rest_url}/operate/#{path}")


def overlay(browser, element_id, kind):
    """The text of the `kind` badge on element `element_id` of the diagram."""
    found = browser.find_elements(By.CSS_SELECTOR, f'.djs-overlays[data-container-id="{element_id}"] .op-badge-{kind}')
    return found[0].text if found else None


def accept_confirmation(browser):
    alert = eventually(lambda: _alert(browser), "a confirmation")
    alert.accept()


def _alert(browser):
    try:
        return browser.switch_to.alert
    except Exception:
        return None


def choose(browser, label, text):
    select = Select(textbox(browser, label))
    eventually(lambda: any(o.text == text for o in select.options), f"option {text!r} in {label!r}")
    select.select_by_visible_text(text)


def rows(browser, caption):
    """The cell texts of each body row of the table captioned `caption` (none
    while there is no such table)."""
    for table in browser.find_elements(By.TAG_NAME, "table"):
        if table.find_element(By.TAG_NAME, "caption").text == caption:
            return [[td.text for td in tr.find_elements(By.TAG_NAME, "td")] for tr in table.find_elements(By.CSS_SELECTOR, "tbody tr")]
    return []


def row_keys(browser):
    """The instance keys in the processes view's table."""
    return {a.text for a in browser.find_elements(By.CSS_SELECTOR, "table a[href^='#/instances/']")}


# --- the tests --------------------------------------------------------------


def test_the_diagram_shows_tokens_and_an_incident_is_retried_from_the_ui(broker, browser):
    deploy(broker, "op_diagram.bpmn", model("op_diagram", ("pay", "op-diagram-pay"), ("ship", "op-diagram-ship")))
    key = create(broker, "op_diagram", orderId="d-1")
    fail_jobs(broker, "op-diagram-pay", 1, "card declined")
    [incident] = with_incident(broker, key)
    assert incident["jobKey"]

    open_page(browser, broker, f"/instances/{key}")
    eventually(lambda: overlay(browser, "pay", "active") == "1", "one active token on pay")
    eventually(lambda: overlay(browser, "pay", "incident") == "1", "one incident on pay")
    assert overlay(browser, "start", "completed") == "1"
    assert overlay(browser, "ship", "active") is None
    assert browser.find_elements(By.CSS_SELECTOR, '.djs-element.op-incident[data-element-id="pay"]')
    assert browser.find_elements(By.CSS_SELECTOR, '.djs-element.op-taken[data-element-id="f0"]')
    shows(browser, "card declined")

    button(browser, "Retry the incident of Pay (pay)").click()
    eventually(lambda: not items(broker, "incidents", {"processInstanceKey": key, "state": "ACTIVE"}), "the incident resolved")
    eventually(lambda: items(broker, "process-instances", {"processInstanceKey": key, "hasIncident": False, "state": "ACTIVE"}), "active without incident")
    eventually(lambda: overlay(browser, "pay", "incident") is None, "no incident overlay")
    shows(browser, "No open incidents.")
    # The job got its retry back: a worker can take it again.
    jobs = rest(broker, "POST", "/jobs/activation", {"type": "op-diagram-pay", "timeout": 60000, "maxJobsToActivate": 1, "requestTimeout": 5000})["jobs"]
    assert [j["processInstanceKey"] for j in jobs] == [key]
    rest(broker, "POST", f"/jobs/{jobs[0]['jobKey']}/completion", {})
    eventually(lambda: overlay(browser, "ship", "active") == "1", "the token moved on to ship")
    eventually(lambda: overlay(browser, "pay", "completed") == "1", "pay completed")


def test_an_expression_incident_is_repaired_by_adding_a_variable_and_retrying(broker, browser):
    # The job type is an expression over a variable the instance lacks: an
    # incident without a job, resolved once the variable is there.
    deploy(broker, "op_expr.bpmn", model("op_expr", ("work", "=workType")))
    key = create(broker, "op_expr")
    [incident] = with_incident(broker, key)
    assert incident["jobKey"] is None and incident["errorType"] != "JOB_NO_RETRIES"
    open_page(browser, broker, f"/instances/{key}")
    eventually(lambda: overlay(browser, "work", "incident") == "1", "the incident on work")
    textbox(browser, "Variable name").send_keys("workType")
    textbox(browser, "Value (JSON)").send_keys('"op-expr-work"')
    button(browser, "Add variable").click()
    eventually(lambda: items(broker, "variables", {"processInstanceKey": key, "name": "workType"}), "workType set")
    button(browser, "Retry the incident of Work (work)").click()
    eventually(lambda: not items(broker, "incidents", {"processInstanceKey": key, "state": "ACTIVE"}), "the incident resolved")
    jobs = rest(broker, "POST", "/jobs/activation", {"type": "op-expr-work", "timeout": 60000, "maxJobsToActivate": 1, "requestTimeout": 5000})["jobs"]
    assert [j["processInstanceKey"] for j in jobs] == [key]


def test_an_instance_of_a_model_without_a_diagram_is_shown_without_it(broker, browser):
    xml = model("op_plain", ("wait", "op-plain-wait"))
    deploy(broker, "op_plain.bpmn", xml[: xml.index("<bpmndi:BPMNDiagram")] + "</bpmn:definitions>")
    key = create(broker, "op_plain", orderId="p-1")
    visible(broker, key)
    open_page(browser, broker, f"/instances/{key}")
    shows(browser, "The diagram cannot be drawn: no diagram to display.")
    eventually(lambda: ["orderId", "the process instance", '"p-1"', "Edit"] in rows(browser, "Variables of the instance"), "the variables")
    eventually(lambda: [r[:3] for r in rows(browser, "Element instances, each under the one it runs in")] == [["Start (start)", "START_EVENT", "COMPLETED"], ["Wait (wait)", "SERVICE_TASK", "ACTIVE"]], "the element instances")


NESTED = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="t">
  <bpmn:process id="op_nested" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="each"/>
    <bpmn:subProcess id="each" name="Each item">
      <bpmn:multiInstanceLoopCharacteristics>
        <bpmn:extensionElements><zeebe:loopCharacteristics inputCollection="=items" inputElement="item"/></bpmn:extensionElements>
      </bpmn:multiInstanceLoopCharacteristics>
      <bpmn:startEvent id="inner_start"/>
      <bpmn:sequenceFlow id="g1" sourceRef="inner_start" targetRef="pack"/>
      <bpmn:serviceTask id="pack" name="Pack">
        <bpmn:extensionElements><zeebe:taskDefinition type="op-nested-pack"/></bpmn:extensionElements>
      </bpmn:serviceTask>
    </bpmn:subProcess>
    <bpmn:sequenceFlow id="f2" sourceRef="each" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>"""


def test_element_instances_are_a_tree_of_their_scopes(broker, browser):
    deploy(broker, "op_nested.bpmn", NESTED)
    key = create(broker, "op_nested", items=[1, 2])
    visible(broker, key)
    eventually(lambda: len(items(broker, "element-instances", {"processInstanceKey": key, "elementId": "pack"})) == 2, "both packs")
    open_page(browser, broker, f"/instances/{key}")
    caption = "Element instances, each under the one it runs in"

    def tree():
        for table in browser.find_elements(By.TAG_NAME, "table"):
            if table.find_element(By.TAG_NAME, "caption").text == caption:
                return [
                    (span.text, span.get_attribute("style"))
                    for span in table.find_elements(By.CSS_SELECTOR, "tbody tr td:first-child .op-indent")
                ]
        return []

    def nested():
        rows = tree()
        depth = {"0rem": 0, "1.25rem": 1, "2.5rem": 2}
        found = [(text, next((d for k, d in depth.items() if f"padding-left: {k}" in style), None)) for text, style in rows]
        # The start event; the multi-instance body; under it each sub-process
        # with its own start event and task.
        inner = [("Each item (each)", 1), ("inner_start", 2), ("Pack (pack)", 2)]
        return found == [("start", 0), ("Each item (each)", 0)] + inner + inner

    eventually(nested, f"the tree of instance {key}")


def test_variables_are_edited_and_added_from_the_ui(broker, browser):
    deploy(broker, "op_vars.bpmn", model("op_vars", ("wait", "op-vars-wait")))
    key = create(broker, "op_vars", orderId="v-1")
    visible(broker, key)
    open_page(browser, broker, f"/instances/{key}")
    button(browser, "Edit orderId").click()
    value = textbox(browser, "New value of orderId (JSON, in the process instance)")
    value.clear()
    value.send_keys('"v-2"')
    button(browser, "Save").click()
    eventually(
        lambda: [v["value"] for v in items(broker, "variables", {"processInstanceKey": key, "name": "orderId"})] == ['"v-2"'],
        "orderId set to v-2",
    )

    textbox(browser, "Variable name").send_keys("boxes")
    textbox(browser, "Value (JSON)").send_keys('{"count": 3}')
    button(browser, "Add variable").click()
    eventually(
        lambda: [json.loads(v["value"]) for v in items(broker, "variables", {"processInstanceKey": key, "name": "boxes"})] == [{"count": 3}],
        "boxes added",
    )
    shows(browser, '{"count":3}')

    # A value that is not JSON is refused before anything is sent.
    textbox(browser, "Variable name").send_keys("bad")
    textbox(browser, "Value (JSON)").send_keys("not json")
    button(browser, "Add variable").click()
    shows(browser, "must be JSON")
    assert not items(broker, "variables", {"processInstanceKey": key, "name": "bad"})


def test_a_token_is_moved_and_the_instance_canceled_from_the_ui(broker, browser):
    deploy(broker, "op_move.bpmn", model("op_move", ("pick", "op-move-pick"), ("pack", "op-move-pack")))
    key = create(broker, "op_move")
    pick = eventually(lambda: items(broker, "element-instances", {"processInstanceKey": key, "elementId": "pick"}), "pick active")[0]
    open_page(browser, broker, f"/instances/{key}")
    choose(browser, "Element instance to move", f"Pick (pick) {pick['elementInstanceKey']}")
    choose(browser, "Target element", "Pack (pack)")
    button(browser, "Move token").click()
    eventually(lambda: items(broker, "element-instances", {"processInstanceKey": key, "elementId": "pack", "state": "ACTIVE"}), "pack active")
    eventually(lambda: items(broker, "element-instances", {"elementInstanceKey": pick["elementInstanceKey"], "state": "TERMINATED"}), "pick terminated")
    eventually(lambda: overlay(browser, "pack", "active") == "1", "the token on pack")
    eventually(lambda: overlay(browser, "pick", "canceled") == "1", "pick canceled")

    button(browser, "Cancel instance").click()
    accept_confirmation(browser)
    eventually(lambda: items(broker, "process-instances", {"processInstanceKey": key})[0]["state"] == "TERMINATED", "the instance canceled")
    shows(browser, "Canceled")


def test_an_instance_is_migrated_to_another_version_from_the_ui(broker, browser):
    v1 = deploy(broker, "op_migrate.bpmn", model("op_migrate", ("check", "op-migrate-check")))[0]["processDefinition"]
    key = create(broker, "op_migrate")
    v2 = deploy(broker, "op_migrate.bpmn", model("op_migrate", ("review", "op-migrate-check"), ("bill", "op-migrate-bill")))[0]["processDefinition"]
    assert v2["processDefinitionVersion"] == 2
    eventually(lambda: items(broker, "element-instances", {"processInstanceKey": key, "elementId": "check"}), "check active")
    eventually(lambda: items(broker, "process-definitions", {"processDefinitionKey": v2["processDefinitionKey"]}), "version 2 searchable")
    open_page(browser, broker, f"/instances/{key}")
    choose(browser, "Target process version", "Version 2")
    # Version 2 has no element "check": the reader picks where its token goes.
    assert Select(textbox(browser, "Map Check (check) to")).first_selected_option.text == "Choose a target element"
    choose(browser, "Map Check (check) to", "Review (review)")
    button(browser, "Migrate").click()
    eventually(
        lambda: items(broker, "process-instances", {"processInstanceKey": key})[0]["processDefinitionKey"] == v2["processDefinitionKey"],
        "the instance on version 2",
    )
    assert v1["processDefinitionKey"] != v2["processDefinitionKey"]
    eventually(lambda: overlay(browser, "review", "active") == "1", "version 2 drawn, the token on review")
    assert [e["elementId"] for e in items(broker, "element-instances", {"processInstanceKey": key, "state": "ACTIVE"})] == ["review"]


def test_the_processes_view_filters_by_variable_and_incidents_and_links_them(broker, browser):
    deploy(broker, "op_filter.bpmn", model("op_filter", ("work", "op-filter-work")))
    ann = create(broker, "op_filter", customer="ann")
    bob = create(broker, "op_filter", customer="bob")
    bob_failing = create(broker, "op_filter", customer="bob")
    fail_jobs(broker, "op-filter-work", 3, "filter boom")
    eventually(lambda: len(items(broker, "process-instances", {"processDefinitionId": "op_filter", "hasIncident": True})) == 3, "three incidents")
    # Resolved and retried again, two of them go back to work: only bob_failing keeps its incident.
    for i in items(broker, "incidents", {"processDefinitionId": "op_filter", "state": "ACTIVE"}):
        if i["processInstanceKey"] != bob_failing:
            rest(broker, "PATCH", f"/jobs/{i['jobKey']}", {"changeset": {"retries": 1}})
            rest(broker, "POST", f"/incidents/{i['incidentKey']}/resolution", {})
    eventually(lambda: len(items(broker, "process-instances", {"processDefinitionId": "op_filter", "hasIncident": True})) == 1, "one incident left")

    open_page(browser, broker, "/instances")
    choose(browser, "Process", "op_filter")
    button(browser, "Apply filters").click()
    eventually(lambda: row_keys(browser) == {ann, bob, bob_failing}, "all three instances")
    textbox(browser, "Variable name").send_keys("customer")
    textbox(browser, "Variable value (JSON)").send_keys('"bob"')
    button(browser, "Apply filters").click()
    eventually(lambda: row_keys(browser) == {bob, bob_failing}, "bob's two instances")
    assert "process=op_filter" in browser.current_url and "variable=customer" in browser.current_url
    textbox(browser, "With incidents").click()
    button(browser, "Apply filters").click()
    eventually(lambda: row_keys(browser) == {bob_failing}, "bob's instance with an incident")
    assert "incidents=true" in browser.current_url

    # The view is linkable: the same hash shows the same rows.
    url = browser.current_url
    browser.get("about:blank")
    browser.get(url)
    eventually(lambda: row_keys(browser) == {bob_failing}, "the linked view")
    assert textbox(browser, "Variable value (JSON)").get_attribute("value") == '"bob"'
    open_page(browser, broker, "/instances?process=op_filter&state=ACTIVE&incidents=false&variable=customer&value=%22ann%22")
    eventually(lambda: row_keys(browser) == {ann}, "ann's instance")
    open_page(browser, broker, "/instances?process=op_filter&from=2999-01-01T00:00")
    shows(browser, "0 instances match.")
    open_page(browser, broker, "/instances?process=op_filter&from=2000-01-01T00:00&to=2999-01-01T00:00")
    eventually(lambda: row_keys(browser) == {ann, bob, bob_failing}, "all three started in this millennium")
    open_page(browser, broker, "/instances?process=op_filter&version=x")
    shows(browser, "The version must be a whole number")


def test_batch_commands_retry_and_cancel_everything_the_filters_match(broker, browser):
    deploy(broker, "op_batch.bpmn", model("op_batch", ("work", "op-batch-work")))
    deploy(broker, "op_other.bpmn", model("op_other", ("work", "op-other-work")))
    keys = {create(broker, "op_batch", n=n) for n in range(52)}
    other = create(broker, "op_other")
    fail_jobs(broker, "op-batch-work", 2, "batch boom")
    eventually(lambda: len(items(broker, "incidents", {"processDefinitionId": "op_batch", "state": "ACTIVE"})) == 2, "two incidents")
    visible(broker, other)

    open_page(browser, broker, "/instances?process=op_batch&incidents=true")
    eventually(lambda: len(row_keys(browser)) == 2, "the two instances with incidents")
    button(browser, "Retry all matching").click()
    accept_confirmation(browser)
    shows(browser, "Retried 2 of 2 incident(s).")
    eventually(lambda: not items(broker, "incidents", {"processDefinitionId": "op_batch", "state": "ACTIVE"}), "no incidents left")

    # The table shows the newest 50, and more on request; the batch takes all.
    open_page(browser, broker, "/instances?process=op_batch")
    shows(browser, "52 instances match.")
    eventually(lambda: len(row_keys(browser)) == 50, "the newest 50")
    button(browser, "Show 50 more").click()
    eventually(lambda: row_keys(browser) == keys, "all 52 instances")
    button(browser, "Cancel all matching").click()
    accept_confirmation(browser)
    shows(browser, "Canceled 52 of 52 instance(s).")
    eventually(lambda: {i["state"] for i in items(broker, "process-instances", {"processDefinitionId": "op_batch"})} == {"TERMINATED"}, "all canceled")
    assert items(broker, "process-instances", {"processInstanceKey": other})[0]["state"] == "ACTIVE"


def test_the_dashboard_groups_incidents_by_error(broker, browser):
    deploy(broker, "op_dash.bpmn", model("op_dash", ("work", "op-dash-work"), name="Dashboard process"))
    keys = {create(broker, "op_dash") for _ in range(3)}
    fail_jobs(broker, "op-dash-work", 2, "dashboard boom")
    eventually(lambda: len(items(broker, "incidents", {"errorMessage": "dashboard boom"})) == 2, "two incidents")
    open_page(browser, broker, "/")

    def group():
        return [r for r in rows(browser, "Open incidents by error") if r[1] == "dashboard boom"]

    assert eventually(lambda: (g := group()) and g[0][2] == "2" and g, "the group") == [["JOB_NO_RETRIES", "dashboard boom", "2", "2"]]
    eventually(lambda: ["Dashboard process", "v1", "3", "2"] in rows(browser, "Instances by process"), "the process's counts")
    link(browser, "dashboard boom").click()
    with_error = {i["processInstanceKey"] for i in items(broker, "incidents", {"errorMessage": "dashboard boom"})}
    eventually(lambda: row_keys(browser) == with_error, "the instances with that error")
    assert with_error < keys


def test_decision_instances_show_their_inputs_matched_rules_and_process_instance(broker, browser):
    deploy(broker, "op.dmn", DMN)
    deploy(broker, "op_rules.bpmn", model("op_rules", ("size", "decision:op_size"), ("wait", "op-rules-wait")))
    # A partition the deployment has not reached yet answers 404 for a moment.
    key = eventually(lambda: create(broker, "op_rules", weight=12), "an instance of op_rules")
    [evaluated] = eventually(lambda: items(broker, "decision-instances", {"processInstanceKey": key}), "the decision evaluated")
    open_page(browser, broker, "/decisions")
    eventually(lambda: [key] in [r[4:] for r in rows(browser, "Decision instances")], "the evaluation with its process instance")
    link(browser, "Parcel size").click()
    eventually(lambda: browser.current_url.endswith(f"#/decisions/{evaluated['decisionEvaluationInstanceKey']}"), "the decision instance's page")
    shows(browser, "Parcel size (v1)")
    assert eventually(lambda: rows(browser, "Evaluated inputs"), "the inputs") == [["Weight", "12"]]
    assert rows(browser, "Matched rules and their outputs") == [["1: heavy", "size", '"large"']]
    link(browser, key).click()
    shows(browser, f"Process instance {key}")


def test_call_activities_lead_to_the_called_instance_and_back(broker, browser):
    deploy(broker, "op_child.bpmn", model("op_child", ("work", "op-child-work"), name="Child"))
    deploy(broker, "op_parent.bpmn", model("op_parent", ("call", "call:op_child"), name="Parent"))
    parent = create(broker, "op_parent")
    [child] = eventually(lambda: items(broker, "process-instances", {"parentProcessInstanceKey": parent}), "the called instance")
    open_page(browser, broker, f"/instances/{parent}")
    eventually(lambda: overlay(browser, "call", "active") == "1", "the token on the call activity")
    link(browser, child["processInstanceKey"]).click()
    shows(browser, f"Process instance {child['processInstanceKey']}")
    eventually(lambda: overlay(browser, "work", "active") == "1", "the token in the called instance")
    link(browser, f"Parent {parent}").click()
    shows(browser, f"Process instance {parent}")


def test_every_page_names_its_controls_and_fits_a_phone(broker, browser):
    deploy(broker, "op_a11y.bpmn", model("op_a11y", ("work", "op-a11y-work")))
    key = create(broker, "op_a11y", orderId="a-1")
    fail_jobs(broker, "op-a11y-work", 1, "a11y boom")
    with_incident(broker, key)
    deploy(broker, "op.dmn", DMN)
    evaluation = eventually(
        lambda: rest(broker, "POST", "/decision-definitions/evaluation", {"decisionDefinitionId": "op_size", "variables": {"weight": 1}}),
        "an evaluation",
    )
    pages = {
        "/": "Open incidents by error",
        "/instances?process=op_a11y": key,
        f"/instances/{key}": "a11y boom",
        "/decisions": "Decision instances",
        f"/decisions/{evaluation['decisionEvaluationKey']}-1": "Matched rules",
    }
    try:
        for size in (DESKTOP, PHONE):
            browser.set_window_size(*size)
            for path, text in pages.items():
                open_page(browser, broker, path)
                shows(browser, text)
                assert_accessible(browser)
    finally:
        browser.set_window_size(*DESKTOP)
