// The task list.
import { search } from "../common/api.js";
import { h, mount, table, when } from "../common/dom.js";
import { live } from "../common/shell.js";

export async function tasks(main) {
  const body = h("div");
  mount(main, h("h1", {}, "Tasks"), body);
  await live(async () => {
    const result = await search("user-tasks", { state: "CREATED" }, { sort: [{ field: "creationDate", order: "DESC" }] });
    const rows = result.items.map((t) => [t.name || t.elementId, t.assignee || "Unassigned", when(t.creationDate)]);
    mount(body, table("Open tasks", ["Task", "Assignee", "Created"], rows, "No open tasks."));
  });
}
