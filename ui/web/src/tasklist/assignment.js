// Who works on a task: the signed-in user, and claiming (assigning a task to
// oneself unless someone else has it, 409 then) and unclaiming, as buttons
// for the task list and the task page.
import { api } from "../common/api.js";
import { h } from "../common/dom.js";
import { act } from "../common/shell.js";

/** The signed-in user's name (`anonymous` without authentication). */
export async function me() {
  const user = await api("GET", "/authentication/me");
  return user.username;
}

function claim(task, user) {
  return api("POST", `/user-tasks/${task.userTaskKey}/assignment`, { assignee: user, allowOverride: false });
}

function unclaim(task) {
  return api("DELETE", `/user-tasks/${task.userTaskKey}/assignee`);
}

function commandButton(text, label, kind, command, done, then) {
  const button = h("button", {
    type: "button",
    class: kind,
    "aria-label": label,
    onclick: async () => {
      if (await act(button, command, done)) then();
    },
  }, text);
  return button;
}

/**
 * The button that claims `task` (called `name`) for `user` or, when it is
 * theirs, unclaims it; null for a task someone else has or a closed one.
 * `then` runs after a success.
 */
export function assignmentButton(task, name, user, then) {
  if (task.state !== "CREATED") return null;
  if (!task.assignee) {
    return commandButton("Claim", `Claim ${name}`, null, () => claim(task, user), `Claimed ${name}.`, then);
  }
  if (task.assignee === user) {
    return commandButton("Unclaim", `Unclaim ${name}`, "secondary", () => unclaim(task), `Unclaimed ${name}.`, then);
  }
  return null;
}
