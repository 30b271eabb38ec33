// The dashboard: per process (all its versions), its running instances and
// those with incidents; and the open incidents grouped by error (type and message),
// each group leading to the processes view filtered to its instances.
import { count, searchAll } from "../common/api.js";
import { h, mount, table } from "../common/dom.js";
import { link, live } from "../common/shell.js";
import { section, whenChanged } from "./panel.js";
import { instancesPath } from "./query.js";

export async function dashboard(main) {
  const processes = h("div");
  const errors = h("div");
  mount(main, h("h1", {}, "Dashboard"), section("Processes", processes), section("Incidents by error", errors));
  const showProcesses = whenChanged((rows) =>
    mount(
      processes,
      table(
        "Instances by process",
        ["Process", "Latest version", "Running", "With incidents"],
        rows.map(([d, running, incidents]) => [
          link(instancesPath({ process: d.processDefinitionId, state: "ACTIVE" }), d.name || d.processDefinitionId),
          `v${d.version}`,
          running,
          incidents,
        ]),
        "No process is deployed.",
      ),
    ),
  );
  const showErrors = whenChanged((groups) =>
    mount(
      errors,
      table(
        "Open incidents by error",
        ["Error type", "Message", "Incidents", "Instances"],
        groups.map((g) => [
          g.errorType,
          link(instancesPath({ errorType: g.errorType, errorMessage: g.errorMessage }), g.errorMessage || "(no message)"),
          g.incidents,
          g.instances,
        ]),
        "No open incidents.",
      ),
    ),
  );
  await live(async () => {
    const definitions = await searchAll("process-definitions", {}, { max: 5000, sort: [{ field: "processDefinitionId" }, { field: "version" }] });
    // The latest version of each process, which names it.
    const latest = [...new Map(definitions.map((d) => [d.processDefinitionId, d])).values()];
    const rows = await Promise.all(
      latest.map(async (d) => [
        d,
        await count("process-instances", { processDefinitionId: d.processDefinitionId, state: "ACTIVE" }),
        await count("process-instances", { processDefinitionId: d.processDefinitionId, hasIncident: true, state: "ACTIVE" }),
      ]),
    );
    showProcesses(rows);
    showErrors(groupByError(await searchAll("incidents", { state: "ACTIVE" }, { max: 10000 })));
  });
}

/** Incidents grouped by error type and message, the largest group first. */
function groupByError(incidents) {
  const groups = new Map();
  for (const i of incidents) {
    const id = JSON.stringify([i.errorType, i.errorMessage]);
    const group = groups.get(id) || { errorType: i.errorType, errorMessage: i.errorMessage, incidents: 0, keys: new Set() };
    group.incidents += 1;
    group.keys.add(i.processInstanceKey);
    groups.set(id, group);
  }
  return [...groups.values()]
    .map(({ keys, ...g }) => ({ ...g, instances: keys.size }))
    .sort((a, b) => b.incidents - a.incidents || a.errorType.localeCompare(b.errorType));
}
