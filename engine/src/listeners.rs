//! Job-based execution listeners and task listeners, as Zeebe 8.8 has them.
//!
//! ```text
//! execution listeners (zeebe:executionListeners, eventType start | end):
//!   activate: ELEMENT_ACTIVATING → input mappings → JOB CREATED (START, kind
//!             EXECUTION_LISTENER) … one at a time, in model order … → the
//!             element's own behaviour (subscriptions, job, ELEMENT_ACTIVATED)
//!   complete: ELEMENT_COMPLETING → output mappings → JOB CREATED (END) …
//!             → ELEMENT_COMPLETED → leave
//! task listeners (zeebe:taskListeners on a zeebe:userTask):
//!   CREATING | ASSIGNING | UPDATING | COMPLETING | CANCELING → JOB CREATED
//!   (kind TASK_LISTENER) … one at a time … → CREATED | ASSIGNED | UPDATED |
//!   COMPLETED | CANCELED, or ASSIGNMENT_DENIED | UPDATE_DENIED |
//!   COMPLETION_DENIED when a listener's job result denies it
//! ```
//!
//! The element instance counts the execution listener jobs it completed
//! (`listeners_done`), so the start listeners run before the end listeners
//! and a listener is never run twice. An open task listener transition is
//! kept in `State::task_transitions` until its last listener completes.
//! Variables of a start listener's job become local variables of the
//! element; those of an end listener are propagated like output mappings.
//! A listener job that fails without retries raises
//! `EXECUTION_LISTENER_NO_RETRIES` / `TASK_LISTENER_NO_RETRIES`; resolving it
//! makes the same job activatable again.

use crate::engine::{rejection, Ctx, Engine, ResponseValue};
use crate::expression::Expression;
use crate::model::DEFAULT_JOB_RETRIES;
use crate::record::*;
use crate::state::DeployedProcess;
use roxmltree::Node;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::sync::Arc;

const ZEEBE_NS: &str = "http://camunda.org/schema/zeebe/1.0";

/// Elements that may have execution listeners (Zeebe's
/// `ExecutionListenersValidator`).
const EXECUTION_LISTENER_ELEMENTS: [&str; 21] = [
    "process",
    "subProcess",
    "callActivity",
    "adHocSubProcess",
    "task",
    "sendTask",
    "serviceTask",
    "scriptTask",
    "userTask",
    "receiveTask",
    "businessRuleTask",
    "manualTask",
    "startEvent",
    "intermediateThrowEvent",
    "intermediateCatchEvent",
    "boundaryEvent",
    "endEvent",
    "exclusiveGateway",
    "inclusiveGateway",
    "parallelGateway",
    "eventBasedGateway",
];

/// Most listeners on one element (each is a job and a record per run).
pub const MAX_LISTENERS_PER_ELEMENT: usize = 64;

/// One `zeebe:executionListener` or `zeebe:taskListener`.
#[derive(Clone, Debug)]
pub struct ListenerDefinition {
    /// When it runs.
    pub event_type: ListenerEventType,
    /// Job type (static or FEEL).
    pub job_type: Expression,
    /// Job retries (static or FEEL).
    pub retries: Expression,
}

/// The listeners of one element, in model order.
#[derive(Clone, Debug, Default)]
pub struct Listeners {
    /// `start` execution listeners.
    pub start: Vec<ListenerDefinition>,
    /// `end` execution listeners.
    pub end: Vec<ListenerDefinition>,
    /// Task listeners of a Camunda user task.
    pub task: Vec<ListenerDefinition>,
}

impl Listeners {
    /// The task listeners of one event, in model order.
    pub fn task_listeners(&self, event: ListenerEventType) -> Vec<&ListenerDefinition> {
        self.task.iter().filter(|l| l.event_type == event).collect()
    }
}

/// A user task transition that waits for its task listeners.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskTransition {
    /// The listener event of the transition.
    pub event: ListenerEventType,
    /// Listeners of the event completed so far.
    pub done: u32,
    /// The task as it will be when the transition ends: the requested
    /// change with the corrections of the listeners so far.
    pub task: UserTaskRecord,
    /// Who waits for the answer of the command that started it.
    pub request_id: Option<u64>,
    /// The open listener job, or `-1`.
    pub job_key: i64,
}

