//! BPMN 2.0 XML (with `zeebe:` extension elements) to executable `Process`es,
//! with the validation Zeebe applies before it accepts a deployment.
//!
//! The nesting depth of the XML is checked first without recursion (see
//! [`dmn::xml_depth`]), which bounds every recursion below. Parsing walks
//! `definitions/process` recursively (sub-processes are scopes),
//! collects flow nodes and sequence flows per scope, resolves references and
//! then validates. Every problem is collected (not only the first) and names
//! the resource, the element id and what would be accepted. Processes with
//! `isExecutable="false"` are skipped, as Zeebe does.

use crate::expression::Expression;
use crate::model::{
    Behavior, CallDefinition, CalledDecision, Element, EventDefinition, JobDefinition, Mapping,
    MultiInstanceDefinition, Process, ScriptDefinition, SequenceFlow, TimerDefinition,
    UserTaskDefinition, DEFAULT_JOB_RETRIES, USER_TASK_JOB_TYPE,
};
use crate::record::{BpmnElementType, BpmnEventType};
use crate::timer::{Schedule, TimerKind};
use roxmltree::Node;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;
use thiserror::Error;

/// BPMN model namespace.
pub const BPMN_NS: &str = "http://www.omg.org/spec/BPMN/20100524/MODEL";
/// Zeebe extension namespace.
pub const ZEEBE_NS: &str = "http://camunda.org/schema/zeebe/1.0";
/// Largest BPMN resource accepted.
pub const MAX_RESOURCE_BYTES: usize = 4 * 1024 * 1024;
/// Most flow nodes plus sequence flows in one process.
pub const MAX_ELEMENTS_PER_PROCESS: usize = 10_000;

const SUPPORTED: &str = "supported are: startEvent, endEvent, intermediateThrowEvent, \
intermediateCatchEvent, boundaryEvent (with timer, message, signal, error, escalation or \
terminate definitions where BPMN allows them), task, manualTask, serviceTask, sendTask and \
businessRuleTask (zeebe:calledDecision or zeebe:taskDefinition), userTask (job-based, or zeebe:userTask), scriptTask (zeebe:script or \
zeebe:taskDefinition), receiveTask, callActivity, exclusiveGateway, parallelGateway, \
inclusiveGateway, eventBasedGateway, subProcess (embedded and event sub-process), \
multiInstanceLoopCharacteristics";

/// One problem in a BPMN resource.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("'{resource}': element '{element_id}': {problem}")]
pub struct ModelError {
    /// Resource (file) name.
    pub resource: String,
    /// Id of the offending element (or of the definitions when none applies).
    pub element_id: String,
    /// What is wrong and what is accepted.
    pub problem: String,
}

/// All problems found in a resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelErrors(pub Vec<ModelError>);

impl fmt::Display for ModelErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ModelErrors {}

struct Errors<'a> {
    resource: &'a str,
    list: Vec<ModelError>,
}

impl Errors<'_> {
    fn add(&mut self, element_id: &str, problem: impl Into<String>) {
        self.list.push(ModelError {
            resource: self.resource.to_string(),
            element_id: element_id.to_string(),
            problem: problem.into(),
        });
    }
}

/// Parses and validates a BPMN resource into its executable processes.
pub fn parse_bpmn(resource: &str, xml: &[u8]) -> Result<Vec<Process>, ModelErrors> {
    let mut errors = Errors {
        resource,
        list: Vec::new(),
    };
    let fail = |errors: Errors, id: &str, problem: String| {
        let mut errors = errors;
        errors.add(id, problem);
        Err(ModelErrors(errors.list))
    };
    if xml.len() > MAX_RESOURCE_BYTES {
        return fail(
            errors,
            "",
            format!(
                "resource of {} bytes exceeds {MAX_RESOURCE_BYTES} bytes",
                xml.len()
            ),
        );
    }
    let text = match std::str::from_utf8(xml) {
        Ok(t) => t,
        Err(e) => return fail(errors, "", format!("resource is not UTF-8: {e}")),
    };
    // The XML parser recurses once per nesting level: measure the depth
    // first, without recursion.
    if let Err(deep) = dmn::xml_depth::check_depth(xml, dmn::xml_depth::MAX_XML_DEPTH) {
        return fail(
            errors,
            "",
            format!(
                "elements nest more than {} levels deep (line {}); \
                 at most {} levels are accepted",
                deep.limit, deep.line, deep.limit
            ),
        );
    }
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        ..Default::default()
    };
    let doc = match roxmltree::Document::parse_with_options(text, options) {
        Ok(d) => d,
        Err(e) => return fail(errors, "", format!("not well-formed XML: {e}")),
    };
    let root = doc.root_element();
    if !is_bpmn(root, "definitions") {
        return fail(
            errors,
            root.tag_name().name(),
            "root element must be bpmn:definitions".to_string(),
        );
    }
    let defs = definitions(root);
    let mut processes = Vec::new();
    let mut seen_any_process = false;
    for node in root.children().filter(|n| is_bpmn(*n, "process")) {
        seen_any_process = true;
        if node.attribute("isExecutable") != Some("true") {
            continue;
        }
        if let Some(p) = build_process(node, &defs, &mut errors) {
            processes.push(p);
        }
    }
    if processes.is_empty() && errors.list.is_empty() {
        let id = root.attribute("id").unwrap_or("definitions");
        let problem = if seen_any_process {
            "no executable process: set isExecutable=\"true\" on a process"
        } else {
            "the resource contains no bpmn:process"
        };
        errors.add(id, problem);
    }
    if errors.list.is_empty() {
        Ok(processes)
    } else {
        Err(ModelErrors(errors.list))
    }
}

fn is_bpmn(node: Node, name: &str) -> bool {
    node.is_element()
        && node.tag_name().namespace() == Some(BPMN_NS)
        && node.tag_name().name() == name
}

fn is_zeebe(node: Node, name: &str) -> bool {
    node.is_element()
        && node.tag_name().namespace() == Some(ZEEBE_NS)
        && node.tag_name().name() == name
}

fn child<'a, 'i>(node: Node<'a, 'i>, pred: impl Fn(Node) -> bool) -> Option<Node<'a, 'i>> {
    node.children().find(|n| pred(*n))
}

fn extension<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    child(node, |n| is_bpmn(n, "extensionElements"))
        .and_then(|ext| child(ext, |n| is_zeebe(n, name)))
}

struct RawFlow {
    id: Arc<str>,
    source: String,
    target: String,
    scope: u32,
    condition: Option<String>,
}

/// Root-level definitions that events refer to, by id.
#[derive(Default)]
struct Definitions {
    /// message id -> (name, zeebe:subscription correlationKey)
    messages: BTreeMap<String, (String, Option<String>)>,
    /// error id -> errorCode
    errors: BTreeMap<String, Option<Arc<str>>>,
    /// signal id -> name
    signals: BTreeMap<String, String>,
    /// escalation id -> escalationCode
    escalations: BTreeMap<String, Option<Arc<str>>>,
}

fn definitions(root: Node) -> Definitions {
    let mut d = Definitions::default();
    let code = |n: Node, attr: &str| {
        n.attribute(attr)
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(Arc::from)
    };
    for n in root.children().filter(|n| n.is_element()) {
        let Some(id) = n.attribute("id") else {
            continue;
        };
        if is_bpmn(n, "message") {
            let key = extension(n, "subscription")
                .and_then(|s| s.attribute("correlationKey"))
                .map(str::to_string);
            d.messages.insert(
                id.to_string(),
                (n.attribute("name").unwrap_or("").to_string(), key),
            );
        } else if is_bpmn(n, "error") {
            d.errors.insert(id.to_string(), code(n, "errorCode"));
        } else if is_bpmn(n, "signal") {
            d.signals.insert(
                id.to_string(),
                n.attribute("name").unwrap_or("").to_string(),
            );
        } else if is_bpmn(n, "escalation") {
            d.escalations
                .insert(id.to_string(), code(n, "escalationCode"));
        }
    }
    d
}

