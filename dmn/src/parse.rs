//! Reads a `.dmn` resource (DMN 1.1–1.5) into a [`Graph`]: checks the
//! nesting depth before roxmltree sees the text, indexes the DRG elements
//! by id, resolves requirements to indices, compiles every FEEL text once,
//! and refuses requirement cycles and over-long requirement chains.

use crate::boxed_parse::{child, children, dmn_children, expression_child, type_ref, Cx};
use crate::error::ParseError;
use crate::model::{
    Bkm, Decision, DecisionService, FunctionDef, InputData, Invocable, ItemDefinition,
};
use crate::xml_depth::{check_depth, MAX_XML_DEPTH};
use crate::{Graph, MAX_REQUIREMENT_DEPTH};
use roxmltree::Node;
use std::collections::HashMap;
use std::sync::Arc;

/// Namespaces of DMN 1.1 to 1.5 models.
pub const DMN_NAMESPACES: [&str; 5] = [
    "http://www.omg.org/spec/DMN/20151101/dmn.xsd",
    "http://www.omg.org/spec/DMN/20180521/MODEL/",
    "https://www.omg.org/spec/DMN/20191111/MODEL/",
    "https://www.omg.org/spec/DMN/20211108/MODEL/",
    "https://www.omg.org/spec/DMN/20230324/MODEL/",
];

