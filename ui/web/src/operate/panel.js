// Small building blocks of Operate's pages: titled sections, rendering only
// what changed (so live refreshes do not replace controls under the
// reader's pointer), confirmations, and instance states.
import { badge, h } from "../common/dom.js";
import { STATES } from "./query.js";

let sections = 0;

/** A section titled `title` (its accessible name) holding `children`. */
export function section(title, ...children) {
  const id = `section-${++sections}`;
  return h("section", { class: "panel", "aria-labelledby": id }, h("h2", { id }, title), ...children);
}

/** `render(data)`, called again only when `data` differs from last time (its result returned). */
export function whenChanged(render) {
  let last;
  return (data) => {
    const text = JSON.stringify(data);
    if (text === last) return undefined;
    last = text;
    return render(data);
  };
}

/** Asks the reader to confirm `question` before a command that cannot be undone. */
export function confirmed(question) {
  return window.confirm(question);
}

/** A process instance state as a badge ("Canceled" for TERMINATED). */
export function stateBadge(state) {
  const label = STATES.find(([s]) => s === state)?.[1] || state;
  return badge(label, label);
}