struct Builder<'e, 'r, 'd> {
    errors: &'e mut Errors<'r>,
    defs: &'d Definitions,
    elements: Vec<Element>,
    raw_flows: Vec<RawFlow>,
    ids: BTreeSet<String>,
    defaults: Vec<(u32, String)>,
    /// (boundary event, id of the activity it is attached to)
    attachments: Vec<(u32, String)>,
    /// (sourceRef, targetRef) of associations (compensation handlers)
    associations: Vec<(String, String)>,
}

fn build_process(node: Node, defs: &Definitions, errors: &mut Errors) -> Option<Process> {
    let Some(id) = node.attribute("id") else {
        errors.add("", "bpmn:process has no id");
        return None;
    };
    let before = errors.list.len();
    let mut b = Builder {
        errors,
        defs,
        elements: Vec::new(),
        raw_flows: Vec::new(),
        ids: BTreeSet::new(),
        defaults: Vec::new(),
        attachments: Vec::new(),
        associations: Vec::new(),
    };
    b.ids.insert(id.to_string());
    b.elements.push(new_element(
        id,
        BpmnElementType::Process,
        Behavior::Container,
        None,
    ));
    match crate::listeners::parse(node, "process", "", false) {
        Ok(listeners) => b.elements[0].listeners = listeners,
        Err(messages) => {
            for m in messages {
                b.errors.add(id, m);
            }
        }
    }
    b.scope(node, 0);
    let Builder {
        errors,
        mut elements,
        raw_flows,
        defaults,
        attachments,
        associations,
        ..
    } = b;
    if elements.len() + raw_flows.len() > MAX_ELEMENTS_PER_PROCESS {
        errors.add(
            id,
            format!("more than {MAX_ELEMENTS_PER_PROCESS} elements in one process"),
        );
        return None;
    }
    // The inner activity of a multi-instance body shares the body's id; the
    // id names the body.
    let element_index: HashMap<Arc<str>, u32, crate::model::FnvBuild> = elements
        .iter()
        .enumerate()
        .filter(|(_, e)| {
            e.flow_scope.is_none_or(|s| {
                elements[s as usize].element_type != BpmnElementType::MultiInstanceBody
            })
        })
        .map(|(i, e)| (e.id.clone(), i as u32))
        .collect();
    for (boundary, target) in attachments {
        match element_index.get(target.as_str()).copied() {
            Some(t)
                if elements[t as usize].flow_scope == elements[boundary as usize].flow_scope
                    && !matches!(
                        elements[t as usize].element_type,
                        BpmnElementType::StartEvent
                            | BpmnElementType::EndEvent
                            | BpmnElementType::BoundaryEvent
                            | BpmnElementType::IntermediateCatchEvent
                            | BpmnElementType::IntermediateThrowEvent
                            | BpmnElementType::ExclusiveGateway
                            | BpmnElementType::ParallelGateway
                            | BpmnElementType::InclusiveGateway
                            | BpmnElementType::EventBasedGateway
                    ) =>
            {
                elements[boundary as usize].attached_to = Some(t);
                elements[t as usize].boundary_events.push(boundary);
            }
            _ => errors.add(
                &elements[boundary as usize].id.clone(),
                format!("attachedToRef '{target}' is not an activity in the same scope"),
            ),
        }
    }
    for (from, to) in associations {
        let (Some(b), Some(h)) = (
            element_index.get(from.as_str()).copied(),
            element_index.get(to.as_str()).copied(),
        ) else {
            continue;
        };
        let boundary = &elements[b as usize];
        if !matches!(boundary.event, Some(EventDefinition::Compensation { .. })) {
            continue;
        }
        let Some(activity) = boundary.attached_to.filter(|&a| a != u32::MAX) else {
            continue;
        };
        if !elements[h as usize].for_compensation {
            errors.add(
                &elements[h as usize].id.clone(),
                "a compensation boundary event must be associated with an activity marked isForCompensation=\"true\"",
            );
            continue;
        }
        elements[activity as usize].compensation_handler = Some(h);
    }
    for e in elements.iter() {
        if e.element_type == BpmnElementType::BoundaryEvent
            && matches!(e.event, Some(EventDefinition::Compensation { .. }))
            && e.attached_to.is_some_and(|a| {
                a != u32::MAX && elements[a as usize].compensation_handler.is_none()
            })
        {
            errors.add(
                &e.id,
                "a compensation boundary event must be associated with a compensation handler",
            );
        }
    }
    let mut flows = Vec::new();
    let mut flow_index: BTreeMap<String, u32> = BTreeMap::new();
    for raw in raw_flows {
        let source = element_index.get(raw.source.as_str()).copied();
        let target = element_index.get(raw.target.as_str()).copied();
        let (Some(source), Some(target)) = (source, target) else {
            errors.add(
                &raw.id,
                format!(
                    "sequence flow refers to unknown or unsupported elements (sourceRef '{}', targetRef '{}')",
                    raw.source, raw.target
                ),
            );
            continue;
        };
        if elements[source as usize].flow_scope != Some(raw.scope)
            || elements[target as usize].flow_scope != Some(raw.scope)
        {
            errors.add(
                &raw.id,
                "sequence flow must connect elements of its own scope",
            );
            continue;
        }
        let condition = match raw.condition {
            None => None,
            Some(text) => {
                let source_el = &elements[source as usize];
                if !matches!(
                    source_el.behavior,
                    Behavior::Exclusive | Behavior::Inclusive
                ) {
                    errors.add(
                        &raw.id,
                        "conditions are only supported on flows leaving exclusive and inclusive gateways",
                    );
                    None
                } else {
                    match Expression::parse_feel(&text) {
                        Ok(e) => Some(e),
                        Err(e) => {
                            errors.add(&raw.id, format!("condition: {e}"));
                            None
                        }
                    }
                }
            }
        };
        let index = flows.len() as u32;
        flow_index.insert(raw.id.to_string(), index);
        elements[source as usize].outgoing.push(index);
        elements[target as usize].incoming.push(index);
        flows.push(SequenceFlow {
            id: raw.id,
            source,
            target,
            condition,
        });
    }
    for (el, default_id) in defaults {
        match flow_index.get(&default_id) {
            Some(&f) if flows[f as usize].source == el => {
                elements[el as usize].default_flow = Some(f)
            }
            _ => errors.add(
                &elements[el as usize].id,
                format!(
                    "default flow '{default_id}' is not an outgoing sequence flow of the gateway"
                ),
            ),
        }
    }
    validate(&mut elements, &flows, errors);
    compute_inclusive_reachability(&mut elements, &flows);
    compute_subscriptions(&mut elements, &flows);
    if errors.list.len() > before {
        return None;
    }
    let flow_index = flows
        .iter()
        .enumerate()
        .map(|(i, f)| (f.id.clone(), i as u32))
        .collect();
    let version_tag = extension(node, "versionTag")
        .and_then(|v| v.attribute("value"))
        .filter(|v| !v.trim().is_empty())
        .map(Arc::from);
    Some(Process {
        bpmn_process_id: Arc::from(id),
        version_tag,
        elements,
        flows,
        element_index,
        flow_index,
    })
}

fn new_element(
    id: &str,
    element_type: BpmnElementType,
    behavior: Behavior,
    flow_scope: Option<u32>,
) -> Element {
    Element {
        id: Arc::from(id),
        element_type,
        event_type: BpmnEventType::None,
        behavior,
        flow_scope,
        incoming: Vec::new(),
        outgoing: Vec::new(),
        default_flow: None,
        start_event: None,
        inputs: Vec::new(),
        outputs: Vec::new(),
        reachable_from: Vec::new(),
        event: None,
        attached_to: None,
        interrupting: true,
        boundary_events: Vec::new(),
        event_subprocesses: Vec::new(),
        subscriptions: Vec::new(),
        event_starts: Vec::new(),
        compensation_handler: None,
        for_compensation: false,
        listeners: None,
    }
}