/// Parses a DMN resource. With `lenient`, a decision's or knowledge
/// model's logic that fails to parse becomes logic that fails when
/// evaluated, and its error is returned beside the graph.
pub fn parse(xml: &str, lenient: bool) -> Result<(Graph, Vec<ParseError>), ParseError> {
    check_depth(xml.as_bytes(), MAX_XML_DEPTH).map_err(|e| ParseError::TooDeep {
        line: e.line,
        limit: e.limit,
    })?;
    let doc = roxmltree::Document::parse(xml).map_err(|e| ParseError::Xml(e.to_string()))?;
    let root = doc.root_element();
    let ns = root.tag_name().namespace().unwrap_or("");
    if root.tag_name().name() != "definitions" || !DMN_NAMESPACES.contains(&ns) {
        return Err(ParseError::NotDmn {
            element: root.tag_name().name().to_string(),
            namespace: ns.to_string(),
        });
    }
    let names = feel::KnownNames::new(
        doc.descendants()
            .filter(|n| n.is_element())
            .filter_map(|n| n.attribute("name")),
    );
    let cx = Cx { ns, names };
    let mut deferred = Vec::new();
    let mut tolerate = |r: Result<crate::model::Boxed, ParseError>, id: &Arc<str>| match r {
        Err(e) if lenient => {
            let b = crate::model::Boxed {
                id: id.clone(),
                type_ref: None,
                kind: crate::model::BoxedKind::Invalid(e.to_string()),
            };
            deferred.push(e);
            Ok(b)
        }
        r => r,
    };
    let attr = |n: Node, a: &str| Arc::<str>::from(n.attribute(a).unwrap_or(""));

    // Index DRG elements by id first: requirements may point forward.
    let mut ids: HashMap<&str, Invocable> = HashMap::new();
    let (mut decision_ids, mut input_ids) = (HashMap::new(), HashMap::new());
    let (mut d, mut i, mut b, mut s) = (0, 0, 0, 0);
    for n in dmn_children(root, ns) {
        let id = n.attribute("id").unwrap_or("");
        match n.tag_name().name() {
            "decision" => {
                decision_ids.insert(id, d);
                d += 1;
            }
            "inputData" => {
                input_ids.insert(id, i);
                i += 1;
            }
            "businessKnowledgeModel" => {
                ids.insert(id, Invocable::Bkm(b));
                b += 1;
            }
            "decisionService" => {
                ids.insert(id, Invocable::Service(s));
                s += 1;
            }
            _ => {}
        }
    }
    fn href_id<'a>(n: Node<'a, '_>) -> Result<&'a str, ParseError> {
        let h = n.attribute("href").unwrap_or("");
        Ok(h.rsplit_once('#').map_or(h, |(_, id)| id))
    }
    let resolve = |owner: &str, n: Node, map: &HashMap<&str, usize>| -> Result<usize, ParseError> {
        let id = href_id(n)?;
        map.get(id)
            .copied()
            .ok_or_else(|| ParseError::UnknownReference {
                element: owner.to_string(),
                href: n.attribute("href").unwrap_or("").to_string(),
            })
    };
    let knowledge = |owner: &str, n: Node| -> Result<Vec<Invocable>, ParseError> {
        let mut out = Vec::new();
        for k in children(n, ns, "knowledgeRequirement") {
            for r in children(k, ns, "requiredKnowledge") {
                let id = href_id(r)?;
                out.push(*ids.get(id).ok_or_else(|| ParseError::UnknownReference {
                    element: owner.to_string(),
                    href: r.attribute("href").unwrap_or("").to_string(),
                })?);
            }
        }
        Ok(out)
    };

    let mut g = Graph {
        id: attr(root, "id"),
        name: attr(root, "name"),
        namespace: attr(root, "namespace"),
        decisions: Vec::new(),
        inputs: Vec::new(),
        bkms: Vec::new(),
        services: Vec::new(),
        item_definitions: Vec::new(),
    };
    for n in dmn_children(root, ns) {
        let id = attr(n, "id");
        let name = attr(n, "name");
        let var_type = child(n, ns, "variable").and_then(|v| type_ref(v));
        match n.tag_name().name() {
            "itemDefinition" => g.item_definitions.push(item_definition(&cx, n)?),
            "inputData" => g.inputs.push(InputData {
                id,
                name,
                type_ref: var_type,
            }),
            "decision" => {
                let mut required_decisions = Vec::new();
                let mut required_inputs = Vec::new();
                for r in children(n, ns, "informationRequirement") {
                    for rd in children(r, ns, "requiredDecision") {
                        required_decisions.push(resolve(&id, rd, &decision_ids)?);
                    }
                    for ri in children(r, ns, "requiredInput") {
                        required_inputs.push(resolve(&id, ri, &input_ids)?);
                    }
                }
                let logic = match expression_child(n, ns) {
                    Some(e) => Some(tolerate(cx.boxed(e, &id), &id)?),
                    None => None,
                };
                g.decisions.push(Decision {
                    required_knowledge: knowledge(&id, n)?,
                    id,
                    name,
                    type_ref: var_type,
                    required_decisions,
                    required_inputs,
                    logic,
                });
            }
            "businessKnowledgeModel" => {
                let logic = match child(n, ns, "encapsulatedLogic") {
                    Some(l) => Some(match cx.function(l, &id) {
                        Ok(f) => f,
                        Err(e) => FunctionDef {
                            params: Vec::new(),
                            body: Some(tolerate(Err(e), &id)?),
                            feel: true,
                        },
                    }),
                    None => None,
                };
                let type_ref = var_type.or_else(|| {
                    logic
                        .as_ref()
                        .and_then(|f: &FunctionDef| f.body.as_ref())
                        .and_then(|b| b.type_ref.clone())
                });
                g.bkms.push(Bkm {
                    required_knowledge: knowledge(&id, n)?,
                    id,
                    name,
                    type_ref,
                    logic,
                });
            }
            "decisionService" => {
                let list = |tag: &str| -> Result<Vec<usize>, ParseError> {
                    children(n, ns, tag)
                        .map(|r| resolve(&id, r, &decision_ids))
                        .collect()
                };
                let outputs = list("outputDecision")?;
                let input_decisions = list("inputDecision")?;
                let input_data = children(n, ns, "inputData")
                    .map(|r| resolve(&id, r, &input_ids))
                    .collect::<Result<_, _>>()?;
                g.services.push(DecisionService {
                    id,
                    name,
                    type_ref: var_type,
                    outputs,
                    input_decisions,
                    input_data,
                });
            }
            _ => {}
        }
    }
    check_acyclic(&g)?;
    Ok((g, deferred))
}

