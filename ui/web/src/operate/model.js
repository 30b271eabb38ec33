// What Operate reads from a BPMN model besides drawing it: the flow nodes
// (id, name, kind, the sub-process holding them, nesting depth) and the
// sequence flows, from the process definition's XML.

const BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL";
const SCOPES = new Set(["subProcess", "transaction", "adHocSubProcess"]);

function isFlowNode(kind) {
  return /(Event|Task|Gateway)$/.test(kind) || kind === "task" || kind === "callActivity" || SCOPES.has(kind);
}

/** `{nodes: Map(id → {id, name, kind, parent, depth}), flows: [{id, source, target}]}` of `xml`. */
export function parseModel(xml) {
  const doc = new DOMParser().parseFromString(xml, "application/xml");
  const nodes = new Map();
  const flows = [];
  const walk = (scope, parent, depth) => {
    for (const el of scope.children) {
      if (el.namespaceURI !== BPMN) continue;
      const id = el.getAttribute("id");
      if (el.localName === "sequenceFlow") {
        flows.push({ id, source: el.getAttribute("sourceRef"), target: el.getAttribute("targetRef") });
      } else if (isFlowNode(el.localName)) {
        nodes.set(id, { id, name: el.getAttribute("name") || "", kind: el.localName, parent, depth });
        if (SCOPES.has(el.localName)) walk(el, id, depth + 1);
      }
    }
  };
  for (const process of doc.getElementsByTagNameNS(BPMN, "process")) walk(process, null, 0);
  return { nodes, flows };
}

/** How `model` names element `id`: "Name (id)", or the id. */
export function elementLabel(model, id) {
  const name = model.nodes.get(id)?.name;
  return name ? `${name} (${id})` : id;
}
