// The element instances of an instance, in the order they started, each
// indented by how deep its element sits in sub-processes (the API gives no
// flow scope key, so the nesting is the model's), with its state and, for
// a call activity, the instance it called.
import { badge, h, mount, table, when } from "../common/dom.js";
import { link } from "../common/shell.js";
import { elementLabel } from "./model.js";
import { whenChanged } from "./panel.js";

export function elementsPanel() {
  const el = h("div");
  const show = whenChanged((rows) =>
    mount(
      el,
      table(
        "Element instances, in the order they started",
        ["Element", "Type", "State", "Started", "Ended", "Key", "Called instance"],
        rows.map((r) => [
          h("span", { class: "op-indent", style: `padding-left: ${r.depth * 1.25}rem` }, r.label),
          r.type,
          r.hasIncident ? badge("Incident", "incident") : badge(r.state, r.state),
          when(r.startDate),
          when(r.endDate),
          h("code", {}, r.elementInstanceKey),
          r.called ? link(`/instances/${r.called}`, r.called) : "—",
        ]),
        "No element instance yet.",
      ),
    ),
  );
  const update = ({ elements, called, model }) => {
    const calledBy = new Map(called.map((c) => [c.parentElementInstanceKey, c.processInstanceKey]));
    show(
      elements.map((e) => ({
        ...e,
        label: elementLabel(model, e.elementId),
        depth: model.nodes.get(e.elementId)?.depth || 0,
        called: calledBy.get(e.elementInstanceKey),
      })),
    );
  };
  return { el, update };
}