fn item_definition(cx: &Cx, n: Node) -> Result<ItemDefinition, ParseError> {
    let ns = cx.ns;
    let name: Arc<str> = Arc::from(n.attribute("name").unwrap_or(""));
    let type_ref = child(n, ns, "typeRef")
        .and_then(|t| t.text())
        .map(|t| Arc::from(t.trim()));
    let allowed_values = match child(n, ns, "allowedValues").and_then(|a| child(a, ns, "text")) {
        Some(t) => {
            let text = t.text().unwrap_or("");
            Some(
                feel::compile_unary_tests_with_names(text, &cx.names).map_err(|e| {
                    ParseError::Feel {
                        element: name.to_string(),
                        expression: text.to_string(),
                        message: e.to_string(),
                    }
                })?,
            )
        }
        None => None,
    };
    let mut components = Vec::new();
    for c in children(n, ns, "itemComponent") {
        components.push(item_definition(cx, c)?);
    }
    Ok(ItemDefinition {
        name,
        type_ref,
        allowed_values,
        collection: n.attribute("isCollection") == Some("true"),
        components,
        function: child(n, ns, "functionItem").is_some(),
    })
}

/// Refuses cycles among decisions and among invocables, and requirement
/// chains longer than [`MAX_REQUIREMENT_DEPTH`], so that evaluation can
/// recurse along requirements safely. Iterative (explicit stack).
fn check_acyclic(g: &Graph) -> Result<(), ParseError> {
    let decision_edges: Vec<Vec<usize>> = g
        .decisions
        .iter()
        .map(|d| d.required_decisions.clone())
        .collect();
    let names: Vec<&str> = g.decisions.iter().map(|d| &*d.id).collect();
    longest_chain(&decision_edges, &names)?;
    // Invocables: business knowledge models, then services (which call
    // their output decisions' knowledge; a service's own recursion is
    // bounded at evaluation by the shared depth budget).
    let nb = g.bkms.len();
    let index = |i: &Invocable| match i {
        Invocable::Bkm(b) => *b,
        Invocable::Service(s) => nb + s,
    };
    let mut edges: Vec<Vec<usize>> = g
        .bkms
        .iter()
        .map(|b| b.required_knowledge.iter().map(index).collect())
        .collect();
    edges.extend(g.services.iter().map(|_| Vec::new()));
    let mut names: Vec<&str> = g.bkms.iter().map(|b| &*b.id).collect();
    names.extend(g.services.iter().map(|s| &*s.id));
    longest_chain(&edges, &names)?;
    Ok(())
}

fn longest_chain(edges: &[Vec<usize>], names: &[&str]) -> Result<(), ParseError> {
    // 0 = unvisited, 1 = on the stack, 2 = done; depth[i] = longest chain from i.
    let mut state = vec![0u8; edges.len()];
    let mut depth = vec![0usize; edges.len()];
    for start in 0..edges.len() {
        if state[start] != 0 {
            continue;
        }
        let mut stack = vec![(start, 0usize)];
        state[start] = 1;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(&to) = edges[node].get(*next) {
                *next += 1;
                match state[to] {
                    0 => {
                        state[to] = 1;
                        stack.push((to, 0));
                    }
                    1 => {
                        let mut cycle: Vec<&str> = stack
                            .iter()
                            .skip_while(|(n, _)| *n != to)
                            .map(|(n, _)| names[*n])
                            .collect();
                        cycle.push(names[to]);
                        return Err(ParseError::Cycle(cycle.join(" -> ")));
                    }
                    _ => {}
                }
            } else {
                let d = 1 + edges[node].iter().map(|&t| depth[t]).max().unwrap_or(0);
                if d > MAX_REQUIREMENT_DEPTH {
                    return Err(ParseError::ChainTooLong {
                        element: names[node].to_string(),
                        limit: MAX_REQUIREMENT_DEPTH,
                    });
                }
                depth[node] = d;
                state[node] = 2;
                stack.pop();
            }
        }
    }
    Ok(())
}
