// Incidents: retrying one (the job's retries set to 1 when the incident
// has a job, then the incident resolved) and the incidents panel of an
// instance's detail page.
import { api } from "../common/api.js";
import { h, mount, table, when } from "../common/dom.js";
import { act } from "../common/shell.js";
import { elementLabel } from "./model.js";
import { whenChanged } from "./panel.js";

/** Retries `incident`: gives its job a retry, then resolves it. */
export async function retry(incident) {
  if (incident.jobKey) await api("PATCH", `/jobs/${incident.jobKey}`, { changeset: { retries: 1 } });
  await api("POST", `/incidents/${incident.incidentKey}/resolution`, {});
}

/** The open incidents of an instance, each with Retry; `update(state)` shows them. */
export function incidentsPanel() {
  const el = h("div");
  const show = whenChanged(({ incidents, labels }) =>
    mount(
      el,
      table(
        "Open incidents",
        ["Element", "Error type", "Message", "Created", "Action"],
        incidents.map((i) => [
          labels[i.elementId],
          i.errorType,
          i.errorMessage,
          when(i.creationTime),
          h(
            "button",
            { type: "button", "aria-label": `Retry the incident of ${labels[i.elementId]}`, onclick: (e) => act(e.currentTarget, () => retry(i), `Incident of ${i.elementId} retried.`) },
            "Retry",
          ),
        ]),
        "No open incidents.",
      ),
    ),
  );
  const update = ({ incidents, model }) =>
    show({ incidents, labels: Object.fromEntries(incidents.map((i) => [i.elementId, elementLabel(model, i.elementId)])) });
  return { el, update };
}
