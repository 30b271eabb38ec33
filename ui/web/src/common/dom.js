// A few lines of DOM building instead of a framework: h(tag, props, ...children).

/**
 * Creates element `tag`. In `props`, `onx` keys add event listeners, `class`,
 * `for`, `aria-*`, `data-*` and other strings become attributes, booleans
 * toggle attributes, and `value`/`checked` set properties. Children are
 * nodes, strings, numbers, arrays of them, or null/false (skipped).
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "value" || key === "checked") {
      el[key] = value;
    } else if (value === true) {
      el.setAttribute(key, "");
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** Replaces the children of `el`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A table with a caption (its accessible name), scrolling sideways on narrow screens. */
export function table(caption, headings, rows, empty = "Nothing here yet.") {
  if (rows.length === 0) return h("p", { class: "empty" }, empty);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, headings.map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((c) => h("td", {}, c))))),
    ),
  );
}

/** A labelled form field; `control` gets the id the label points at. */
let fieldIds = 0;
export function field(label, control) {
  const id = control.id || `field-${++fieldIds}`;
  control.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), control);
}

/** A date-time in the reader's locale, or an em dash. */
export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "—";
}

/** A status badge. */
export function badge(text, kind = text) {
  return h("span", { class: `badge badge-${String(kind).toLowerCase()}` }, text);
}
