// The processes view's filters: read from and written to the hash query
// (#/instances?process=x&incidents=true), so a filtered view can be linked,
// and turned into the filter of POST /v2/process-instances/search.
import { searchAll } from "../common/api.js";
import { hashQuery } from "../common/query.js";

/** The process instance states, as the API names them and as Operate says them. */
export const STATES = [
  ["ACTIVE", "Active"],
  ["COMPLETED", "Completed"],
  ["TERMINATED", "Canceled"],
];

/** The parameters of the current hash's query, as an object. */
export function readQuery() {
  return Object.fromEntries(hashQuery());
}

/** The path of the processes view with `params` (empty ones left out). */
export function instancesPath(params) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== ""));
  const text = query.toString();
  return text ? `/instances?${text}` : "/instances";
}

/**
 * The process instance search filter of `params`: process (id), version,
 * state, incidents ("true"), from/to (start date, local date-time),
 * variable + value (JSON), errorType/errorMessage (instances with such an
 * open incident). Throws an Error naming a parameter that is not valid.
 */
export async function instanceFilter(params) {
  const filter = {};
  if (params.process) filter.processDefinitionId = params.process;
  if (params.version) {
    const version = Number(params.version);
    if (!Number.isInteger(version)) throw new Error(`The version must be a whole number, not "${params.version}".`);
    filter.processDefinitionVersion = version;
  }
  if (params.state) filter.state = params.state;
  if (params.incidents === "true") filter.hasIncident = true;
  const startDate = {};
  if (params.from) startDate.$gte = isoDate(params.from, "start date from");
  if (params.to) startDate.$lt = isoDate(params.to, "start date to");
  if (Object.keys(startDate).length > 0) filter.startDate = startDate;
  if (params.variable) filter.variables = [{ name: params.variable, value: canonicalJson(params.value ?? "", "variable value") }];
  if (params.errorType || params.errorMessage) {
    const incidents = await searchAll(
      "incidents",
      { state: "ACTIVE", errorType: params.errorType || undefined, errorMessage: params.errorMessage || undefined },
      { max: 1000 },
    );
    filter.processInstanceKey = { $in: [...new Set(incidents.map((i) => i.processInstanceKey))] };
  }
  return filter;
}

function isoDate(text, what) {
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) throw new Error(`The ${what} is not a date: "${text}".`);
  return date.toISOString();
}

/** `text` parsed as JSON; an Error naming `what` when it is not JSON. */
export function parseJson(text, what = "value") {
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`The ${what} must be JSON (a string in double quotes, a number, true, an object...): ${text}`);
  }
}

/** `text` as JSON written compactly, as the broker stores values. */
function canonicalJson(text, what) {
  return JSON.stringify(parseJson(text, what));
}