const IGNORED: &[&str] = &[
    "documentation",
    "extensionElements",
    "incoming",
    "outgoing",
    "textAnnotation",
    "association",
    "group",
    "laneSet",
    "dataObject",
    "dataObjectReference",
    "dataStoreReference",
    "ioSpecification",
    "property",
    "dataInputAssociation",
    "dataOutputAssociation",
    "category",
    // Read by the element they belong to (a sub-process's children are
    // walked as a scope).
    "multiInstanceLoopCharacteristics",
    "standardLoopCharacteristics",
    "completionCondition",
];

impl Builder<'_, '_, '_> {
    fn scope(&mut self, node: Node, scope: u32) {
        for n in node.children().filter(|n| n.is_element()) {
            if n.tag_name().namespace() != Some(BPMN_NS) {
                continue;
            }
            let tag = n.tag_name().name();
            if tag == "association" {
                if let (Some(from), Some(to)) = (n.attribute("sourceRef"), n.attribute("targetRef"))
                {
                    self.associations.push((from.to_string(), to.to_string()));
                }
                continue;
            }
            if IGNORED.contains(&tag) {
                continue;
            }
            let Some(id) = n.attribute("id") else {
                let scope_id = self.elements[scope as usize].id.clone();
                self.errors
                    .add(&scope_id, format!("a bpmn:{tag} has no id"));
                continue;
            };
            if !self.ids.insert(id.to_string()) {
                self.errors
                    .add(id, "the id is used by more than one element");
                continue;
            }
            if tag == "sequenceFlow" {
                let condition = child(n, |c| is_bpmn(c, "conditionExpression"))
                    .map(|c| c.text().unwrap_or("").trim().to_string());
                self.raw_flows.push(RawFlow {
                    id: Arc::from(id),
                    source: n.attribute("sourceRef").unwrap_or("").to_string(),
                    target: n.attribute("targetRef").unwrap_or("").to_string(),
                    scope,
                    condition,
                });
                continue;
            }
            self.flow_node(n, tag, id, scope);
        }
    }

    fn flow_node(&mut self, n: Node, tag: &str, id: &str, scope: u32) {
        if let Some(lc) = n
            .children()
            .find(|c| is_bpmn(*c, "standardLoopCharacteristics"))
        {
            self.errors.add(
                id,
                format!(
                    "bpmn:{} on bpmn:{tag} is not supported; use bpmn:multiInstanceLoopCharacteristics",
                    lc.tag_name().name()
                ),
            );
            return;
        }
        let event_defs: Vec<Node> = n
            .children()
            .filter(|c| c.is_element() && c.tag_name().name().ends_with("EventDefinition"))
            .collect();
        let def_names: Vec<&str> = event_defs.iter().map(|c| c.tag_name().name()).collect();
        if event_defs.len() > 1 {
            self.errors.add(
                id,
                format!(
                    "bpmn:{tag} has several event definitions (bpmn:{}); multiple events are not supported",
                    def_names.join(", bpmn:")
                ),
            );
            return;
        }
        let def_name = def_names.first().copied().unwrap_or("");
        let allowed = |this: &mut Self, list: &[&str], position: &str| -> bool {
            if def_name.is_empty() && list.contains(&"") || list.contains(&def_name) {
                return true;
            }
            let supported: Vec<String> = list
                .iter()
                .map(|d| {
                    if d.is_empty() {
                        "none".to_string()
                    } else {
                        d.trim_end_matches("EventDefinition").to_string()
                    }
                })
                .collect();
            let found = if def_name.is_empty() {
                "no event definition".to_string()
            } else {
                format!("bpmn:{def_name}")
            };
            this.errors.add(
                id,
                format!(
                    "bpmn:{tag} with {found} is not supported {position}; supported are: {}",
                    supported.join(", ")
                ),
            );
            false
        };
        let mut event = None;
        let mut event_type = BpmnEventType::None;
        if let Some(d) = event_defs.first() {
            if def_name != "terminateEventDefinition" {
                match self.event_definition(*d, id, tag) {
                    Some((e, t)) => {
                        event = Some(e);
                        event_type = t;
                    }
                    None => return,
                }
            }
        }
        let in_event_subprocess =
            self.elements[scope as usize].element_type == BpmnElementType::EventSubProcess;
        let mut attached_to = None;
        let mut interrupting = true;
        let (element_type, behavior) = match tag {
            "startEvent" => {
                let ok = if in_event_subprocess {
                    allowed(
                        self,
                        &[
                            "timerEventDefinition",
                            "messageEventDefinition",
                            "signalEventDefinition",
                            "errorEventDefinition",
                            "escalationEventDefinition",
                        ],
                        "in an event sub-process",
                    )
                } else if scope == 0 {
                    allowed(
                        self,
                        &[
                            "",
                            "timerEventDefinition",
                            "messageEventDefinition",
                            "signalEventDefinition",
                        ],
                        "as a process start event",
                    )
                } else {
                    allowed(self, &[""], "in an embedded sub-process")
                };
                if !ok {
                    return;
                }
                interrupting = n.attribute("isInterrupting") != Some("false");
                if matches!(event, Some(EventDefinition::Error { .. })) && !interrupting {
                    self.errors
                        .add(id, "an error start event must be interrupting");
                    return;
                }
                (BpmnElementType::StartEvent, Behavior::PassThrough)
            }
            "endEvent" => {
                if !allowed(
                    self,
                    &[
                        "",
                        "terminateEventDefinition",
                        "errorEventDefinition",
                        "escalationEventDefinition",
                        "signalEventDefinition",
                        "messageEventDefinition",
                        "compensateEventDefinition",
                    ],
                    "as an end event",
                ) {
                    return;
                }
                if def_name == "terminateEventDefinition" {
                    event_type = BpmnEventType::Terminate;
                    (BpmnElementType::EndEvent, Behavior::Terminate)
                } else {
                    let Some(b) = self.throw_behavior(n, id, &event) else {
                        return;
                    };
                    (BpmnElementType::EndEvent, b)
                }
            }
            "intermediateThrowEvent" => {
                if !allowed(
                    self,
                    &[
                        "",
                        "escalationEventDefinition",
                        "signalEventDefinition",
                        "messageEventDefinition",
                        "compensateEventDefinition",
                        "linkEventDefinition",
                    ],
                    "as an intermediate throw event",
                ) {
                    return;
                }
                let Some(b) = self.throw_behavior(n, id, &event) else {
                    return;
                };
                (BpmnElementType::IntermediateThrowEvent, b)
            }
            "intermediateCatchEvent" => {
                if !allowed(
                    self,
                    &[
                        "timerEventDefinition",
                        "messageEventDefinition",
                        "signalEventDefinition",
                        "linkEventDefinition",
                    ],
                    "as an intermediate catch event",
                ) {
                    return;
                }
                if matches!(event, Some(EventDefinition::Link { .. })) {
                    (
                        BpmnElementType::IntermediateCatchEvent,
                        Behavior::PassThrough,
                    )
                } else {
                    (BpmnElementType::IntermediateCatchEvent, Behavior::Catch)
                }
            }
            "boundaryEvent" => {
                if !allowed(
                    self,
                    &[
                        "timerEventDefinition",
                        "messageEventDefinition",
                        "signalEventDefinition",
                        "errorEventDefinition",
                        "escalationEventDefinition",
                        "compensateEventDefinition",
                    ],
                    "as a boundary event",
                ) {
                    return;
                }
                let Some(target) = n.attribute("attachedToRef") else {
                    self.errors
                        .add(id, "a boundary event must have an attachedToRef");
                    return;
                };
                interrupting = n.attribute("cancelActivity") != Some("false");
                if matches!(event, Some(EventDefinition::Error { .. })) && !interrupting {
                    self.errors
                        .add(id, "an error boundary event must be interrupting");
                    return;
                }
                self.attachments
                    .push((self.elements.len() as u32, target.to_string()));
                attached_to = Some(u32::MAX);
                (BpmnElementType::BoundaryEvent, Behavior::PassThrough)
            }
            "receiveTask" => {
                let Some(message) = self.message_ref(n.attribute("messageRef"), id, true) else {
                    return;
                };
                event = Some(message);
                event_type = BpmnEventType::Message;
                (BpmnElementType::ReceiveTask, Behavior::Catch)
            }
            "eventBasedGateway" => (BpmnElementType::EventBasedGateway, Behavior::EventGateway),
            "callActivity" => {
                let Some(called) = extension(n, "calledElement") else {
                    self.errors.add(
                        id,
                        "a call activity must have a zeebe:calledElement with a processId",
                    );
                    return;
                };
                let process_id = called.attribute("processId").unwrap_or("");
                if process_id.trim().is_empty() {
                    self.errors
                        .add(id, "zeebe:calledElement has an empty processId");
                    return;
                }
                let Some(process_id) = self.expression(id, "processId", process_id) else {
                    return;
                };
                let binding = match crate::forms::resource_binding(
                    "calledElement",
                    called.attribute("bindingType"),
                    called.attribute("versionTag"),
                ) {
                    Ok(binding) => binding,
                    Err(problem) => {
                        self.errors.add(id, problem);
                        return;
                    }
                };
                (
                    BpmnElementType::CallActivity,
                    Behavior::CallActivity(CallDefinition {
                        process_id,
                        propagate_all_child_variables: called
                            .attribute("propagateAllChildVariables")
                            != Some("false"),
                        propagate_all_parent_variables: called
                            .attribute("propagateAllParentVariables")
                            != Some("false"),
                        binding,
                    }),
                )
            }
            _ => {
                if !def_names.is_empty() {
                    self.errors.add(
                        id,
                        format!("bpmn:{def_name} on bpmn:{tag} is not supported"),
                    );
                    return;
                }
                match self.activity(n, tag, id) {
                    Some(x) => x,
                    None => return,
                }
            }
        };
        let mi = n
            .children()
            .find(|c| is_bpmn(*c, "multiInstanceLoopCharacteristics"));
        let mut body_index = None;
        if let Some(lc) = mi {
            let Some(mut def) = self.multi_instance(lc, id) else {
                return;
            };
            let body = self.elements.len() as u32;
            def.inner = body + 1;
            let mut element = new_element(
                id,
                BpmnElementType::MultiInstanceBody,
                Behavior::MultiInstance(def),
                Some(scope),
            );
            element.event_type = event_type;
            self.elements.push(element);
            body_index = Some(body);
        }
        let index = self.elements.len() as u32;
        let mut element = new_element(id, element_type, behavior, body_index.or(Some(scope)));
        element.event_type = event_type;
        element.event = event;
        element.attached_to = attached_to;
        element.interrupting = interrupting;
        element.for_compensation = n.attribute("isForCompensation") == Some("true");
        let (inputs, outputs) = self.io_mappings(n, id);
        element.inputs = inputs;
        element.outputs = outputs;
        let camunda_user_task = tag == "userTask" && extension(n, "userTask").is_some();
        match crate::listeners::parse(n, tag, def_name, camunda_user_task) {
            Ok(listeners) => element.listeners = listeners,
            Err(messages) => {
                for m in messages {
                    self.errors.add(id, m);
                }
            }
        }
        let is_container = matches!(element.behavior, Behavior::Container | Behavior::AdHoc(_));
        self.elements.push(element);
        if is_container {
            self.scope(n, index);
        }
    }

    /// Job-worker tasks, script tasks, pass-through tasks, gateways and sub-processes.
    fn activity(&mut self, n: Node, tag: &str, id: &str) -> Option<(BpmnElementType, Behavior)> {
        Some(match tag {
            "task" => (BpmnElementType::Task, Behavior::PassThrough),
            "manualTask" => (BpmnElementType::ManualTask, Behavior::PassThrough),
            "serviceTask" | "sendTask" | "businessRuleTask" => {
                let element_type = match tag {
                    "serviceTask" => BpmnElementType::ServiceTask,
                    "sendTask" => BpmnElementType::SendTask,
                    _ => BpmnElementType::BusinessRuleTask,
                };
                if tag == "businessRuleTask" {
                    if let Some(called) = extension(n, "calledDecision") {
                        return Some((
                            element_type,
                            Behavior::Decision(self.called_decision(called, id)?),
                        ));
                    }
                }
                if let Some(publish) = extension(n, "publishMessage") {
                    let name = self.referenced_message_name(n);
                    return match crate::publish::publish_definition(publish, name.as_deref()) {
                        Ok(p) => Some((element_type, Behavior::PublishMessage(Box::new(p)))),
                        Err(e) => {
                            self.errors.add(id, e);
                            None
                        }
                    };
                }
                (element_type, Behavior::Job(self.job_definition(n, id)?))
            }
            "userTask" => {
                if extension(n, "userTask").is_some() {
                    return Some((
                        BpmnElementType::UserTask,
                        Behavior::UserTask(Box::new(self.user_task(n, id)?)),
                    ));
                }
                (
                    BpmnElementType::UserTask,
                    Behavior::Job(self.user_task_job(n, id)?),
                )
            }
            "scriptTask" => {
                if let Some(script) = extension(n, "script") {
                    let expression = script.attribute("expression").unwrap_or("");
                    let result_variable = script.attribute("resultVariable").unwrap_or("");
                    if result_variable.is_empty() {
                        self.errors
                            .add(id, "zeebe:script must have a resultVariable");
                        return None;
                    }
                    match Expression::parse_feel(expression) {
                        Ok(expression) => (
                            BpmnElementType::ScriptTask,
                            Behavior::Script(ScriptDefinition {
                                expression,
                                result_variable: result_variable.to_string(),
                            }),
                        ),
                        Err(e) => {
                            self.errors.add(id, format!("zeebe:script expression: {e}"));
                            return None;
                        }
                    }
                } else if extension(n, "taskDefinition").is_some() {
                    (
                        BpmnElementType::ScriptTask,
                        Behavior::Job(self.job_definition(n, id)?),
                    )
                } else {
                    self.errors.add(
                        id,
                        "a script task must have a zeebe:script (expression, resultVariable) or a zeebe:taskDefinition",
                    );
                    return None;
                }
            }
            "exclusiveGateway" | "inclusiveGateway" | "parallelGateway" => {
                let (t, b) = match tag {
                    "exclusiveGateway" => (BpmnElementType::ExclusiveGateway, Behavior::Exclusive),
                    "inclusiveGateway" => (BpmnElementType::InclusiveGateway, Behavior::Inclusive),
                    _ => (BpmnElementType::ParallelGateway, Behavior::Parallel),
                };
                if let Some(default) = n.attribute("default") {
                    if tag == "parallelGateway" {
                        self.errors
                            .add(id, "a parallel gateway cannot have a default flow");
                        return None;
                    }
                    self.defaults
                        .push((self.elements.len() as u32, default.to_string()));
                }
                (t, b)
            }
            "adHocSubProcess" => match crate::adhoc::ad_hoc_definition(n) {
                Ok(a) => (
                    BpmnElementType::AdHocSubProcess,
                    Behavior::AdHoc(Box::new(a)),
                ),
                Err(e) => {
                    self.errors.add(id, e);
                    return None;
                }
            },
            "subProcess" => {
                if n.attribute("triggeredByEvent") == Some("true") {
                    (BpmnElementType::EventSubProcess, Behavior::Container)
                } else {
                    (BpmnElementType::SubProcess, Behavior::Container)
                }
            }
            other => {
                self.errors
                    .add(id, format!("bpmn:{other} is not supported; {SUPPORTED}"));
                return None;
            }
        })
    }

    /// What a throw or end event with `event` does.
    fn throw_behavior(
        &mut self,
        n: Node,
        id: &str,
        event: &Option<EventDefinition>,
    ) -> Option<Behavior> {
        Some(match event {
            None => Behavior::PassThrough,
            Some(EventDefinition::Error { code: Some(code) }) => Behavior::ThrowError(code.clone()),
            Some(EventDefinition::Error { code: None }) => {
                self.errors.add(
                    id,
                    "an error end event must reference a bpmn:error with an errorCode",
                );
                return None;
            }
            Some(EventDefinition::Escalation { code: Some(code) }) => {
                Behavior::ThrowEscalation(code.clone())
            }
            Some(EventDefinition::Escalation { code: None }) => {
                self.errors.add(
                    id,
                    "an escalation throw event must reference a bpmn:escalation with an escalationCode",
                );
                return None;
            }
            Some(EventDefinition::Signal { name }) => Behavior::ThrowSignal(name.clone()),
            Some(EventDefinition::Compensation { activity }) => {
                Behavior::ThrowCompensation(activity.clone())
            }
            // The catch event is resolved once the scope is read.
            Some(EventDefinition::Link { .. }) => Behavior::ThrowLink(u32::MAX),
            Some(EventDefinition::Message { .. }) => {
                let definition = child(n, |c| is_bpmn(c, "messageEventDefinition"));
                let publish = definition
                    .and_then(|d| extension(d, "publishMessage"))
                    .or_else(|| extension(n, "publishMessage"));
                match (publish, extension(n, "taskDefinition")) {
                    (Some(publish), None) => {
                        let name = definition.and_then(|d| self.referenced_message_name(d));
                        match crate::publish::publish_definition(publish, name.as_deref()) {
                            Ok(p) => Behavior::PublishMessage(Box::new(p)),
                            Err(e) => {
                                self.errors.add(id, e);
                                return None;
                            }
                        }
                    }
                    (None, Some(_)) => Behavior::Job(self.job_definition(n, id)?),
                    _ => {
                        self.errors.add(
                            id,
                            "a message throw event must have either one zeebe:publishMessage (the engine publishes the message) or one zeebe:taskDefinition (a job worker sends it)",
                        );
                        return None;
                    }
                }
            }
            Some(EventDefinition::Timer(_)) => {
                self.errors.add(
                    id,
                    "a timer cannot be thrown; use an intermediate catch event",
                );
                return None;
            }
        })
    }

    fn event_definition(
        &mut self,
        d: Node,
        id: &str,
        tag: &str,
    ) -> Option<(EventDefinition, BpmnEventType)> {
        let catching = matches!(
            tag,
            "intermediateCatchEvent" | "boundaryEvent" | "startEvent"
        );
        match d.tag_name().name() {
            "timerEventDefinition" => {
                let found: Vec<(TimerKind, Node)> = d
                    .children()
                    .filter_map(|c| match c.tag_name().name() {
                        "timeDate" if c.is_element() => Some((TimerKind::Date, c)),
                        "timeDuration" if c.is_element() => Some((TimerKind::Duration, c)),
                        "timeCycle" if c.is_element() => Some((TimerKind::Cycle, c)),
                        _ => None,
                    })
                    .collect();
                let [(kind, node)] = found.as_slice() else {
                    self.errors.add(
                        id,
                        "a timer event definition must have exactly one of timeDate, timeDuration, timeCycle",
                    );
                    return None;
                };
                let text = node.text().unwrap_or("").trim();
                let expression = self.expression(id, "timer", text)?;
                if let Expression::Static(s) = &expression {
                    if let Err(e) = Schedule::parse(*kind, s, 0) {
                        self.errors.add(id, format!("timer: {e}"));
                        return None;
                    }
                }
                if *kind == TimerKind::Cycle && tag == "intermediateCatchEvent" {
                    self.errors.add(
                        id,
                        "an intermediate timer catch event takes timeDate or timeDuration, not timeCycle",
                    );
                    return None;
                }
                Some((
                    EventDefinition::Timer(TimerDefinition {
                        kind: *kind,
                        expression,
                    }),
                    BpmnEventType::Timer,
                ))
            }
            "messageEventDefinition" => {
                if !catching {
                    // A job worker sends the message: no bpmn:message needed.
                    let none = Expression::Static(Arc::from(""));
                    return Some((
                        EventDefinition::Message {
                            name: none,
                            correlation_key: None,
                        },
                        BpmnEventType::Message,
                    ));
                }
                let needs_key = tag != "startEvent";
                let message = self.message_ref(d.attribute("messageRef"), id, needs_key)?;
                Some((message, BpmnEventType::Message))
            }
            "signalEventDefinition" => {
                let name = d
                    .attribute("signalRef")
                    .and_then(|r| self.defs.signals.get(r).cloned());
                let Some(name) = name.filter(|n| !n.trim().is_empty()) else {
                    self.errors.add(
                        id,
                        "a signal event must reference a bpmn:signal with a name (signalRef)",
                    );
                    return None;
                };
                let name = self.expression(id, "signal name", &name)?;
                Some((EventDefinition::Signal { name }, BpmnEventType::Signal))
            }
            "linkEventDefinition" => {
                let name = d.attribute("name").unwrap_or("").trim();
                if name.is_empty() {
                    self.errors.add(id, "a link event must have a name");
                    return None;
                }
                Some((
                    EventDefinition::Link {
                        name: Arc::from(name),
                    },
                    BpmnEventType::Link,
                ))
            }
            "compensateEventDefinition" => Some((
                EventDefinition::Compensation {
                    activity: d.attribute("activityRef").map(Arc::from),
                },
                BpmnEventType::Compensation,
            )),
            "errorEventDefinition" => {
                let code = self.code_ref(d, id, "errorRef", "error")?;
                Some((EventDefinition::Error { code }, BpmnEventType::Error))
            }
            "escalationEventDefinition" => {
                let code = self.code_ref(d, id, "escalationRef", "escalation")?;
                Some((
                    EventDefinition::Escalation { code },
                    BpmnEventType::Escalation,
                ))
            }
            other => {
                self.errors.add(
                    id,
                    format!("bpmn:{other} is not supported; supported are timer, message, signal, error, escalation, compensation, link and terminate events"),
                );
                None
            }
        }
    }

    /// The code of the bpmn:error or bpmn:escalation that `attribute` names;
    /// `Some(None)` when there is no reference (catch every code).
    fn code_ref(
        &mut self,
        d: Node,
        id: &str,
        attribute: &str,
        what: &str,
    ) -> Option<Option<Arc<str>>> {
        let Some(r) = d.attribute(attribute) else {
            return Some(None);
        };
        let table = if what == "error" {
            &self.defs.errors
        } else {
            &self.defs.escalations
        };
        match table.get(r) {
            Some(code) => Some(code.clone()),
            None => {
                self.errors
                    .add(id, format!("{attribute} '{r}' names no bpmn:{what}"));
                None
            }
        }
    }

    /// Name of the `bpmn:message` that `node`'s `messageRef` names.
    fn referenced_message_name(&self, node: Node) -> Option<String> {
        let reference = node.attribute("messageRef")?;
        self.defs
            .messages
            .get(reference)
            .map(|(name, _)| name.to_string())
    }

    fn message_ref(
        &mut self,
        reference: Option<&str>,
        id: &str,
        needs_key: bool,
    ) -> Option<EventDefinition> {
        let Some((name, key)) = reference.and_then(|r| self.defs.messages.get(r).cloned()) else {
            self.errors.add(
                id,
                "a message event must reference a bpmn:message with a name (messageRef)",
            );
            return None;
        };
        if name.trim().is_empty() {
            self.errors
                .add(id, "the referenced bpmn:message has no name");
            return None;
        }
        let name = self.expression(id, "message name", &name)?;
        let correlation_key = match key {
            Some(k) if !k.trim().is_empty() => Some(self.expression(id, "correlationKey", &k)?),
            _ if needs_key => {
                self.errors.add(
                    id,
                    "a message catch event needs a correlation key: zeebe:subscription correlationKey on its bpmn:message",
                );
                return None;
            }
            _ => None,
        };
        Some(EventDefinition::Message {
            name,
            correlation_key,
        })
    }

    fn multi_instance(&mut self, lc: Node, id: &str) -> Option<MultiInstanceDefinition> {
        let Some(z) = extension(lc, "loopCharacteristics") else {
            self.errors.add(
                id,
                "multi-instance needs zeebe:loopCharacteristics with an inputCollection",
            );
            return None;
        };
        let input = z.attribute("inputCollection").unwrap_or("");
        let input_collection = match Expression::parse_feel(input) {
            Ok(e) => e,
            Err(e) => {
                self.errors.add(id, format!("inputCollection: {e}"));
                return None;
            }
        };
        let name = |a: &str| {
            z.attribute(a)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let output_element = match z
            .attribute("outputElement")
            .filter(|s| !s.trim().is_empty())
        {
            Some(text) => Some(self.expression(id, "outputElement", text)?),
            None => None,
        };
        let output_collection = name("outputCollection");
        if output_collection.is_some() != output_element.is_some() {
            self.errors.add(
                id,
                "outputCollection and outputElement must be set together",
            );
            return None;
        }
        let completion_condition = match child(lc, |c| is_bpmn(c, "completionCondition")) {
            Some(c) => match Expression::parse_feel(c.text().unwrap_or("").trim()) {
                Ok(e) => Some(e),
                Err(e) => {
                    self.errors.add(id, format!("completionCondition: {e}"));
                    return None;
                }
            },
            None => None,
        };
        Some(MultiInstanceDefinition {
            inner: 0,
            sequential: lc.attribute("isSequential") == Some("true"),
            input_collection,
            input_element: name("inputElement"),
            output_collection,
            output_element,
            completion_condition,
        })
    }

    fn expression(&mut self, id: &str, what: &str, text: &str) -> Option<Expression> {
        match Expression::parse(text) {
            Ok(e) => Some(e),
            Err(e) => {
                self.errors.add(id, format!("{what}: {e}"));
                None
            }
        }
    }

    /// `zeebe:calledDecision decisionId resultVariable [bindingType versionTag]`.
    fn called_decision(&mut self, called: Node, id: &str) -> Option<CalledDecision> {
        let decision_id = called.attribute("decisionId").unwrap_or("");
        let result_variable = called.attribute("resultVariable").unwrap_or("");
        if decision_id.trim().is_empty() {
            self.errors
                .add(id, "zeebe:calledDecision has an empty decisionId");
            return None;
        }
        if result_variable.trim().is_empty() {
            self.errors
                .add(id, "zeebe:calledDecision has an empty resultVariable");
            return None;
        }
        let binding = match crate::forms::resource_binding(
            "calledDecision",
            called.attribute("bindingType"),
            called.attribute("versionTag"),
        ) {
            Ok(binding) => binding,
            Err(problem) => {
                self.errors.add(id, problem);
                return None;
            }
        };
        let decision_id = self.expression(id, "decisionId", decision_id)?;
        Some(CalledDecision {
            decision_id,
            result_variable: result_variable.to_string(),
            binding,
        })
    }

    fn job_definition(&mut self, n: Node, id: &str) -> Option<JobDefinition> {
        let Some(def) = extension(n, "taskDefinition") else {
            self.errors
                .add(id, "must have a zeebe:taskDefinition with a job type");
            return None;
        };
        let job_type = def.attribute("type").unwrap_or("");
        if job_type.trim().is_empty() {
            self.errors.add(
                id,
                "zeebe:taskDefinition has an empty job type; a job type (static or =FEEL) is required",
            );
            return None;
        }
        let retries = def.attribute("retries").unwrap_or(DEFAULT_JOB_RETRIES);
        let job_type = self.expression(id, "job type", job_type)?;
        let retries_expr = self.expression(id, "retries", retries)?;
        if retries_expr.is_static() && retries.trim().parse::<i32>().is_err() {
            self.errors.add(
                id,
                format!("retries '{retries}' is not a number or a FEEL expression"),
            );
            return None;
        }
        let mut headers = serde_json::Map::new();
        if let Some(h) = extension(n, "taskHeaders") {
            for header in h.children().filter(|c| is_zeebe(*c, "header")) {
                let key = header.attribute("key").unwrap_or("");
                if key.is_empty() {
                    self.errors.add(id, "a zeebe:header has no key");
                    return None;
                }
                headers.insert(
                    key.to_string(),
                    serde_json::Value::from(header.attribute("value").unwrap_or("")),
                );
            }
        }
        Some(JobDefinition {
            job_type,
            retries: retries_expr,
            custom_headers: Arc::from(serde_json::Value::Object(headers).to_string()),
            dynamic_headers: Vec::new(),
        })
    }

    fn user_task_job(&mut self, n: Node, id: &str) -> Option<JobDefinition> {
        let mut headers = serde_json::Map::new();
        let mut dynamic = Vec::new();
        if let Some(h) = extension(n, "taskHeaders") {
            for header in h.children().filter(|c| is_zeebe(*c, "header")) {
                headers.insert(
                    header.attribute("key").unwrap_or("").to_string(),
                    serde_json::Value::from(header.attribute("value").unwrap_or("")),
                );
            }
        }
        let mut put = |this: &mut Self, key: &str, value: &str, what: &str| {
            let expr = this.expression(id, what, value);
            match expr {
                Some(Expression::Static(s)) => {
                    let value = match crate::model::is_candidate_list_header(key) {
                        true => crate::model::candidate_list_header(&serde_json::Value::from(&*s)),
                        false => s.to_string(),
                    };
                    headers.insert(key.to_string(), serde_json::Value::from(value));
                }
                Some(e) => dynamic.push((key.to_string(), e)),
                None => {}
            }
        };
        if let Some(a) = extension(n, "assignmentDefinition") {
            for (attr, header) in [
                ("assignee", "io.camunda.zeebe:assignee"),
                ("candidateGroups", "io.camunda.zeebe:candidateGroups"),
                ("candidateUsers", "io.camunda.zeebe:candidateUsers"),
            ] {
                if let Some(v) = a.attribute(attr) {
                    put(self, header, v, attr);
                }
            }
        }
        if let Some(f) = extension(n, "formDefinition") {
            if let Some(v) = f.attribute("formKey") {
                put(self, "io.camunda.zeebe:formKey", v, "formKey");
            }
        }
        if let Some(s) = extension(n, "taskSchedule") {
            for (attr, header) in [
                ("dueDate", "io.camunda.zeebe:dueDate"),
                ("followUpDate", "io.camunda.zeebe:followUpDate"),
            ] {
                if let Some(v) = s.attribute(attr) {
                    put(self, header, v, attr);
                }
            }
        }
        Some(JobDefinition {
            job_type: Expression::Static(Arc::from(USER_TASK_JOB_TYPE)),
            retries: Expression::Static(Arc::from("1")),
            custom_headers: Arc::from(serde_json::Value::Object(headers).to_string()),
            dynamic_headers: dynamic,
        })
    }

    /// A Camunda user task (`zeebe:userTask`); static dates and priorities
    /// are checked here.
    fn user_task(&mut self, n: Node, id: &str) -> Option<UserTaskDefinition> {
        let mut def = UserTaskDefinition::default();
        let mut headers = serde_json::Map::new();
        if let Some(h) = extension(n, "taskHeaders") {
            for header in h.children().filter(|c| is_zeebe(*c, "header")) {
                headers.insert(
                    header.attribute("key").unwrap_or("").to_string(),
                    serde_json::Value::from(header.attribute("value").unwrap_or("")),
                );
            }
        }
        def.custom_headers = Arc::from(serde_json::Value::Object(headers).to_string());
        let attr = |this: &mut Self, ext: &str, name: &str| -> Result<Option<Expression>, ()> {
            match extension(n, ext).and_then(|e| e.attribute(name)) {
                Some(v) if !v.trim().is_empty() => this.expression(id, name, v).map(Some).ok_or(()),
                _ => Ok(None),
            }
        };
        def.assignee = attr(self, "assignmentDefinition", "assignee").ok()?;
        def.candidate_groups = attr(self, "assignmentDefinition", "candidateGroups").ok()?;
        def.candidate_users = attr(self, "assignmentDefinition", "candidateUsers").ok()?;
        def.due_date = attr(self, "taskSchedule", "dueDate").ok()?;
        def.follow_up_date = attr(self, "taskSchedule", "followUpDate").ok()?;
        def.priority = attr(self, "priorityDefinition", "priority").ok()?;
        def.external_form_reference =
            match attr(self, "formDefinition", "externalReference").ok()? {
                Some(e) => Some(e),
                None => attr(self, "formDefinition", "formKey").ok()?,
            };
        def.form_id = extension(n, "formDefinition")
            .and_then(|f| f.attribute("formId"))
            .filter(|v| !v.trim().is_empty())
            .map(Arc::from);
        if let (Some(f), Some(_)) = (extension(n, "formDefinition"), &def.form_id) {
            match crate::forms::resource_binding(
                "formDefinition",
                f.attribute("bindingType"),
                f.attribute("versionTag"),
            ) {
                Ok(binding) => def.form_binding = binding,
                Err(e) => {
                    self.errors.add(id, e);
                    return None;
                }
            }
        }
        let static_checks = [
            (&def.due_date, "dueDate"),
            (&def.follow_up_date, "followUpDate"),
            (&def.priority, "priority"),
        ];
        for (e, name) in static_checks {
            if let Some(Expression::Static(text)) = e {
                let checked = match name {
                    "priority" => {
                        crate::user_tasks::priority_of(&serde_json::Value::from(&**text)).err()
                    }
                    _ => crate::user_tasks::date_of(&serde_json::Value::from(&**text)).err(),
                };
                if let Some(problem) = checked {
                    self.errors.add(id, format!("{name}: {problem}"));
                    return None;
                }
            }
        }
        Some(def)
    }

    fn io_mappings(&mut self, n: Node, id: &str) -> (Vec<Mapping>, Vec<Mapping>) {
        let mut inputs = Vec::new();
        let mut outputs = Vec::new();
        let Some(io) = extension(n, "ioMapping") else {
            return (inputs, outputs);
        };
        for m in io.children().filter(|c| c.is_element()) {
            let list = if is_zeebe(m, "input") {
                &mut inputs
            } else if is_zeebe(m, "output") {
                &mut outputs
            } else {
                continue;
            };
            let source = m.attribute("source").unwrap_or("");
            let target = m.attribute("target").unwrap_or("");
            if target.is_empty() || target.split('.').any(|p| p.is_empty()) {
                self.errors.add(
                    id,
                    format!("mapping target '{target}' must be a variable name or a dotted path"),
                );
                continue;
            }
            if source.is_empty() {
                self.errors
                    .add(id, format!("mapping to '{target}' has no source"));
                continue;
            }
            if let Some(source) = self.expression(id, "mapping source", source) {
                list.push(Mapping {
                    source,
                    target: target.to_string(),
                });
            }
        }
        (inputs, outputs)
    }
}

