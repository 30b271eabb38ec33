// The processes view's batch commands over every instance its filters
// match: cancel them all, or retry all their incidents. The REST API has no
// batch endpoint, so the page searches the matching instances and sends
// each one's public command, a few at a time, telling the progress.
import { api, searchAll } from "../common/api.js";
import { h } from "../common/dom.js";
import { act, notify, report } from "../common/shell.js";
import { retry } from "./incidents.js";
import { confirmed } from "./panel.js";
import { instanceFilter } from "./query.js";

/** Commands sent at the same time. */
const PARALLEL = 4;
/** The most instances one batch touches. */
const MAX = 10000;

/** The batch buttons for the instances matching `params`, and their progress. */
export function batchActions(params) {
  const progress = h("p", { role: "status", class: "op-progress" });
  const cancel = h("button", { type: "button", class: "danger", onclick: () => act(cancel, () => cancelAll(params, progress)) }, "Cancel all matching");
  const retryAll = h("button", { type: "button", class: "secondary", onclick: () => act(retryAll, () => retryAllMatching(params, progress)) }, "Retry all matching");
  return h("div", {}, h("div", { class: "actions" }, cancel, retryAll), progress);
}

/** The matching instances, narrowed by `extra` (nothing when the filters contradict it). */
async function matching(params, extra) {
  const filter = await instanceFilter(params);
  for (const [name, value] of Object.entries(extra)) {
    if (name in filter && filter[name] !== value) return [];
    filter[name] = value;
  }
  return searchAll("process-instances", filter, { max: MAX });
}

async function cancelAll(params, progress) {
  const instances = await matching(params, { state: "ACTIVE" });
  if (instances.length === 0) return notify("No active instance matches the filters.");
  if (!confirmed(`Cancel ${count(instances)} active process instance(s)? This cannot be undone.`)) return;
  await run(instances, (i) => api("POST", `/process-instances/${i.processInstanceKey}/cancellation`, {}), progress, "Canceled", "instance(s)");
}

async function retryAllMatching(params, progress) {
  const instances = await matching(params, { state: "ACTIVE", hasIncident: true });
  const keys = instances.map((i) => i.processInstanceKey);
  const incidents = [];
  for (let at = 0; at < keys.length; at += 500) {
    incidents.push(...(await searchAll("incidents", { state: "ACTIVE", processInstanceKey: { $in: keys.slice(at, at + 500) } }, { max: MAX })));
  }
  if (incidents.length === 0) return notify("No open incident in the matching instances.");
  if (!confirmed(`Retry ${incidents.length} incident(s) of ${count(instances)} process instance(s)?`)) return;
  await run(incidents, retry, progress, "Retried", "incident(s)");
}

/** How many `instances` a batch takes, saying so when more match than it takes. */
function count(instances) {
  return instances.length < MAX ? String(instances.length) : `the first ${MAX} matching`;
}

/** Runs `command` for every item, PARALLEL at a time; tells the progress and the outcome. */
async function run(items, command, progress, done, what) {
  let next = 0;
  let finished = 0;
  const failures = [];
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++];
      try {
        await command(item);
      } catch (e) {
        failures.push(e);
      }
      finished += 1;
      progress.textContent = `${done} ${finished - failures.length} of ${items.length} ${what}…`;
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, items.length) }, worker));
  progress.textContent = "";
  notify(`${done} ${items.length - failures.length} of ${items.length} ${what}.`, failures.length ? "error" : "ok");
  if (failures.length) report(failures[0]);
}
