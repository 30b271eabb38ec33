// An instance's detail page (#/instances/<key>): where it stands (summary,
// call hierarchy, the diagram with its tokens, element instances,
// variables, incidents) and repairing it (retry, edit variables, cancel,
// move a token, migrate). Everything is re-read every two seconds.
import { api, searchAll } from "../common/api.js";
import { badge, h, mount, when } from "../common/dom.js";
import { act, link, live } from "../common/shell.js";
import { diagram } from "./diagram.js";
import { elementsPanel } from "./elements.js";
import { incidentsPanel } from "./incidents.js";
import { migratePanel } from "./migrate.js";
import { parseModel } from "./model.js";
import { modifyPanel } from "./modify.js";
import { confirmed, section, stateBadge, whenChanged } from "./panel.js";
import { instancesPath } from "./query.js";
import { variablesPanel } from "./variables.js";

export async function instance(main, key) {
  const first = await api("GET", `/process-instances/${key}`);
  const hierarchy = await api("GET", `/process-instances/${key}/call-hierarchy`);
  const summary = h("div");
  const canvas = h("div", { class: "diagram op-diagram" });
  const panels = {
    incidents: incidentsPanel(),
    elements: elementsPanel(),
    variables: variablesPanel(key),
    modify: modifyPanel(key),
    migrate: migratePanel(key),
  };
  mount(
    main,
    callHierarchy(hierarchy, first),
    h("h1", {}, `Process instance ${key}`),
    summary,
    section("Diagram", canvas),
    section("Incidents", panels.incidents.el),
    section("Element instances", panels.elements.el),
    section("Variables", panels.variables.el),
    section("Move a token", panels.modify.el),
    section("Migrate to another version", panels.migrate.el),
  );
  // Drawn once the page is laid out, so that the diagram fits its box.
  const view = diagram(canvas);

  const showSummary = whenChanged((i) => mount(summary, summaryOf(i)));
  const showDiagram = whenChanged(({ stats }) => view.show(stats, model));
  let model;
  let drawnKey;
  await live(async () => {
    const instance = await api("GET", `/process-instances/${key}`);
    if (instance.processDefinitionKey !== drawnKey) {
      const xml = await api("GET", `/process-definitions/${instance.processDefinitionKey}/xml`);
      model = parseModel(xml);
      await view.load(xml);
      drawnKey = instance.processDefinitionKey;
    }
    const [stats, elements, incidents, variables, called] = await Promise.all([
      api("GET", `/process-instances/${key}/statistics/element-instances`),
      searchAll("element-instances", { processInstanceKey: key }, { sort: [{ field: "startDate" }], max: 2000 }),
      searchAll("incidents", { processInstanceKey: key, state: "ACTIVE" }, { max: 1000 }),
      searchAll("variables", { processInstanceKey: key }, { sort: [{ field: "name" }], max: 2000 }),
      searchAll("process-instances", { parentProcessInstanceKey: key }, { max: 1000 }),
    ]);
    showSummary(instance);
    showDiagram({ stats: stats.items, drawnKey });
    const state = { instance, model, stats: stats.items, elements, incidents, variables, called };
    for (const panel of Object.values(panels)) await panel.update(state);
  });
}

/** "Called by" links from the root instance down to the direct parent. */
function callHierarchy(hierarchy, instance) {
  if (hierarchy.length === 0) return null;
  return h(
    "nav",
    { "aria-label": "Call hierarchy", class: "op-breadcrumb" },
    hierarchy.map((p) => [link(`/instances/${p.processInstanceKey}`, `${p.processDefinitionName} ${p.processInstanceKey}`), " › "]),
    h("span", { "aria-current": "page" }, `${instance.processDefinitionName || instance.processDefinitionId} ${instance.processInstanceKey}`),
  );
}

function summaryOf(i) {
  const cancel = h(
    "button",
    {
      type: "button",
      class: "danger",
      onclick: () => {
        if (!confirmed(`Cancel process instance ${i.processInstanceKey}? This cannot be undone.`)) return;
        act(cancel, () => api("POST", `/process-instances/${i.processInstanceKey}/cancellation`, {}), "Cancellation sent.");
      },
    },
    "Cancel instance",
  );
  const item = (term, ...value) => [h("dt", {}, term), h("dd", {}, ...value)];
  return h(
    "div",
    { class: "panel" },
    h(
      "dl",
      { class: "op-summary" },
      item("Process", link(instancesPath({ process: i.processDefinitionId }), i.processDefinitionName || i.processDefinitionId)),
      item("Version", String(i.processDefinitionVersion)),
      item("State", stateBadge(i.state), " ", i.hasIncident ? badge("Incident", "incident") : null),
      item("Started", when(i.startDate)),
      item("Ended", when(i.endDate)),
      i.parentProcessInstanceKey ? item("Called by", link(`/instances/${i.parentProcessInstanceKey}`, i.parentProcessInstanceKey)) : null,
    ),
    i.state === "ACTIVE" ? h("div", { class: "actions" }, cancel) : null,
  );
}
