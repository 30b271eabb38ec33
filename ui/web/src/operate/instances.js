// The processes view (#/instances?...): the process instances matching the
// filters of the hash query (see query.js), newest first, with the batch
// commands over everything the filters match.
import { search, searchAll } from "../common/api.js";
import { badge, field, h, mount, table, when } from "../common/dom.js";
import { go, link, live, report } from "../common/shell.js";
import { batchActions } from "./batch.js";
import { section, stateBadge, whenChanged } from "./panel.js";
import { instanceFilter, instancesPath, readQuery, STATES } from "./query.js";

/** How many more instances the table shows at a time. */
const PAGE = 50;

export async function instances(main) {
  const params = readQuery();
  const definitions = await searchAll("process-definitions", {}, { max: 1000 });
  const processIds = new Set(definitions.map((d) => d.processDefinitionId));
  if (params.process) processIds.add(params.process);
  const form = filterForm(params, [...processIds].sort());
  const results = h("div");
  mount(main, h("h1", {}, "Processes"), form);
  try {
    await instanceFilter(params);
  } catch (e) {
    main.append(h("p", { role: "alert", class: "error" }, e.message));
    return;
  }
  main.append(section("Batch operations", batchActions(params)), results);
  let shown = PAGE;
  const showMore = () => {
    shown += PAGE;
    refresh().catch(report);
  };
  const show = whenChanged(({ items, total }) =>
    mount(
      results,
      h("p", { role: "status" }, total === 1 ? "1 instance matches." : `${total} instances match.`),
      table(
        "Process instances",
        ["Instance", "Process", "Version", "State", "Started", "Ended", "Incident"],
        items.map((i) => [
          link(`/instances/${i.processInstanceKey}`, i.processInstanceKey),
          i.processDefinitionName || i.processDefinitionId,
          i.processDefinitionVersion,
          stateBadge(i.state),
          when(i.startDate),
          when(i.endDate),
          i.hasIncident ? badge("Incident", "incident") : "—",
        ]),
        "No process instance matches.",
      ),
      items.length < total
        ? h(
            "div",
            { class: "actions" },
            h("p", { class: "empty" }, `The newest ${items.length} of ${total} matching instances are shown.`),
            h("button", { type: "button", class: "secondary", onclick: showMore }, `Show ${PAGE} more`),
          )
        : null,
    ),
  );
  const refresh = async () => {
    const result = await search("process-instances", await instanceFilter(params), {
      sort: [{ field: "startDate", order: "DESC" }],
      limit: shown,
    });
    show({ items: result.items, total: result.page.totalItems });
  };
  await live(refresh);
}

/** The filters, filled from `params`; applying them changes the hash. */
function filterForm(params, processIds) {
  const choice = (value, label) => h("option", { value, selected: value === (params.state || "") }, label);
  const controls = {
    process: h("select", {}, h("option", { value: "" }, "All processes"), processIds.map((id) => h("option", { value: id, selected: id === params.process }, id))),
    version: h("input", { inputmode: "numeric", size: 4, value: params.version || "" }),
    state: h("select", {}, choice("", "Any state"), STATES.map(([value, label]) => choice(value, label))),
    from: h("input", { type: "datetime-local", value: params.from || "" }),
    to: h("input", { type: "datetime-local", value: params.to || "" }),
    variable: h("input", { value: params.variable || "" }),
    value: h("input", { value: params.value || "", placeholder: '"text" or 42' }),
  };
  const incidents = h("input", { type: "checkbox", checked: params.incidents === "true" });
  // The incident error of the dashboard's groups is kept, and shown.
  const error = { errorType: params.errorType, errorMessage: params.errorMessage };
  return h(
    "form",
    {
      class: "filters",
      "aria-label": "Filters",
      onsubmit: (event) => {
        event.preventDefault();
        const values = Object.fromEntries(Object.entries(controls).map(([name, control]) => [name, control.value.trim()]));
        go(instancesPath({ ...values, incidents: incidents.checked ? "true" : "", ...error }));
      },
    },
    field("Process", controls.process),
    field("Version", controls.version),
    field("State", controls.state),
    h("div", { class: "field op-check" }, h("label", {}, incidents, " With incidents")),
    field("Started from", controls.from),
    field("Started before", controls.to),
    field("Variable name", controls.variable),
    field("Variable value (JSON)", controls.value),
    error.errorType || error.errorMessage
      ? h("p", { class: "op-note" }, `Only instances with the open incident ${error.errorType || ""}: ${error.errorMessage || ""}`)
      : null,
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Apply filters"), h("a", { href: "#/instances" }, "Clear filters")),
  );
}
