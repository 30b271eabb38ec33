// The variables of an instance, with editing: a variable's new JSON value,
// or a new variable, is set in its scope by
// PUT /v2/element-instances/{scopeKey}/variables.
import { api } from "../common/api.js";
import { field, h, mount, table } from "../common/dom.js";
import { act } from "../common/shell.js";
import { elementLabel } from "./model.js";
import { liveOptions } from "./options.js";
import { whenChanged } from "./panel.js";
import { parseJson } from "./query.js";

/** Sets variable `name` to `json` (text) in scope `scopeKey`. */
function setVariable(scopeKey, name, json) {
  return api("PUT", `/element-instances/${scopeKey}/variables`, { variables: { [name]: parseJson(json) } });
}

export function variablesPanel(processInstanceKey) {
  const list = h("div");
  const editor = h("div");

  function edit(variable, scope) {
    const value = h("textarea", { rows: 3, cols: 40, value: variable.value });
    const close = () => mount(editor);
    mount(
      editor,
      h(
        "form",
        {
          class: "op-editor",
          "aria-label": `Edit variable ${variable.name}`,
          onsubmit: async (event) => {
            event.preventDefault();
            const saved = await act(event.submitter, () => setVariable(variable.scopeKey, variable.name, value.value), `Variable ${variable.name} set.`);
            if (saved) close();
          },
        },
        field(`New value of ${variable.name} (JSON, in ${scope})`, value),
        h("div", { class: "actions" }, h("button", { type: "submit" }, "Save"), h("button", { type: "button", class: "secondary", onclick: close }, "Cancel editing")),
      ),
    );
    value.focus();
  }

  const show = whenChanged(({ variables, scopeNames }) =>
    mount(
      list,
      table(
        "Variables of the instance",
        ["Name", "Scope", "Value", "Action"],
        variables.map((v) => [
          v.name,
          scopeNames[v.scopeKey],
          h("pre", {}, v.value),
          h("button", { type: "button", class: "secondary", "aria-label": `Edit ${v.name}`, onclick: () => edit(v, scopeNames[v.scopeKey]) }, "Edit"),
        ]),
        "No variables.",
      ),
    ),
  );

  const name = h("input", { required: true, autocomplete: "off" });
  const value = h("input", { required: true, autocomplete: "off", placeholder: '"text", 42, {"a": 1}' });
  const scope = h("select", {});
  const showScopes = liveOptions(scope);
  const add = h(
    "form",
    {
      class: "filters",
      "aria-label": "Add a variable",
      onsubmit: async (event) => {
        event.preventDefault();
        const added = await act(event.submitter, () => setVariable(scope.value, name.value.trim(), value.value), `Variable ${name.value.trim()} set.`);
        if (added) {
          name.value = "";
          value.value = "";
        }
      },
    },
    field("Variable name", name),
    field("Value (JSON)", value),
    field("Scope", scope),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Add variable")),
  );

  const el = h("div", {}, list, editor, h("h3", {}, "Add a variable"), add);

  function update({ variables, elements, model }) {
    const scopeNames = { [processInstanceKey]: "the process instance" };
    for (const e of elements) scopeNames[e.elementInstanceKey] = `${elementLabel(model, e.elementId)} ${e.elementInstanceKey}`;
    const scopes = [[processInstanceKey, "The process instance"]].concat(
      elements.filter((e) => e.state === "ACTIVE").map((e) => [e.elementInstanceKey, scopeNames[e.elementInstanceKey]]),
    );
    showScopes(scopes);
    show({ variables, scopeNames });
  }
  return { el, update };
}
