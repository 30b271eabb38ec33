// What Tasklist reads from a deployed process's BPMN XML: element names (a
// user task's name when the search leaves it out) and the Camunda forms
// embedded in the process (zeebe:userTaskForm). A definition key always
// names the same XML, so each is fetched once per page load.
import { api } from "../common/api.js";

const ZEEBE = "http://camunda.org/schema/zeebe/1.0";
/** The `formKey` prefix of a form embedded in the process XML. */
export const EMBEDDED_FORM = "camunda-forms:bpmn:";

const documents = new Map();

/** The parsed XML of process definition `key`. */
export function definitionXml(key) {
  if (!documents.has(key)) {
    const parsed = api("GET", `/process-definitions/${key}/xml`).then((text) =>
      new DOMParser().parseFromString(text, "text/xml"),
    );
    parsed.catch(() => documents.delete(key));
    documents.set(key, parsed);
  }
  return documents.get(key);
}

function elementById(doc, id) {
  return Array.from(doc.getElementsByTagName("*")).find((el) => el.getAttribute("id") === id);
}

/**
 * What to call each task: its name, else its BPMN element's name, else the
 * element id. Resolves to a Map from userTaskKey to that name.
 */
export async function taskNames(tasks) {
  const unnamed = tasks.filter((t) => !t.name);
  const keys = [...new Set(unnamed.map((t) => t.processDefinitionKey))];
  const docs = new Map(await Promise.all(keys.map(async (k) => [k, await definitionXml(k)])));
  return new Map(
    tasks.map((t) => [
      t.userTaskKey,
      t.name || elementById(docs.get(t.processDefinitionKey), t.elementId)?.getAttribute("name") || t.elementId,
    ]),
  );
}

/** The JSON text of form `id` embedded in process definition `key`, or null. */
export async function embeddedForm(key, id) {
  const doc = await definitionXml(key);
  const form = Array.from(doc.getElementsByTagNameNS(ZEEBE, "userTaskForm")).find((el) => el.getAttribute("id") === id);
  return form ? form.textContent : null;
}
