// Migrating an instance to another version of its process: the reader
// picks the target definition and, for every element with an active token,
// the target element (by default the one with the same id); sent as one
// POST /v2/process-instances/{key}/migration.
import { api, searchAll } from "../common/api.js";
import { field, h, mount } from "../common/dom.js";
import { act, report } from "../common/shell.js";
import { elementLabel, parseModel } from "./model.js";
import { liveOptions } from "./options.js";
import { whenChanged } from "./panel.js";

export function migratePanel(processInstanceKey) {
  const target = h("select", { required: true });
  const showTargets = liveOptions(target, "Choose the target version");
  const none = h("p", { class: "empty" }, "No other version of this process is deployed.");
  const mappings = h("div", { class: "filters" });
  /** The reader's choices: source element id → target element id. */
  const chosen = new Map();
  const targetModels = new Map();
  let sources = [];
  let sourceModel;

  const showMappings = whenChanged(async ({ targetKey, ids }) => {
    mount(mappings);
    if (!targetKey) return;
    if (!targetModels.has(targetKey)) targetModels.set(targetKey, parseModel(await api("GET", `/process-definitions/${targetKey}/xml`)));
    const model = targetModels.get(targetKey);
    mount(
      mappings,
      ids.map((id) => {
        const preferred = chosen.get(id) || id;
        const select = h(
          "select",
          { required: true, onchange: () => chosen.set(id, select.value) },
          model.nodes.has(preferred) ? null : h("option", { value: "" }, "Choose a target element"),
          [...model.nodes.values()].map((n) => h("option", { value: n.id, selected: n.id === preferred }, elementLabel(model, n.id))),
        );
        chosen.set(id, select.value);
        return field(`Map ${elementLabel(sourceModel, id)} to`, select);
      }),
    );
  });

  target.addEventListener("change", () => Promise.resolve(showMappings({ targetKey: target.value, ids: sources })).catch(report));
  const el = h(
    "form",
    {
      "aria-label": "Migrate",
      onsubmit: (event) => {
        event.preventDefault();
        act(
          event.submitter,
          () =>
            api("POST", `/process-instances/${processInstanceKey}/migration`, {
              targetProcessDefinitionKey: target.value,
              mappingInstructions: sources.map((id) => ({ sourceElementId: id, targetElementId: chosen.get(id) })),
            }),
          "Instance migrated.",
        );
      },
    },
    h("div", { class: "filters" }, field("Target process version", target)),
    mappings,
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Migrate")),
  );

  async function update({ instance, stats, model }) {
    const definitions = await searchAll("process-definitions", { processDefinitionId: instance.processDefinitionId }, { sort: [{ field: "version", order: "DESC" }], max: 200 });
    const targets = definitions.filter((d) => d.processDefinitionKey !== instance.processDefinitionKey);
    showTargets(targets.map((d) => [d.processDefinitionKey, `Version ${d.version}`]));
    el.hidden = targets.length === 0;
    none.hidden = targets.length > 0;
    sourceModel = model;
    sources = stats.filter((s) => s.active > 0 && model.nodes.has(s.elementId)).map((s) => s.elementId);
    await showMappings({ targetKey: target.value, ids: sources });
  }
  return { el: h("div", {}, none, el), update };
}
