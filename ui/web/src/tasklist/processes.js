// Starting processes: the latest version of every deployed process
// (#/processes), and one process's start page (#/processes/<key>) that shows
// its start form with form-js and starts an instance with the form's values,
// or offers a plain Start button when the process has no start form.
import { api, searchAll } from "../common/api.js";
import { h, mount, table } from "../common/dom.js";
import { act, link, live } from "../common/shell.js";
import { formEditor, startForm } from "./form.js";

/** Whether each definition has a start form, by key (a key's form never changes). */
const hasStartForm = new Map();

function startFormOf(key) {
  if (!hasStartForm.has(key)) {
    const known = startForm(key).then((schema) => schema !== null);
    known.catch(() => hasStartForm.delete(key));
    hasStartForm.set(key, known);
  }
  return hasStartForm.get(key);
}

/** The latest version of each process (per tenant). */
function latest(definitions) {
  const newest = new Map();
  for (const d of definitions) {
    const id = `${d.tenantId}/${d.processDefinitionId}`;
    if (!newest.has(id) || newest.get(id).version < d.version) newest.set(id, d);
  }
  return [...newest.values()].sort((a, b) => (a.name || a.processDefinitionId).localeCompare(b.name || b.processDefinitionId));
}

export async function processes(main) {
  const body = h("div");
  mount(main, h("h1", {}, "Start a process"), body);
  let shown = null;
  await live(async () => {
    const definitions = latest(await searchAll("process-definitions"));
    const forms = await Promise.all(definitions.map((d) => startFormOf(d.processDefinitionKey)));
    const state = JSON.stringify([definitions, forms]);
    if (state === shown) return;
    shown = state;
    const rows = definitions.map((d, i) => [
      link(`/processes/${d.processDefinitionKey}`, d.name || d.processDefinitionId),
      d.processDefinitionId,
      d.version,
      forms[i] ? "Yes" : "No",
    ]);
    mount(body, table("Processes", ["Process", "Id", "Version", "Start form"], rows, "No process is deployed."));
  });
}

export async function startProcess(main, key) {
  const [definition, schema] = await Promise.all([api("GET", `/process-definitions/${key}`), startForm(key)]);
  const name = definition.name || definition.processDefinitionId;
  const formBox = h("div", { class: "panel task-form" });
  const button = h("button", { type: "button" }, `Start ${name}`);
  const started = h("div", { role: "status" });
  mount(
    main,
    h("p", {}, link("/processes", "← All processes")),
    h("h1", {}, name),
    h("p", {}, `Version ${definition.version} of ${definition.processDefinitionId}.`),
    schema ? formBox : null,
    h("div", { class: "actions" }, button),
    started,
  );
  const editor = schema ? await formEditor(formBox, schema, {}) : null;
  button.addEventListener("click", () =>
    act(
      button,
      async () => {
        const variables = editor ? editor.values() : {};
        const instance = await api("POST", "/process-instances", { processDefinitionKey: key, variables });
        mount(started, `Started instance ${instance.processInstanceKey}. `, link("/", "Back to the tasks"));
      },
      `Started ${name}.`,
    ),
  );
}
