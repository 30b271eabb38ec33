"""Takes the screenshots of Operate and Tasklist in ui/screenshots/ that
the README shows: a `waggle dev` broker with an order process (a service
task, an approval user task with a Camunda form), a few instances, one with
an incident; Operate's instance detail and Tasklist's task with its form,
at 1280×1100 (a little taller than the 1280×800 the tests check, to show whole panels).

    WAGGLE_BIN=target/debug/waggle .venv/bin/python tests/ui/readme_screenshots.py
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from browser import chromium, deploy, eventually, rest, shows  # noqa: E402
from conftest import REPO, running_broker  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

OUT = os.path.join(REPO, "ui", "screenshots")

FORM = {
    "id": "approve_order",
    "type": "default",
    "components": [
        {"type": "textfield", "key": "customer", "label": "Customer", "disabled": True},
        {"type": "number", "key": "amount", "label": "Amount (EUR)", "disabled": True},
        {"type": "checkbox", "key": "approved", "label": "Approve this order"},
        {"type": "textarea", "key": "comment", "label": "Comment"},
    ],
}

PROCESS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" xmlns:dc="http://www.omg.org/spec/DD/20100524/DC"
    xmlns:di="http://www.omg.org/spec/DD/20100524/DI"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="t">
  <bpmn:process id="order" name="Order" isExecutable="true">
    <bpmn:startEvent id="start" name="Order received"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="check"/>
    <bpmn:serviceTask id="check" name="Check stock">
      <bpmn:extensionElements><zeebe:taskDefinition type="check-stock"/></bpmn:extensionElements>
    </bpmn:serviceTask>
    <bpmn:sequenceFlow id="f2" sourceRef="check" targetRef="approve"/>
    <bpmn:userTask id="approve" name="Approve order">
      <bpmn:extensionElements><zeebe:userTask/><zeebe:formDefinition formId="approve_order"/></bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="f3" sourceRef="approve" targetRef="end"/>
    <bpmn:endEvent id="end" name="Order done"/>
  </bpmn:process>
  <bpmndi:BPMNDiagram id="diagram">
    <bpmndi:BPMNPlane id="plane" bpmnElement="order">
      <bpmndi:BPMNShape id="start_di" bpmnElement="start"><dc:Bounds x="152" y="102" width="36" height="36"/></bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="check_di" bpmnElement="check"><dc:Bounds x="240" y="80" width="100" height="80"/></bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="approve_di" bpmnElement="approve"><dc:Bounds x="400" y="80" width="100" height="80"/></bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="end_di" bpmnElement="end"><dc:Bounds x="562" y="102" width="36" height="36"/></bpmndi:BPMNShape>
      <bpmndi:BPMNEdge id="f1_di" bpmnElement="f1"><di:waypoint x="188" y="120"/><di:waypoint x="240" y="120"/></bpmndi:BPMNEdge>
      <bpmndi:BPMNEdge id="f2_di" bpmnElement="f2"><di:waypoint x="340" y="120"/><di:waypoint x="400" y="120"/></bpmndi:BPMNEdge>
      <bpmndi:BPMNEdge id="f3_di" bpmnElement="f3"><di:waypoint x="500" y="120"/><di:waypoint x="562" y="120"/></bpmndi:BPMNEdge>
    </bpmndi:BPMNPlane>
  </bpmndi:BPMNDiagram>
</bpmn:definitions>"""


def main():
    os.makedirs(OUT, exist_ok=True)
    with running_broker(prefix="waggle-ui-screenshots-") as broker:
        deploy(broker, "approve_order.form", json.dumps(FORM))
        [item] = deploy(broker, "order.bpmn", PROCESS)
        definition = item["processDefinition"]["processDefinitionKey"]
        customers = [("Ada Ltd", 1200), ("Bell GmbH", 80), ("Cole SA", 640), ("Dunn plc", 15000)]
        instances = [
            rest(broker, "POST", "/process-instances", {"processDefinitionKey": definition, "variables": {"customer": c, "amount": a}})[
                "processInstanceKey"
            ]
            for c, a in customers
        ]
        jobs = rest(broker, "POST", "/jobs/activation", {"type": "check-stock", "maxJobsToActivate": 10, "timeout": 60000, "worker": "stock"})["jobs"]
        by_instance = {j["processInstanceKey"]: j["jobKey"] for j in jobs}
        for key in instances[:2]:
            rest(broker, "POST", f"/jobs/{by_instance[key]}/completion", {"variables": {"inStock": True}})
        rest(broker, "POST", f"/jobs/{by_instance[instances[3]]}/failure", {"retries": 0, "errorMessage": "stock service answered 503"})
        eventually(lambda: rest(broker, "POST", "/user-tasks/search", {"filter": {"state": "CREATED"}})["page"]["totalItems"] == 2, "two tasks")
        eventually(lambda: rest(broker, "POST", "/incidents/search", {"filter": {"state": "ACTIVE"}})["page"]["totalItems"] == 1, "the incident")
        browser = chromium(window=(1280, 1100))
        try:
            browser.get(f"{broker.rest_url}/operate/#/instances/{instances[0]}")
            eventually(lambda: browser.find_elements(By.CSS_SELECTOR, ".djs-container svg"), "the diagram")
            shows(browser, "customer")
            browser.save_screenshot(os.path.join(OUT, "operate.png"))
            task = rest(broker, "POST", "/user-tasks/search", {"filter": {"processInstanceKey": instances[0]}})["items"][0]
            rest(broker, "POST", f"/user-tasks/{task['userTaskKey']}/assignment", {"assignee": "anonymous"})
            browser.get(f"{broker.rest_url}/tasklist/#/tasks/{task['userTaskKey']}")
            eventually(lambda: browser.find_elements(By.CSS_SELECTOR, ".fjs-container"), "the form")
            shows(browser, "Approve this order")
            browser.save_screenshot(os.path.join(OUT, "tasklist.png"))
        finally:
            browser.quit()
    print(f"screenshots in {OUT}")


if __name__ == "__main__":
    main()