fn validate(elements: &mut [Element], flows: &[SequenceFlow], errors: &mut Errors) {
    // Start events per container: none starts, and event starts.
    let mut none_starts: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    let mut event_starts: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for (i, e) in elements.iter().enumerate() {
        if e.element_type == BpmnElementType::StartEvent {
            if let Some(scope) = e.flow_scope {
                let list = if e.event.is_some() {
                    &mut event_starts
                } else {
                    &mut none_starts
                };
                list.entry(scope).or_default().push(i as u32);
            }
        }
        if e.element_type == BpmnElementType::EventSubProcess {
            if let Some(scope) = e.flow_scope {
                event_starts.entry(scope).or_default();
            }
        }
    }
    for i in 0..elements.len() {
        if elements[i].element_type == BpmnElementType::EventSubProcess {
            let scope = elements[i]
                .flow_scope
                .expect("an event sub-process has a scope");
            elements[scope as usize].event_subprocesses.push(i as u32);
        }
    }
    #[allow(clippy::needless_range_loop)] // elements are written back by index
    for i in 0..elements.len() {
        let e = &elements[i];
        let id = e.id.to_string();
        if matches!(e.behavior, Behavior::Container) {
            let nones = none_starts.get(&(i as u32)).cloned().unwrap_or_default();
            let events = event_starts.get(&(i as u32)).cloned().unwrap_or_default();
            match e.element_type {
                BpmnElementType::EventSubProcess => {
                    if !e.incoming.is_empty() || !e.outgoing.is_empty() {
                        errors.add(&id, "an event sub-process cannot have sequence flows");
                    }
                    match (nones.as_slice(), events.as_slice()) {
                        ([], [s]) => {
                            elements[i].start_event = Some(*s);
                            elements[i].interrupting = elements[*s as usize].interrupting;
                        }
                        _ => errors.add(
                            &id,
                            "an event sub-process must have exactly one start event, with a timer, message, signal, error or escalation definition",
                        ),
                    }
                }
                BpmnElementType::Process => {
                    match nones.as_slice() {
                        [s] => elements[i].start_event = Some(*s),
                        [] if !events.is_empty() => {}
                        [] => errors.add(&id, "Must have at least one start event"),
                        _ => {
                            errors.add(&id, "must have at most one none start event, found several")
                        }
                    }
                    elements[i].event_starts = events;
                }
                _ => match nones.as_slice() {
                    [s] => elements[i].start_event = Some(*s),
                    [] => errors.add(&id, "must have a none start event"),
                    _ => errors.add(&id, "must have exactly one none start event, found several"),
                },
            }
            continue;
        }
        if let Behavior::AdHoc(_) = e.behavior {
            for problem in crate::adhoc::check_content(elements, i as u32) {
                errors.add(&id, problem);
            }
        }
        if e.element_type == BpmnElementType::BoundaryEvent && !e.incoming.is_empty() {
            errors.add(&id, "a boundary event cannot have incoming sequence flows");
        }
        let compensation = matches!(e.event, Some(EventDefinition::Compensation { .. }));
        if e.element_type == BpmnElementType::BoundaryEvent && compensation {
            if !e.outgoing.is_empty() {
                errors.add(&id, "a compensation boundary event cannot have outgoing sequence flows; associate it with a handler (isForCompensation)");
            }
        } else if e.element_type == BpmnElementType::BoundaryEvent && e.outgoing.is_empty() {
            errors.add(&id, "a boundary event must have an outgoing sequence flow");
        }
        if let Behavior::ThrowLink(_) = e.behavior {
            let Some(EventDefinition::Link { name }) = &e.event else {
                unreachable!("a link throw event has a link definition");
            };
            let catches: Vec<u32> = (0..elements.len() as u32)
                .filter(|&c| {
                    let c = &elements[c as usize];
                    c.flow_scope == e.flow_scope
                        && c.element_type == BpmnElementType::IntermediateCatchEvent
                        && matches!(&c.event, Some(EventDefinition::Link { name: n }) if n == name)
                })
                .collect();
            match catches.as_slice() {
                [c] => elements[i].behavior = Behavior::ThrowLink(*c),
                [] => errors.add(
                    &id,
                    format!("no link catch event named '{name}' in the same scope"),
                ),
                _ => errors.add(
                    &id,
                    format!("several link catch events are named '{name}' in the same scope"),
                ),
            }
            continue;
        }
        if e.for_compensation && !(e.incoming.is_empty() && e.outgoing.is_empty()) {
            errors.add(&id, "a compensation handler cannot have sequence flows");
        }
        if matches!(e.behavior, Behavior::EventGateway) {
            if e.outgoing.len() < 2 {
                errors.add(
                    &id,
                    "an event-based gateway must have at least two outgoing sequence flows",
                );
            }
            for &f in &e.outgoing {
                let target = &elements[flows[f as usize].target as usize];
                let ok = matches!(target.behavior, Behavior::Catch)
                    && target.incoming.len() == 1
                    && target
                        .event
                        .as_ref()
                        .is_some_and(|d| d.needs_subscription());
                if !ok {
                    errors.add(
                        &id,
                        format!(
                            "an event-based gateway must lead only to intermediate timer, message or signal catch events or receive tasks with no other incoming flow, but '{}' is not one",
                            target.id
                        ),
                    );
                }
            }
        }
        if e.element_type == BpmnElementType::StartEvent && !e.incoming.is_empty() {
            errors.add(&id, "a start event cannot have incoming sequence flows");
        }
        if e.element_type == BpmnElementType::EndEvent && !e.outgoing.is_empty() {
            errors.add(&id, "an end event cannot have outgoing sequence flows");
        }
        if matches!(e.behavior, Behavior::Exclusive | Behavior::Inclusive) && e.outgoing.len() > 1 {
            for &f in &e.outgoing {
                let flow = &flows[f as usize];
                if flow.condition.is_none() && e.default_flow != Some(f) {
                    errors.add(
                        &flow.id,
                        format!(
                            "sequence flow leaving gateway '{id}' must have a condition or be its default flow"
                        ),
                    );
                }
            }
        }
        if matches!(e.behavior, Behavior::Exclusive)
            && e.incoming.len() > 1
            && e.outgoing.is_empty()
        {
            errors.add(
                &id,
                "an exclusive gateway must have an outgoing sequence flow",
            );
        }
    }
}