fn task_event(name: &str) -> Option<ListenerEventType> {
    Some(match name {
        "creating" | "create" => ListenerEventType::Creating,
        "assigning" | "assignment" => ListenerEventType::Assigning,
        "updating" | "update" => ListenerEventType::Updating,
        "completing" | "complete" => ListenerEventType::Completing,
        "canceling" | "cancel" => ListenerEventType::Canceling,
        _ => return None,
    })
}

fn zeebe_children<'a, 'i>(ext: Node<'a, 'i>, name: &'a str) -> impl Iterator<Item = Node<'a, 'i>> {
    ext.children().filter(move |c| {
        c.is_element() && c.tag_name().namespace() == Some(ZEEBE_NS) && c.tag_name().name() == name
    })
}

fn definition(
    l: Node,
    kind: &str,
    event_type: ListenerEventType,
    errors: &mut Vec<String>,
) -> Option<ListenerDefinition> {
    let job_type = l.attribute("type").unwrap_or("").trim();
    if job_type.is_empty() {
        errors.push(format!(
            "zeebe:{kind} has no type; a job type (static or =FEEL) is required"
        ));
        return None;
    }
    let retries = l.attribute("retries").unwrap_or(DEFAULT_JOB_RETRIES);
    let parse = |what: &str, text: &str, errors: &mut Vec<String>| match Expression::parse(text) {
        Ok(e) => Some(e),
        Err(e) => {
            errors.push(format!("zeebe:{kind} {what}: {e}"));
            None
        }
    };
    let job_type = parse("type", job_type, errors)?;
    let retries_expr = parse("retries", retries, errors)?;
    if retries_expr.is_static() && retries.trim().parse::<i32>().is_err() {
        errors.push(format!(
            "zeebe:{kind} retries '{retries}' is not a number or a FEEL expression"
        ));
        return None;
    }
    Some(ListenerDefinition {
        event_type,
        job_type,
        retries: retries_expr,
    })
}

