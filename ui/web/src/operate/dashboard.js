// The dashboard: per process, its running instances and those with incidents.
import { count, searchAll } from "../common/api.js";
import { h, mount, table } from "../common/dom.js";
import { live } from "../common/shell.js";

export async function dashboard(main) {
  const body = h("div");
  mount(main, h("h1", {}, "Dashboard"), body);
  await live(async () => {
    const definitions = await searchAll("process-definitions", {}, { max: 500 });
    const rows = await Promise.all(
      definitions.map(async (d) => [
        `${d.name || d.processDefinitionId} (v${d.version})`,
        await count("process-instances", { processDefinitionKey: d.processDefinitionKey, state: "ACTIVE" }),
        await count("process-instances", { processDefinitionKey: d.processDefinitionKey, hasIncident: true, state: "ACTIVE" }),
      ]),
    );
    mount(body, table("Instances by process", ["Process", "Running", "With incidents"], rows, "No process is deployed."));
  });
}
