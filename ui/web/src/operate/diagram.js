// An instance's BPMN diagram, drawn by bpmn-js's NavigatedViewer (pan and
// zoom), with the per-element statistics on it: badges for active tokens
// (blue), incidents (red), completed and canceled counts; markers on the
// completed and active elements and on the sequence flows taken between
// elements that were reached. The viewer is destroyed when the page changes.
import NavigatedViewer from "bpmn-js/lib/NavigatedViewer";
import { h } from "../common/dom.js";
import { onLeave } from "../common/shell.js";

const BADGES = [
  ["active", "active", { bottom: 12, left: -10 }],
  ["incidents", "incident", { bottom: 12, right: 10 }],
  ["completed", "completed", { top: -10, left: -10 }],
  ["canceled", "canceled", { top: -10, right: 10 }],
];

/**
 * A viewer drawing into `container`: `load(xml)` draws a diagram (again
 * after a migration), `show(statistics, model)` updates the overlays.
 */
export function diagram(container) {
  const viewer = new NavigatedViewer({ container });
  onLeave(() => viewer.destroy());
  const canvas = viewer.get("canvas");
  const overlays = viewer.get("overlays");
  const registry = viewer.get("elementRegistry");
  let marked = [];

  const note = h("p", { class: "op-no-diagram", role: "note" });

  /** Draws `xml`; a model without a diagram (no BPMN DI) is said so in the box. */
  async function load(xml) {
    marked = [];
    note.remove();
    try {
      await viewer.importXML(xml);
    } catch (e) {
      viewer.clear();
      note.textContent = `The diagram cannot be drawn: ${e.message}.`;
      container.prepend(note);
      return;
    }
    canvas.resized();
    canvas.zoom("fit-viewport", "auto");
    // A margin, so that the badges beside the outermost elements show.
    const box = canvas.viewbox();
    const margin = 24 / box.scale;
    canvas.viewbox({ x: box.x - margin, y: box.y - margin, width: box.width + 2 * margin, height: box.height + 2 * margin });
  }

  function mark(id, marker) {
    if (!registry.get(id)) return;
    canvas.addMarker(id, marker);
    marked.push([id, marker]);
  }

  function show(statistics, model) {
    overlays.remove({ type: "op-statistics" });
    marked.forEach(([id, marker]) => canvas.removeMarker(id, marker));
    marked = [];
    const reached = new Map(statistics.map((s) => [s.elementId, s]));
    for (const s of statistics) {
      if (!registry.get(s.elementId)) continue;
      for (const [count, kind, position] of BADGES) {
        if (s[count] > 0) {
          overlays.add(s.elementId, "op-statistics", {
            position,
            html: h("span", { class: `op-badge op-badge-${kind}`, title: `${s[count]} ${kind}` }, String(s[count])),
          });
        }
      }
      if (s.incidents > 0) mark(s.elementId, "op-incident");
      else if (s.active > 0) mark(s.elementId, "op-active");
      else if (s.completed > 0) mark(s.elementId, "op-completed");
    }
    for (const flow of model.flows) {
      if (reached.get(flow.source)?.completed > 0 && reached.has(flow.target)) mark(flow.id, "op-taken");
    }
  }

  return { load, show };
}
