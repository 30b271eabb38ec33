// Forms in Tasklist: finding a user task's form (linked, or embedded in its
// process's XML) or a process's start form, rendering it with form-js, and
// the plain JSON editor for a task without a form. Each editor gives the
// variables to send with `values()`, which throws when they are not valid.
import { Form } from "@bpmn-io/form-js-viewer";
import { api } from "../common/api.js";
import { field, h, mount } from "../common/dom.js";
import { onLeave } from "../common/shell.js";
import { EMBEDDED_FORM, embeddedForm } from "./definitions.js";

/**
 * The form of `task` as {schema, origin} ("linked" or "embedded"), or null
 * when it has none.
 */
export async function taskForm(task) {
  if (task.formKey) {
    const linked = await api("GET", `/user-tasks/${task.userTaskKey}/form`);
    if (linked) return { schema: JSON.parse(linked.schema), origin: "linked" };
  }
  const reference = task.externalFormReference || "";
  if (reference.startsWith(EMBEDDED_FORM)) {
    const id = reference.slice(EMBEDDED_FORM.length);
    const text = await embeddedForm(task.processDefinitionKey, id);
    if (text === null) throw new Error(`The form '${id}' is not in the process's XML.`);
    return { schema: JSON.parse(text), origin: "embedded" };
  }
  return null;
}

/** The start form schema of process definition `key`, or null. */
export async function startForm(key) {
  const linked = await api("GET", `/process-definitions/${key}/form`);
  return linked ? JSON.parse(linked.schema) : null;
}

/**
 * Renders `schema` with form-js into `container`, filled with `data`; the
 * form is destroyed when the page changes.
 */
export async function formEditor(container, schema, data) {
  const form = new Form({ container });
  onLeave(() => form.destroy());
  await form.importSchema(schema, data);
  return {
    setReadOnly: (readOnly) => form.setProperty("readOnly", readOnly),
    values() {
      const { data: values, errors } = form.submit();
      if (Object.keys(errors).length) throw new Error("Please correct the fields the form marks.");
      return values;
    },
  };
}

/** A JSON editor of `variables`, for a task without a form. */
export function jsonEditor(container, variables) {
  const text = h("textarea", { rows: 8, class: "json", spellcheck: "false" });
  text.value = JSON.stringify(variables, null, 2);
  mount(container, field("Variables (JSON)", text));
  return {
    setReadOnly: (readOnly) => (text.readOnly = readOnly),
    values() {
      let values;
      try {
        values = JSON.parse(text.value || "{}");
      } catch (e) {
        throw new Error(`The variables are not JSON: ${e.message}`);
      }
      if (values === null || typeof values !== "object" || Array.isArray(values)) {
        throw new Error("The variables must be a JSON object.");
      }
      return values;
    },
  };
}
