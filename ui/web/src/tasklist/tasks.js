// The task list (#/?show=&group=&due=&before=&sort=): open user tasks,
// filtered by assignee (all, mine, unassigned), candidate group and due date,
// sorted by creation or due date, each linking to its page and claimable.
//
// The assignee and candidate group filters and the creation order are the
// search's; the due date filters and order apply here, to the newest
// MAX_TASKS open tasks the search returns: the search keeps due dates as the
// text the process gave (with any offset), which only Date compares
// correctly.
import { searchAll } from "../common/api.js";
import { field, h, mount, table, when } from "../common/dom.js";
import { link, live, report } from "../common/shell.js";
import { assignmentButton, me } from "./assignment.js";
import { taskNames } from "./definitions.js";
import { hashQuery, setHashQuery } from "../common/query.js";

/** At most this many open tasks are read. */
const MAX_TASKS = 1000;

const SHOW = [["all", "All open tasks"], ["mine", "Assigned to me"], ["unassigned", "Unassigned"]];
const DUE = [["any", "Any time"], ["overdue", "Overdue"], ["before", "Due before a date"]];
const SORT = [["created", "Newest first"], ["due", "Due soonest first"]];
/** The choices a bare #/ means; the hash names only the others. */
const DEFAULTS = { show: "all", group: "", due: "any", before: "", sort: "created" };

function select(options, value) {
  return h("select", {}, options.map(([v, text]) => h("option", { value: v, selected: v === value }, text)));
}

/** The search filter of the assignee choice `show` for `user`, and of `group`. */
function searchFilter({ show, group }, user) {
  const filter = { state: "CREATED" };
  if (show === "mine") filter.assignee = user;
  if (show === "unassigned") filter.assignee = { $exists: false };
  if (group) filter.candidateGroup = group;
  return filter;
}

/** Whether `task` passes the due date choices. */
function passes(task, { due, before }, now) {
  const dueAt = task.dueDate ? Date.parse(task.dueDate) : NaN;
  if (due === "overdue" && !(dueAt < now)) return false;
  if (due === "before" && before && !(dueAt < Date.parse(`${before}T00:00:00`))) return false;
  return true;
}

function byDueDate(a, b) {
  const at = (t) => (t.dueDate ? Date.parse(t.dueDate) : Infinity);
  return at(a) - at(b);
}

function dueCell(task, now) {
  if (!task.dueDate) return "—";
  const overdue = Date.parse(task.dueDate) < now;
  return [when(task.dueDate), overdue ? [" ", h("span", { class: "badge badge-overdue" }, "overdue")] : null];
}

export async function tasks(main) {
  const query = hashQuery();
  const chosen = (name) => query.get(name) || DEFAULTS[name];
  const show = select(SHOW, chosen("show"));
  const group = h("input", { type: "search", value: chosen("group") });
  const due = select(DUE, chosen("due"));
  const before = h("input", { type: "date", value: chosen("before") });
  const sort = select(SORT, chosen("sort"));
  const beforeField = field("Due before", before);
  const body = h("div");
  const choices = () => ({
    show: show.value, group: group.value.trim(), due: due.value, before: before.value, sort: sort.value,
  });
  mount(
    main,
    h("h1", {}, "Tasks"),
    h(
      "form",
      { class: "filters", role: "search", "aria-label": "Filter tasks", onsubmit: (e) => e.preventDefault() },
      field("Show", show), field("Candidate group", group), field("Due", due), beforeField, field("Sort", sort),
    ),
    body,
  );
  const user = await me();
  let shown = null;

  async function refresh() {
    const c = choices();
    beforeField.hidden = c.due !== "before";
    const sortBy = [{ field: "creationDate", order: "DESC" }, { field: "userTaskKey", order: "DESC" }];
    const found = await searchAll("user-tasks", searchFilter(c, user), { sort: sortBy, max: MAX_TASKS });
    const now = Date.now();
    const items = found.filter((t) => passes(t, c, now));
    if (c.sort === "due") items.sort(byDueDate);
    const names = await taskNames(items);
    // A newer choice was made meanwhile: its own refresh draws it.
    if (JSON.stringify(choices()) !== JSON.stringify(c)) return;
    // Unchanged tasks are not drawn again, so focus and clicks survive the refresh.
    const state = JSON.stringify([items, c, Math.floor(now / 60000)]);
    if (state === shown) return;
    shown = state;
    const rows = items.map((t) => [
      link(`/tasks/${t.userTaskKey}`, names.get(t.userTaskKey)),
      t.processName || t.processDefinitionId,
      t.assignee || "Unassigned",
      t.candidateGroups.join(", ") || "—",
      dueCell(t, now),
      when(t.creationDate),
      assignmentButton(t, names.get(t.userTaskKey), user, () => refresh().catch(report)) || "",
    ]);
    mount(
      body,
      table("Open tasks", ["Task", "Process", "Assignee", "Candidate groups", "Due date", "Created", "Action"], rows, "No open tasks match."),
      found.length >= MAX_TASKS ? h("p", { class: "empty" }, `Only the newest ${MAX_TASKS} open tasks are searched.`) : null,
    );
  }

  const apply = () => {
    setHashQuery(Object.entries(choices()).filter(([name, value]) => value !== DEFAULTS[name]));
    refresh().catch(report);
  };
  for (const control of [show, due, before, sort]) control.addEventListener("change", apply);
  group.addEventListener("input", apply);
  await live(refresh);
}
