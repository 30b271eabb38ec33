// The element instances of an instance as a tree: each under the element
// instance it runs in (a sub-process, a multi-instance body...), found with
// the search's elementInstanceScopeKey filter, siblings in the order they
// started; with its state and, for a call activity, the instance it called.
import { searchAll } from "../common/api.js";
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
        "Element instances, each under the one it runs in",
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
  const update = async ({ instance, elements, called, model }) => {
    const calledBy = new Map(called.map((c) => [c.parentElementInstanceKey, c.processInstanceKey]));
    const rows = (await tree(instance.processInstanceKey, elements)).map(({ element, depth }) => ({
      ...element,
      label: elementLabel(model, element.elementId),
      depth,
      called: calledBy.get(element.elementInstanceKey),
    }));
    show(rows);
  };
  return { el, update };
}

/** Element instance types that hold others. */
const SCOPES = new Set(["SUB_PROCESS", "EVENT_SUB_PROCESS", "AD_HOC_SUB_PROCESS", "MULTI_INSTANCE_BODY"]);

/**
 * `elements` (in start order) depth first from the instance `root`, as
 * {element, depth}: the children of each scope are asked of the search.
 * An element whose scope is not among them (it has not been written yet)
 * is listed at the top level.
 */
async function tree(root, elements) {
  const children = new Map([[root, []]]);
  const scopes = elements.filter((e) => SCOPES.has(e.type));
  const inScope = await Promise.all(
    scopes.map((s) => searchAll("element-instances", { elementInstanceScopeKey: s.elementInstanceKey }, { max: 2000 })),
  );
  const parent = new Map();
  scopes.forEach((s, i) => inScope[i].forEach((child) => parent.set(child.elementInstanceKey, s.elementInstanceKey)));
  for (const e of elements) {
    if (e.type === "PROCESS") continue;
    const scope = parent.get(e.elementInstanceKey) || root;
    if (!children.has(scope)) children.set(scope, []);
    children.get(scope).push(e);
  }
  const rows = [];
  const visit = (key, depth) => {
    for (const e of children.get(key) || []) {
      rows.push({ element: e, depth });
      visit(e.elementInstanceKey, depth + 1);
    }
  };
  visit(root, 0);
  return rows;
}