/// The catch elements whose subscriptions an instance of each element opens:
/// itself (catch events, receive tasks), the events after an event-based
/// gateway, its boundary events, and the start events of its event
/// sub-processes.
fn compute_subscriptions(elements: &mut [Element], flows: &[SequenceFlow]) {
    let subscribes = |e: &Element| e.event.as_ref().is_some_and(|d| d.needs_subscription());
    for i in 0..elements.len() {
        let e = &elements[i];
        let mut subs = Vec::new();
        match e.behavior {
            Behavior::Catch if subscribes(e) => subs.push(i as u32),
            Behavior::EventGateway => {
                subs.extend(e.outgoing.iter().map(|&f| flows[f as usize].target))
            }
            _ => {}
        }
        subs.extend(
            e.boundary_events
                .iter()
                .copied()
                .filter(|&b| subscribes(&elements[b as usize])),
        );
        for &esp in &e.event_subprocesses {
            if let Some(start) = elements[esp as usize].start_event {
                if subscribes(&elements[start as usize]) {
                    subs.push(start);
                }
            }
        }
        elements[i].subscriptions = subs;
    }
}

fn compute_inclusive_reachability(elements: &mut [Element], flows: &[SequenceFlow]) {
    for g in 0..elements.len() {
        if !(matches!(elements[g].behavior, Behavior::Inclusive) && elements[g].incoming.len() > 1)
        {
            continue;
        }
        let mut seen = BTreeSet::new();
        let mut stack: Vec<u32> = elements[g]
            .incoming
            .iter()
            .map(|&f| flows[f as usize].source)
            .collect();
        while let Some(e) = stack.pop() {
            if e as usize == g || !seen.insert(e) {
                continue;
            }
            for &f in &elements[e as usize].incoming {
                stack.push(flows[f as usize].source);
            }
        }
        elements[g].reachable_from = seen.into_iter().collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrap(body: &str) -> String {
        format!(
            r#"<?xml version="1.0"?><bpmn:definitions id="d" xmlns:bpmn="{BPMN_NS}" xmlns:zeebe="{ZEEBE_NS}"><bpmn:process id="p" isExecutable="true">{body}</bpmn:process></bpmn:definitions>"#
        )
    }

    #[test]
    fn parses_a_service_task_process() {
        let xml = wrap(
            r#"<bpmn:startEvent id="s"/><bpmn:serviceTask id="t"><bpmn:extensionElements><zeebe:taskDefinition type="pay" retries="5"/><zeebe:taskHeaders><zeebe:header key="k" value="v"/></zeebe:taskHeaders></bpmn:extensionElements></bpmn:serviceTask><bpmn:endEvent id="e"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="t"/><bpmn:sequenceFlow id="f2" sourceRef="t" targetRef="e"/>"#,
        );
        let p = parse_bpmn("a.bpmn", xml.as_bytes()).unwrap();
        assert_eq!(p.len(), 1);
        let p = &p[0];
        assert_eq!(&*p.bpmn_process_id, "p");
        assert_eq!(p.elements.len(), 4);
        let t = p.element(p.index_of("t").unwrap());
        let Behavior::Job(job) = &t.behavior else {
            panic!("service task must create a job")
        };
        assert_eq!(job.job_type.source(), "pay");
        assert_eq!(&*job.custom_headers, r#"{"k":"v"}"#);
        assert_eq!(p.element(0).start_event, p.index_of("s"));
    }

    #[test]
    fn rejects_missing_job_type_and_names_the_element() {
        let xml = wrap(
            r#"<bpmn:startEvent id="s"/><bpmn:serviceTask id="t"><bpmn:extensionElements><zeebe:taskDefinition type=""/></bpmn:extensionElements></bpmn:serviceTask>"#,
        );
        let err = parse_bpmn("a.bpmn", xml.as_bytes()).unwrap_err();
        assert_eq!(err.0[0].element_id, "t");
        assert!(err.0[0].problem.contains("empty job type"), "{err}");
        let xml = wrap(r#"<bpmn:startEvent id="s"/><bpmn:serviceTask id="t2"/>"#);
        let err = parse_bpmn("a.bpmn", xml.as_bytes()).unwrap_err();
        assert_eq!(err.0[0].element_id, "t2");
    }

    #[test]
    fn rejects_unconditioned_gateway_flow() {
        let xml = wrap(
            r#"<bpmn:startEvent id="s"/><bpmn:exclusiveGateway id="g" default="f3"/><bpmn:endEvent id="a"/><bpmn:endEvent id="b"/><bpmn:endEvent id="c"/>
            <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="g"/>
            <bpmn:sequenceFlow id="f2" sourceRef="g" targetRef="a"/>
            <bpmn:sequenceFlow id="f3" sourceRef="g" targetRef="b"/>
            <bpmn:sequenceFlow id="f4" sourceRef="g" targetRef="c"><bpmn:conditionExpression>=x</bpmn:conditionExpression></bpmn:sequenceFlow>"#,
        );
        let err = parse_bpmn("a.bpmn", xml.as_bytes()).unwrap_err();
        assert_eq!(err.0.len(), 1, "{err}");
        assert_eq!(err.0[0].element_id, "f2");
        assert!(err.0[0].problem.contains("condition or be its default"));
    }

    #[test]
    fn rejects_unsupported_elements_with_the_supported_list() {
        let xml = wrap(r#"<bpmn:startEvent id="s"/><bpmn:complexGateway id="c"/>"#);
        let err = parse_bpmn("a.bpmn", xml.as_bytes()).unwrap_err();
        assert_eq!(err.0[0].element_id, "c");
        assert!(err.0[0].problem.contains("complexGateway is not supported"));
        assert!(err.0[0].problem.contains("supported are"));
        assert!(err.to_string().starts_with("'a.bpmn': element 'c':"));
    }

    #[test]
    fn garbage_is_rejected() {
        assert!(parse_bpmn("x.bpmn", b"\xff\xfe").is_err());
        assert!(parse_bpmn("x.bpmn", b"<a>").is_err());
        assert!(parse_bpmn("x.bpmn", b"<definitions/>").is_err());
    }
}