/// Reads and checks the listeners of element `n` (`tag` is its BPMN tag,
/// `event_definition` the tag of its event definition or empty,
/// `camunda_user_task` whether it has `zeebe:userTask`). Errors are the
/// texts Zeebe's validators give, for the caller to prefix with the element id.
pub(crate) fn parse(
    n: Node,
    tag: &str,
    event_definition: &str,
    camunda_user_task: bool,
) -> Result<Option<Arc<Listeners>>, Vec<String>> {
    let Some(ext) = n.children().find(|c| {
        c.is_element()
            && c.tag_name().name() == "extensionElements"
            && c.tag_name().namespace() != Some(ZEEBE_NS)
    }) else {
        return Ok(None);
    };
    let mut errors = Vec::new();
    let mut listeners = Listeners::default();
    for group in zeebe_children(ext, "executionListeners") {
        let items: Vec<Node> = zeebe_children(group, "executionListener").collect();
        if items.is_empty() {
            continue;
        }
        if !EXECUTION_LISTENER_ELEMENTS.contains(&tag) {
            errors.push(format!(
                "Execution listeners are not supported for the '{tag}' element. Currently, only [{}] elements can have execution listeners.",
                EXECUTION_LISTENER_ELEMENTS.join(", ")
            ));
            continue;
        }
        for l in items {
            let event_type = match l.attribute("eventType").unwrap_or("start") {
                "start" => ListenerEventType::Start,
                "end" => ListenerEventType::End,
                other => {
                    errors.push(format!(
                        "zeebe:executionListener eventType '{other}' is not supported; supported are: start, end"
                    ));
                    continue;
                }
            };
            if let Some(d) = definition(l, "executionListener", event_type, &mut errors) {
                match event_type {
                    ListenerEventType::Start => listeners.start.push(d),
                    _ => listeners.end.push(d),
                }
            }
        }
    }
    for group in zeebe_children(ext, "taskListeners") {
        // A job-worker user task has no lifecycle of its own: Zeebe ignores
        // its task listeners.
        if !camunda_user_task {
            continue;
        }
        for l in zeebe_children(group, "taskListener") {
            let name = l.attribute("eventType").unwrap_or("");
            let Some(event_type) = task_event(name) else {
                errors.push(format!(
                    "zeebe:taskListener eventType '{name}' is not supported; supported are: creating, assigning, updating, completing, canceling"
                ));
                continue;
            };
            if let Some(d) = definition(l, "taskListener", event_type, &mut errors) {
                listeners.task.push(d);
            }
        }
    }
    let has_start = !listeners.start.is_empty();
    let has_end = !listeners.end.is_empty();
    match (tag, event_definition) {
        ("startEvent", _) if has_start => {
            errors.push("Execution listeners of type 'start' are not supported by start events".into())
        }
        ("boundaryEvent", "compensateEventDefinition") if has_start || has_end => errors.push(
            "Execution listeners of type 'start' and 'end' are not supported by [compensation] boundary events".into(),
        ),
        ("boundaryEvent", _) if has_start => errors
            .push("Execution listeners of type 'start' are not supported by boundary events".into()),
        ("endEvent", "errorEventDefinition") if has_end => errors
            .push("Execution listeners of type 'end' are not supported by [error] end events".into()),
        ("intermediateThrowEvent", "escalationEventDefinition") if has_end => errors.push(
            "Execution listeners of type 'end' are not supported by [escalation] intermediate throw events".into(),
        ),
        (g, _) if g.ends_with("Gateway") && has_end => errors
            .push("Execution listeners of type 'end' are not supported by gateway element".into()),
        _ => {}
    }
    for (i, l) in listeners.start.iter().chain(&listeners.end).enumerate() {
        let same = |o: &&ListenerDefinition| {
            o.event_type == l.event_type && o.job_type.source() == l.job_type.source()
        };
        let all = listeners.start.iter().chain(&listeners.end);
        let count = all.clone().filter(same).count();
        if count > 1 && all.take(i).filter(same).count() == 0 {
            errors.push(format!(
                "Found '{count}' duplicates based on eventType[{}] and type[{}], these combinations should be unique.",
                l.event_type.name().to_lowercase(),
                l.job_type.source()
            ));
        }
    }
    let total = listeners.start.len() + listeners.end.len() + listeners.task.len();
    if total > MAX_LISTENERS_PER_ELEMENT {
        errors.push(format!(
            "{total} listeners; at most {MAX_LISTENERS_PER_ELEMENT} are supported on one element"
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if total == 0 {
        return Ok(None);
    }
    Ok(Some(Arc::new(listeners)))
}

impl Engine {
    /// The listener job for element instance `key`, with its expressions
    /// evaluated in the element's scope.
    fn listener_job(
        &self,
        def: &DeployedProcess,
        element: u32,
        key: i64,
        pi_key: i64,
        listener: &ListenerDefinition,
        kind: JobKind,
    ) -> Result<JobRecord, String> {
        let vars = if listener.job_type.is_static() && listener.retries.is_static() {
            Vec::new()
        } else {
            self.visible(key)
        };
        let job_type = crate::jobs::evaluate_job_type(&listener.job_type, &vars, &self.clock)?;
        let retries = crate::jobs::evaluate_retries(&listener.retries, &vars, &self.clock)?;
        let mut job = JobRecord::empty();
        job.job_type = job_type;
        job.retries = retries;
        job.custom_headers = self.element_headers(def, element);
        job.element_id = def.model.element(element).id.clone();
        job.element_instance_key = key;
        job.process_instance_key = pi_key;
        job.bpmn_process_id = def.metadata.bpmn_process_id.clone();
        job.process_definition_version = def.metadata.version;
        job.process_definition_key = def.metadata.process_definition_key;
        job.job_kind = kind;
        job.listener_event_type = listener.event_type;
        Ok(job)
    }

    /// Before an element's own behaviour: creates the job of its next start
    /// listener and returns true (the activation waits for it), or returns
    /// false when every start listener has run.
    pub(crate) fn start_listener_pending(&mut self, ctx: &mut Ctx, key: i64) -> bool {
        self.execution_listener_pending(ctx, key, ListenerEventType::Start)
    }

    /// After an element's output mappings: like `start_listener_pending` for
    /// the end listeners.
    pub(crate) fn end_listener_pending(&mut self, ctx: &mut Ctx, key: i64) -> bool {
        self.execution_listener_pending(ctx, key, ListenerEventType::End)
    }

    fn execution_listener_pending(
        &mut self,
        ctx: &mut Ctx,
        key: i64,
        event: ListenerEventType,
    ) -> bool {
        let Some((def, element, _, pi_key)) = self.instance_parts(key) else {
            return false;
        };
        let Some(listeners) = def.model.element(element).listeners.clone() else {
            return false;
        };
        let done = self
            .state
            .instances
            .get(&key)
            .map_or(0, |i| i.listeners_done) as usize;
        let next = match event {
            ListenerEventType::Start => listeners.start.get(done),
            _ => done
                .checked_sub(listeners.start.len())
                .and_then(|i| listeners.end.get(i)),
        };
        let Some(listener) = next else {
            return false;
        };
        match self.listener_job(
            &def,
            element,
            key,
            pi_key,
            listener,
            JobKind::ExecutionListener,
        ) {
            Ok(job) => {
                let job_key = self.state.keys.next_key();
                self.emit(
                    ctx,
                    job_key,
                    Intent::Created,
                    RecordValue::Job(Box::new(job)),
                );
                self.push_job(ctx, job_key);
            }
            Err(message) => {
                self.raise_incident(ctx, key, ErrorType::ExtractValueError, message, NO_KEY)
            }
        }
        true
    }

    /// Custom headers of an element's task definition or user task, which
    /// its listener jobs carry too.
    fn element_headers(&self, def: &DeployedProcess, element: u32) -> Arc<str> {
        match &def.model.element(element).behavior {
            crate::model::Behavior::Job(job) => job.custom_headers.clone(),
            crate::model::Behavior::UserTask(ut) => ut.custom_headers.clone(),
            _ => Arc::from("{}"),
        }
    }

    /// `JOB COMPLETE` of a listener job: checks it, writes `COMPLETED` and
    /// continues the element or the user task transition.
    pub(crate) fn complete_listener_job(
        &mut self,
        ctx: &mut Ctx,
        cmd: &Record,
        mut record: JobRecord,
        v: &JobRecord,
    ) -> Result<(), Rejection> {
        let key = cmd.key;
        let vars = crate::scope_variables::parse_document(&v.variables)
            .map_err(|e| rejection(RejectionType::InvalidArgument, e))?;
        if record.job_kind == JobKind::TaskListener {
            if !vars.is_empty() {
                return Err(rejection(
                    RejectionType::InvalidArgument,
                    format!(
                        "Expected to complete task listener job with key '{key}', but variables are not supported for task listener jobs; use the job result's corrections"
                    ),
                ));
            }
            self.check_result(key, &record, &v.result)?;
            record.result = v.result.clone();
        } else if v.result.denied || !v.result.corrected_attributes.is_empty() {
            return Err(rejection(
                RejectionType::InvalidArgument,
                format!(
                    "Expected to complete job with key '{key}', but a job result (denial, corrections) is only supported for task listener jobs; this is an execution listener job"
                ),
            ));
        }
        record.variables = v.variables.clone();
        self.emit(
            ctx,
            key,
            Intent::Completed,
            RecordValue::Job(Box::new(record.clone())),
        );
        let el_key = record.element_instance_key;
        match record.job_kind {
            JobKind::TaskListener => self.task_listener_completed(ctx, &record),
            _ => {
                if let Some((_, _, scope_key, pi_key)) = self.instance_parts(el_key) {
                    let end = record.listener_event_type == ListenerEventType::End;
                    for (name, value) in vars {
                        if end && scope_key != NO_KEY {
                            self.merge(ctx, scope_key, pi_key, &name, value.get());
                        } else {
                            self.set_local(ctx, el_key, pi_key, &name, value.get());
                        }
                    }
                    if end {
                        self.resume_completion(ctx, el_key);
                    } else {
                        self.resume_activation(ctx, el_key);
                    }
                }
            }
        }
        Self::respond(
            ctx,
            cmd,
            ResponseValue::Job {
                key,
                intent: Intent::Completed,
            },
        );
        Ok(())
    }

    fn check_result(&self, key: i64, job: &JobRecord, result: &JobResult) -> Result<(), Rejection> {
        let event = job.listener_event_type;
        if result.denied
            && !matches!(
                event,
                ListenerEventType::Assigning
                    | ListenerEventType::Updating
                    | ListenerEventType::Completing
            )
        {
            return Err(rejection(
                RejectionType::InvalidArgument,
                format!(
                    "Expected to complete task listener job with key '{key}', but denying is only supported for the 'assigning', 'updating' and 'completing' events, not '{}'",
                    event.name().to_lowercase()
                ),
            ));
        }
        const CORRECTABLE: [&str; 6] = [
            "assignee",
            "dueDate",
            "followUpDate",
            "candidateUsersList",
            "candidateGroupsList",
            "priority",
        ];
        for name in &result.corrected_attributes {
            if !CORRECTABLE.contains(&name.as_str()) {
                return Err(rejection(
                    RejectionType::InvalidArgument,
                    format!(
                        "Expected to complete task listener job with key '{key}', but the attribute '{name}' cannot be corrected; correctable are {}",
                        CORRECTABLE.join(", ")
                    ),
                ));
            }
        }
        if !result.corrected_attributes.is_empty() && event == ListenerEventType::Canceling {
            return Err(rejection(
                RejectionType::InvalidArgument,
                format!(
                    "Expected to complete task listener job with key '{key}', but corrections are not supported for the 'canceling' event"
                ),
            ));
        }
        if result.corrected_attributes.iter().any(|a| a == "priority")
            && !(0..=100).contains(&result.priority)
        {
            return Err(rejection(
                RejectionType::InvalidArgument,
                format!(
                    "Expected to complete task listener job with key '{key}', but the corrected priority {} is not between 0 and 100",
                    result.priority
                ),
            ));
        }
        for (name, value) in [
            ("dueDate", &result.due_date),
            ("followUpDate", &result.follow_up_date),
        ] {
            if result.corrected_attributes.iter().any(|a| a == name) {
                crate::user_tasks::date_of(&Json::from(value.as_str())).map_err(|e| {
                    rejection(
                        RejectionType::InvalidArgument,
                        format!("Expected to complete task listener job with key '{key}', but the corrected {name} is invalid: {e}"),
                    )
                })?;
            }
        }
        Ok(())
    }

    /// `JOB THROW_ERROR` of a listener job: refused, as in Zeebe.
    pub(crate) fn listener_job_throw_error(&self, key: i64, job: &JobRecord) -> Rejection {
        let what = match job.job_kind {
            JobKind::TaskListener => "task listener",
            _ => "execution listener",
        };
        rejection(
            RejectionType::InvalidState,
            format!(
                "Cannot throw BPMN error from {} job with key '{key}', type '{}' and processInstanceKey '{}'. Throwing BPMN errors from {what} jobs is not supported",
                job.job_kind.name(),
                job.job_type,
                job.process_instance_key
            ),
        )
    }

    /// Error type of the incident of a listener job without retries.
    pub(crate) fn no_retries_error(job: &JobRecord) -> ErrorType {
        match job.job_kind {
            JobKind::ExecutionListener => ErrorType::ExecutionListenerNoRetries,
            JobKind::TaskListener => ErrorType::TaskListenerNoRetries,
            JobKind::BpmnElement => ErrorType::JobNoRetries,
        }
    }

    // ----- task listeners -----

    fn task_listeners_of(
        &self,
        task: &UserTaskRecord,
    ) -> Option<(Arc<DeployedProcess>, u32, Arc<Listeners>)> {
        let (def, element, _, _) = self.instance_parts(task.element_instance_key)?;
        let listeners = def.model.element(element).listeners.clone()?;
        Some((def, element, listeners))
    }

    /// True when the user task has listeners for `event`.
    pub(crate) fn has_task_listeners(
        &self,
        task: &UserTaskRecord,
        event: ListenerEventType,
    ) -> bool {
        self.task_listeners_of(task)
            .is_some_and(|(_, _, l)| l.task.iter().any(|t| t.event_type == event))
    }

    /// Writes the event that starts a user task transition (`CREATING`,
    /// `ASSIGNING`, `UPDATING`, `COMPLETING`, `CANCELING`; its applier opens
    /// the transition), then runs the first listener of the event or ends
    /// the transition at once.
    pub(crate) fn run_task_transition(
        &mut self,
        ctx: &mut Ctx,
        intent: Intent,
        task: UserTaskRecord,
        request_id: Option<u64>,
    ) {
        let key = task.user_task_key;
        self.emit_for(
            ctx,
            key,
            intent,
            RecordValue::UserTask(Box::new(task)),
            request_id,
        );
        self.next_task_listener(ctx, key);
    }

    /// Creates the job of the open transition's next listener, or ends the
    /// transition when all have run.
    pub(crate) fn next_task_listener(&mut self, ctx: &mut Ctx, key: i64) {
        let Some(transition) = self.state.task_transitions.get(&key).cloned() else {
            return;
        };
        let found = self.task_listeners_of(&transition.task);
        let next = found.as_ref().and_then(|(_, _, listeners)| {
            listeners
                .task_listeners(transition.event)
                .get(transition.done as usize)
                .map(|l| (*l).clone())
        });
        let (Some((def, element, _)), Some(listener)) = (found, next) else {
            return self.end_task_transition(ctx, transition);
        };
        let el_key = transition.task.element_instance_key;
        let pi_key = transition.task.process_instance_key;
        match self.listener_job(
            &def,
            element,
            el_key,
            pi_key,
            &listener,
            JobKind::TaskListener,
        ) {
            Ok(mut job) => {
                let mut task = transition.task.clone();
                task.variables = String::new();
                job.user_task = Some(Box::new(task));
                let job_key = self.state.keys.next_key();
                self.emit(
                    ctx,
                    job_key,
                    Intent::Created,
                    RecordValue::Job(Box::new(job)),
                );
                self.push_job(ctx, job_key);
            }
            Err(message) => {
                self.raise_incident(ctx, el_key, ErrorType::ExtractValueError, message, NO_KEY)
            }
        }
    }

    /// After an incident on element `el_key` was resolved: a user task
    /// transition whose listener job could not be created tries again.
    pub(crate) fn retry_task_listener(&mut self, ctx: &mut Ctx, el_key: i64) {
        let Some(key) = self.state.transition_of(el_key) else {
            return;
        };
        if self.state.task_transitions[&key].job_key == NO_KEY {
            self.next_task_listener(ctx, key);
        }
    }

    fn task_listener_completed(&mut self, ctx: &mut Ctx, job: &JobRecord) {
        let Some(key) = self.state.transition_of(job.element_instance_key) else {
            return;
        };
        if job.result.denied {
            let transition = self.state.task_transitions[&key].clone();
            return self.deny_task_transition(ctx, transition, &job.result.denied_reason);
        }
        self.next_task_listener(ctx, key);
    }

    fn deny_task_transition(&mut self, ctx: &mut Ctx, transition: TaskTransition, reason: &str) {
        let key = transition.task.user_task_key;
        let Some(mut task) = self.state.user_tasks.get(&key).cloned() else {
            return;
        };
        task.action = transition.task.action.clone();
        let (intent, what) = match transition.event {
            ListenerEventType::Assigning => (Intent::AssignmentDenied, "Assignment"),
            ListenerEventType::Updating => (Intent::UpdateDenied, "Update"),
            _ => (Intent::CompletionDenied, "Completion"),
        };
        self.emit(ctx, key, intent, RecordValue::UserTask(Box::new(task)));
        if let Some(id) = transition.request_id {
            ctx.out.responses.push((
                id,
                Err(rejection(
                    RejectionType::InvalidState,
                    format!(
                        "{what} of the user task with key '{key}' was denied by a task listener. Reason to deny: '{reason}'"
                    ),
                )),
            ));
        }
    }

    fn end_task_transition(&mut self, ctx: &mut Ctx, transition: TaskTransition) {
        let key = transition.task.user_task_key;
        let mut task = transition.task;
        let intent = match transition.event {
            ListenerEventType::Creating => return self.user_task_created(ctx, task),
            ListenerEventType::Assigning => Intent::Assigned,
            ListenerEventType::Updating => Intent::Updated,
            ListenerEventType::Completing => Intent::Completed,
            _ => return self.user_task_canceled(ctx, task),
        };
        let el_key = task.element_instance_key;
        if intent != Intent::Completed {
            task.variables = String::new();
        }
        let variables = task.variables.clone();
        self.emit(ctx, key, intent, RecordValue::UserTask(Box::new(task)));
        if intent == Intent::Completed {
            let vars = crate::scope_variables::parse_document(&variables).unwrap_or_default();
            self.complete_waiting_task(ctx, el_key, vars);
        }
        if let Some(id) = transition.request_id {
            ctx.out
                .responses
                .push((id, Ok(ResponseValue::UserTask { key, intent })));
        }
    }

    /// Cancels the open task listener job of element instance `el_key`
    /// (being terminated); returns the user task key of its transition.
    pub(crate) fn cancel_task_listener_job(&mut self, ctx: &mut Ctx, el_key: i64) -> Option<i64> {
        let key = self.state.transition_of(el_key)?;
        let job_key = self.state.task_transitions[&key].job_key;
        if let Some(job) = self.state.jobs.get(&job_key) {
            let record = job.record.clone();
            self.emit(
                ctx,
                job_key,
                Intent::Canceled,
                RecordValue::Job(Box::new(record)),
            );
        }
        Some(key)
    }
}

impl crate::state::State {
    /// The user task key of the open transition of element instance `el_key`.
    pub(crate) fn transition_of(&self, el_key: i64) -> Option<i64> {
        self.task_transitions
            .iter()
            .find(|(_, t)| t.task.element_instance_key == el_key)
            .map(|(k, _)| *k)
    }

    /// Applies a `USER_TASK` event to the open transitions: the first event
    /// of a transition opens it, the last one closes it.
    pub(crate) fn apply_task_transition(&mut self, record: &Record, task: &UserTaskRecord) {
        let event = match record.intent {
            Intent::Creating => ListenerEventType::Creating,
            Intent::Assigning => ListenerEventType::Assigning,
            Intent::Updating => ListenerEventType::Updating,
            Intent::Completing => ListenerEventType::Completing,
            Intent::Canceling => ListenerEventType::Canceling,
            _ => {
                self.task_transitions.remove(&record.key);
                return;
            }
        };
        self.task_transitions.insert(
            record.key,
            TaskTransition {
                event,
                done: 0,
                task: task.clone(),
                request_id: record.request_id,
                job_key: NO_KEY,
            },
        );
    }

    /// Applies a `JOB` event of a listener job: counts the completed
    /// execution listeners of the element, and moves the user task
    /// transition of a task listener on (with the job's corrections).
    pub(crate) fn apply_listener_job(&mut self, key: i64, job: &JobRecord, intent: Intent) {
        match job.job_kind {
            JobKind::BpmnElement => {}
            JobKind::ExecutionListener => {
                if intent == Intent::Completed {
                    let el_key = self
                        .jobs
                        .get(&key)
                        .map_or(job.element_instance_key, |j| j.record.element_instance_key);
                    if let Some(el) = self.instances.get_mut(&el_key) {
                        el.listeners_done += 1;
                    }
                }
            }
            JobKind::TaskListener => {
                let el_key = self
                    .jobs
                    .get(&key)
                    .map_or(job.element_instance_key, |j| j.record.element_instance_key);
                let Some(task_key) = self.transition_of(el_key) else {
                    return;
                };
                let Some(t) = self.task_transitions.get_mut(&task_key) else {
                    return;
                };
                match intent {
                    Intent::Created => t.job_key = key,
                    Intent::Canceled => t.job_key = NO_KEY,
                    Intent::Completed => {
                        t.job_key = NO_KEY;
                        if !job.result.denied {
                            apply_corrections(&mut t.task, &job.result);
                            t.done += 1;
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Applies the corrections of a task listener's job result to the task.
fn apply_corrections(task: &mut UserTaskRecord, result: &JobResult) {
    for name in &result.corrected_attributes {
        match name.as_str() {
            "assignee" => task.assignee = result.assignee.clone(),
            "dueDate" => task.due_date = result.due_date.clone(),
            "followUpDate" => task.follow_up_date = result.follow_up_date.clone(),
            "candidateUsersList" => task.candidate_users = result.candidate_users.clone(),
            "candidateGroupsList" => task.candidate_groups = result.candidate_groups.clone(),
            "priority" => task.priority = result.priority,
            _ => continue,
        }
        if !task.changed_attributes.contains(name) {
            task.changed_attributes.push(name.clone());
        }
    }
}
