// Select options that follow live data: replaced only when they change,
// keeping the reader's choice while it is still offered.
import { h, mount } from "../common/dom.js";
import { whenChanged } from "./panel.js";

/** `update([[value, label], ...])` sets the options of `select`. */
export function liveOptions(select, placeholder) {
  return whenChanged((options) => {
    const chosen = select.value;
    mount(
      select,
      placeholder ? h("option", { value: "" }, placeholder) : null,
      options.map(([value, label]) => h("option", { value, selected: value === chosen }, label)),
    );
  });
}
