// Decision instances (#/decisions): every decision evaluated, newest
// first, with its process instance; and one evaluation's detail
// (#/decisions/<key>): its inputs, the rules that matched with their
// outputs, and the result.
import { api, search } from "../common/api.js";
import { badge, h, mount, table, when } from "../common/dom.js";
import { link, live } from "../common/shell.js";
import { section, whenChanged } from "./panel.js";

const SHOWN = 100;

export async function decisions(main) {
  const results = h("div");
  mount(main, h("h1", {}, "Decisions"), results);
  const show = whenChanged(({ items, total }) =>
    mount(
      results,
      table(
        "Decision instances",
        ["Decision", "Version", "State", "Evaluated", "Process instance"],
        items.map((d) => [
          link(`/decisions/${d.decisionEvaluationInstanceKey}`, d.decisionDefinitionName || d.decisionDefinitionId),
          d.decisionDefinitionVersion,
          badge(d.state, d.state),
          when(d.evaluationDate),
          d.processInstanceKey ? link(`/instances/${d.processInstanceKey}`, d.processInstanceKey) : "—",
        ]),
        "No decision was evaluated yet.",
      ),
      items.length < total ? h("p", { class: "empty" }, `The newest ${items.length} of ${total} decision instances are shown.`) : null,
    ),
  );
  await live(async () => {
    const result = await search("decision-instances", {}, { sort: [{ field: "evaluationDate", order: "DESC" }], limit: SHOWN });
    show({ items: result.items, total: result.page.totalItems });
  });
}

export async function decision(main, key) {
  const d = await api("GET", `/decision-instances/${key}`);
  const item = (term, ...value) => [h("dt", {}, term), h("dd", {}, ...value)];
  mount(
    main,
    h("p", {}, link("/decisions", "All decision instances")),
    h("h1", {}, `${d.decisionDefinitionName || d.decisionDefinitionId} (v${d.decisionDefinitionVersion})`),
    h(
      "div",
      { class: "panel" },
      h(
        "dl",
        { class: "op-summary" },
        item("Decision", d.decisionDefinitionId),
        item("Type", d.decisionDefinitionType || "—"),
        item("State", badge(d.state, d.state)),
        item("Evaluated", when(d.evaluationDate)),
        item("Process instance", d.processInstanceKey ? link(`/instances/${d.processInstanceKey}`, d.processInstanceKey) : "—"),
        d.evaluationFailure ? item("Failure", h("span", { class: "error" }, d.evaluationFailure)) : null,
        item("Result", h("pre", {}, d.result)),
      ),
    ),
    section(
      "Inputs",
      table(
        "Evaluated inputs",
        ["Input", "Value"],
        d.evaluatedInputs.map((i) => [i.inputName || i.inputId, h("pre", {}, i.inputValue)]),
        "No inputs (not a decision table).",
      ),
    ),
    section(
      "Matched rules",
      table(
        "Matched rules and their outputs",
        ["Rule", "Output", "Value"],
        d.matchedRules.flatMap((r) =>
          r.evaluatedOutputs.map((o) => [`${r.ruleIndex}: ${r.ruleId}`, o.outputName || o.outputId, h("pre", {}, o.outputValue)]),
        ),
        "No rule matched.",
      ),
    ),
  );
}
