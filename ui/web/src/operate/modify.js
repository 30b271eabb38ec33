// Moving a token (process instance modification): an active element
// instance is terminated and the target element activated, in one
// POST /v2/process-instances/{key}/modification.
import { api } from "../common/api.js";
import { field, h } from "../common/dom.js";
import { act } from "../common/shell.js";
import { elementLabel } from "./model.js";
import { liveOptions } from "./options.js";

export function modifyPanel(processInstanceKey) {
  const from = h("select", { required: true });
  const to = h("select", { required: true });
  const showFrom = liveOptions(from, "Choose an active element");
  const showTo = liveOptions(to, "Choose the target element");
  const el = h(
    "form",
    {
      class: "filters",
      "aria-label": "Move a token",
      onsubmit: (event) => {
        event.preventDefault();
        act(
          event.submitter,
          () =>
            api("POST", `/process-instances/${processInstanceKey}/modification`, {
              terminateInstructions: [{ elementInstanceKey: from.value }],
              activateInstructions: [{ elementId: to.value }],
            }),
          `Token moved to ${to.value}.`,
        );
      },
    },
    field("Element instance to move", from),
    field("Target element", to),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Move token")),
  );
  function update({ elements, model }) {
    showFrom(
      elements
        .filter((e) => e.state === "ACTIVE")
        .map((e) => [e.elementInstanceKey, `${elementLabel(model, e.elementId)} ${e.elementInstanceKey}`]),
    );
    showTo([...model.nodes.values()].filter((n) => n.kind !== "startEvent" && n.kind !== "boundaryEvent").map((n) => [n.id, elementLabel(model, n.id)]));
  }
  return { el, update };
}
