// A user task's page (#/tasks/<key>): what it is and who has it, its form
// (a linked or embedded Camunda form, else a JSON editor) filled with the
// variables the task sees, and completing it with the form's values, which
// needs the task to be assigned to the reader (claim it first).
import { api, searchAll } from "../common/api.js";
import { badge, h, mount, when } from "../common/dom.js";
import { act, go, live, report } from "../common/shell.js";
import { assignmentButton, me } from "./assignment.js";
import { taskNames } from "./definitions.js";
import { formEditor, jsonEditor, taskForm } from "./form.js";

/** The variables `task` sees: its process instance's, then its own over them. */
async function taskVariables(task) {
  const found = await searchAll("variables", { processInstanceKey: task.processInstanceKey });
  const values = {};
  for (const scope of [task.processInstanceKey, task.elementInstanceKey]) {
    for (const v of found.filter((v) => v.scopeKey === scope)) values[v.name] = parseValue(v.value);
  }
  return values;
}

function parseValue(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function facts(task) {
  const list = (names) => (names.length ? names.join(", ") : "—");
  const rows = [
    ["Process", task.processName || task.processDefinitionId],
    ["Process instance", h("a", { href: `/operate/#/instances/${task.processInstanceKey}` }, task.processInstanceKey)],
    ["State", badge(task.state)],
    ["Assignee", task.assignee || "Unassigned"],
    ["Candidate groups", list(task.candidateGroups)],
    ["Candidate users", list(task.candidateUsers)],
    ["Created", when(task.creationDate)],
    ["Due", when(task.dueDate)],
    ["Follow up", when(task.followUpDate)],
    task.completionDate ? ["Completed", when(task.completionDate)] : null,
    ["Priority", task.priority],
  ];
  return h("dl", { class: "facts" }, rows.filter(Boolean).map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
}

export async function task(main, key) {
  const [user, first] = await Promise.all([me(), api("GET", `/user-tasks/${key}`)]);
  const name = (await taskNames([first])).get(first.userTaskKey);
  const [variables, form] = await Promise.all([taskVariables(first), taskForm(first)]);
  const about = h("div", { class: "panel" });
  const formBox = h("div", { class: "panel task-form" });
  const actions = h("div", { class: "actions task-actions" });
  mount(
    main,
    h("p", {}, h("a", { href: "#/" }, "← All tasks")),
    h("h1", {}, name),
    about,
    h("h2", {}, form ? `Form (${form.origin})` : "Variables"),
    formBox,
    actions,
  );
  const editor = form ? await formEditor(formBox, form.schema, variables) : jsonEditor(formBox, variables);

  async function complete(button) {
    const done = await act(
      button,
      () => api("POST", `/user-tasks/${key}/completion`, { variables: editor.values() }),
      `Completed ${name}.`,
    );
    if (done) go("/");
  }

  function actionsOf(current) {
    const redraw = () => refresh().catch(report);
    if (current.state !== "CREATED") return [h("p", {}, `This task is ${current.state.toLowerCase()}.`)];
    if (current.assignee === user) {
      const button = h("button", { type: "button", onclick: () => complete(button) }, "Complete task");
      return [button, assignmentButton(current, name, user, redraw)];
    }
    if (!current.assignee) {
      return [h("p", {}, "Claim the task to work on it."), assignmentButton(current, name, user, redraw)];
    }
    return [h("p", {}, `${current.assignee} works on this task.`)];
  }

  let shown = null;
  function draw(current) {
    const state = JSON.stringify(current);
    if (state === shown) return;
    shown = state;
    editor.setReadOnly(current.state !== "CREATED" || current.assignee !== user);
    mount(about, facts(current));
    mount(actions, actionsOf(current));
  }

  async function refresh() {
    draw(await api("GET", `/user-tasks/${key}`));
  }

  draw(first);
  await live(refresh);
}
