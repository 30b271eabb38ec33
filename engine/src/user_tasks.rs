//! Camunda user tasks (`zeebe:userTask`), as Zeebe 8.8 has them.
//!
//! ```text
//! activate:  CREATING → ELEMENT_ACTIVATED → CREATED [→ ASSIGNING → ASSIGNED]
//! ASSIGN:    ASSIGNING → ASSIGNED        (also unassign: an empty assignee)
//! CLAIM:     ASSIGNING → ASSIGNED        (rejected if someone else is assigned)
//! UPDATE:    UPDATING → UPDATED          (changedAttributes name the changeset)
//! COMPLETE:  COMPLETING → COMPLETED      (variables merged, element completes)
//! terminate: CANCELING → CANCELED
//! ```
//!
//! The element instance holds the user task key in `job_key`. A failing
//! expression (assignee, candidates, dates, priority, form reference) raises
//! an `EXTRACT_VALUE_ERROR` incident on the element, as for jobs.

use crate::engine::{rejection, Ctx, Engine};
use crate::expression::Expression;
use crate::model::UserTaskDefinition;
use crate::record::*;
use crate::scope_variables::parse_document;
use crate::state::{DeployedProcess, State};
use serde_json::Value as Json;

/// Attributes an `UPDATE` may change.
pub const UPDATABLE_ATTRIBUTES: [&str; 5] = [
    "candidateGroupsList",
    "candidateUsersList",
    "dueDate",
    "followUpDate",
    "priority",
];

/// A priority from a FEEL result or static text: an integer 0 to 100.
pub(crate) fn priority_of(value: &Json) -> Result<i32, String> {
    let n = match value {
        Json::Number(n) => n.as_i64(),
        Json::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if (0..=100).contains(&n) => Ok(n as i32),
        _ => Err(format!(
            "Expected priority to be a number between 0 and 100, but was '{value}'"
        )),
    }
}

/// A due or follow-up date: an ISO 8601 date-time with offset, or none.
pub(crate) fn date_of(value: &Json) -> Result<String, String> {
    match value {
        Json::Null => Ok(String::new()),
        Json::String(s) if s.trim().is_empty() => Ok(String::new()),
        Json::String(s) => crate::timer::parse_date(s.trim())
            .map(|_| s.trim().to_string())
            .map_err(|e| format!("Expected a valid date-time, but {e}")),
        other => Err(format!("Expected a date-time string, but was '{other}'")),
    }
}

/// Candidate groups or users: a list of names or comma-separated text.
fn names_of(value: &Json) -> Result<Vec<String>, String> {
    match value {
        Json::Null => Ok(Vec::new()),
        Json::String(s) => Ok(s
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(String::from)
            .collect()),
        Json::Array(items) => items
            .iter()
            .map(|i| match i {
                Json::String(s) => Ok(s.trim().to_string()),
                other => Err(format!(
                    "Expected a list of strings, but it contains '{other}'"
                )),
            })
            .collect(),
        other => Err(format!("Expected a list of strings, but was '{other}'")),
    }
}

fn text_of(value: &Json) -> String {
    match value {
        Json::Null => String::new(),
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Engine {
    /// Creates the user task of element instance `key` (activation).
    pub(crate) fn create_user_task(
        &mut self,
        ctx: &mut Ctx,
        def: &DeployedProcess,
        element: u32,
        key: i64,
        pi_key: i64,
        ut: &UserTaskDefinition,
    ) -> Result<(), String> {
        // A linked form that is not deployed is a FORM_NOT_FOUND incident.
        let form_key = match &ut.form_id {
            Some(form_id) => match self.resolve_form(def, form_id, &ut.form_binding) {
                Ok(form_key) => form_key,
                Err(message) => {
                    self.raise_incident(ctx, key, ErrorType::FormNotFound, message, NO_KEY);
                    return Ok(());
                }
            },
            None => NO_KEY,
        };
        let mut task = {
            let vars = self.visible(key);
            let eval = |e: &Option<Expression>, what: &str| -> Result<Json, String> {
                match e {
                    None => Ok(Json::Null),
                    Some(e) => e
                        .evaluate(&vars, &self.clock)
                        .map_err(|m| format!("{what}: {m}")),
                }
            };
            let in_expr = |e: &Option<Expression>, m: String| match e {
                Some(e) => format!("{m} (expression '{}')", e.source()),
                None => m,
            };
            let mut task = UserTaskRecord::empty();
            task.tenant_id = ctx.tenant.to_string();
            task.candidate_groups = names_of(&eval(&ut.candidate_groups, "candidateGroups")?)
                .map_err(|m| in_expr(&ut.candidate_groups, m))?;
            task.candidate_users = names_of(&eval(&ut.candidate_users, "candidateUsers")?)
                .map_err(|m| in_expr(&ut.candidate_users, m))?;
            task.due_date =
                date_of(&eval(&ut.due_date, "dueDate")?).map_err(|m| in_expr(&ut.due_date, m))?;
            task.follow_up_date = date_of(&eval(&ut.follow_up_date, "followUpDate")?)
                .map_err(|m| in_expr(&ut.follow_up_date, m))?;
            if ut.priority.is_some() {
                task.priority = priority_of(&eval(&ut.priority, "priority")?)
                    .map_err(|m| in_expr(&ut.priority, m))?;
            }
            task.external_form_reference =
                text_of(&eval(&ut.external_form_reference, "externalReference")?);
            task.assignee = text_of(&eval(&ut.assignee, "assignee")?);
            task
        };
        let el = def.model.element(element);
        let user_task_key = self.state.keys.next_key();
        let assignee = std::mem::take(&mut task.assignee);
        task.user_task_key = user_task_key;
        task.form_key = form_key;
        task.custom_headers = ut.custom_headers.clone();
        task.element_id = el.id.clone();
        task.element_instance_key = key;
        task.process_instance_key = pi_key;
        task.bpmn_process_id = def.metadata.bpmn_process_id.clone();
        task.process_definition_key = def.metadata.process_definition_key;
        task.process_definition_version = def.metadata.version;
        task.creation_timestamp = ctx.timestamp_ms;
        // As in Zeebe: CREATING carries the assignee, CREATED does not; the
        // assignment follows as its own transition, after the creating
        // listeners (which may correct it).
        task.assignee = assignee;
        self.emit(
            ctx,
            user_task_key,
            Intent::Creating,
            RecordValue::UserTask(Box::new(task)),
        );
        self.element_event(ctx, def, key, Intent::ElementActivated);
        self.next_task_listener(ctx, user_task_key);
        Ok(())
    }

    /// The end of the creating transition: `CREATED`, then the assignment.
    pub(crate) fn user_task_created(&mut self, ctx: &mut Ctx, mut task: UserTaskRecord) {
        let key = task.user_task_key;
        let assignee = std::mem::take(&mut task.assignee);
        task.changed_attributes = Vec::new();
        self.emit(
            ctx,
            key,
            Intent::Created,
            RecordValue::UserTask(Box::new(task.clone())),
        );
        if !assignee.is_empty() {
            task.assignee = assignee;
            task.changed_attributes = vec!["assignee".into()];
            self.run_task_transition(ctx, Intent::Assigning, task, None);
        }
    }

    /// The end of the canceling transition: `CANCELED`, and the element
    /// that waited for the canceling listeners ends its termination.
    pub(crate) fn user_task_canceled(&mut self, ctx: &mut Ctx, task: UserTaskRecord) {
        let key = task.user_task_key;
        let el_key = task.element_instance_key;
        self.emit(
            ctx,
            key,
            Intent::Canceled,
            RecordValue::UserTask(Box::new(task)),
        );
        let waiting = self
            .state
            .instances
            .get(&el_key)
            .is_some_and(|i| i.state == crate::state::ElementState::Terminating);
        if waiting {
            if let Some((def, _, scope_key, _)) = self.instance_parts(el_key) {
                self.terminated(ctx, &def, el_key, scope_key);
            }
        }
    }

    /// Cancels the user task of an element instance being terminated;
    /// returns true when canceling listeners run first (the element's
    /// termination then waits for `user_task_canceled`).
    pub(crate) fn cancel_user_task(&mut self, ctx: &mut Ctx, user_task_key: i64) -> bool {
        let Some(task) = self.state.user_tasks.get(&user_task_key).cloned() else {
            return false;
        };
        let listeners = self.has_task_listeners(&task, ListenerEventType::Canceling);
        if !listeners {
            let value = RecordValue::UserTask(Box::new(task));
            self.emit(ctx, user_task_key, Intent::Canceling, value.clone());
            self.emit(ctx, user_task_key, Intent::Canceled, value);
            return false;
        }
        self.emit(
            ctx,
            user_task_key,
            Intent::Canceling,
            RecordValue::UserTask(Box::new(task)),
        );
        true
    }

    /// `USER_TASK ASSIGN | CLAIM | UPDATE | COMPLETE`.
    pub(crate) fn user_task_command(
        &mut self,
        ctx: &mut Ctx,
        cmd: &Record,
        v: &UserTaskRecord,
    ) -> Result<(), Rejection> {
        let key = cmd.key;
        let (verb, default_action) = match cmd.intent {
            Intent::Assign => ("assign", "assign"),
            Intent::Claim => ("claim", "claim"),
            Intent::Update => ("update", "update"),
            Intent::Complete => ("complete", "complete"),
            other => {
                return Err(rejection(
                    RejectionType::InvalidArgument,
                    format!("command USER_TASK {} is not supported", other.name()),
                ))
            }
        };
        let mut task = self.state.user_tasks.get(&key).cloned().ok_or_else(|| {
            rejection(
                RejectionType::NotFound,
                format!(
                    "Expected to {verb} user task with key '{key}', but no such user task was found"
                ),
            )
        })?;
        if let Some(open) = self.state.task_transitions.get(&key) {
            return Err(rejection(
                RejectionType::InvalidState,
                format!(
                    "Expected to {verb} user task with key '{key}', but it is in state '{}'",
                    open.event.name()
                ),
            ));
        }
        task.action = if v.action.is_empty() {
            default_action.to_string()
        } else {
            v.action.clone()
        };
        task.changed_attributes = Vec::new();
        match cmd.intent {
            Intent::Claim | Intent::Assign => {
                if cmd.intent == Intent::Claim && v.assignee.is_empty() {
                    return Err(rejection(
                        RejectionType::InvalidArgument,
                        format!(
                            "Expected to claim user task with key '{key}', but provided assignee is empty"
                        ),
                    ));
                }
                if cmd.intent == Intent::Claim
                    && !task.assignee.is_empty()
                    && task.assignee != v.assignee
                {
                    return Err(rejection(
                        RejectionType::InvalidState,
                        format!(
                            "Expected to claim user task with key '{key}', but it has already been assigned"
                        ),
                    ));
                }
                task.assignee = v.assignee.clone();
                task.changed_attributes = vec!["assignee".into()];
                self.run_task_transition(ctx, Intent::Assigning, task, cmd.request_id);
            }
            Intent::Update => {
                for name in &v.changed_attributes {
                    match name.as_str() {
                        "candidateGroupsList" => task.candidate_groups = v.candidate_groups.clone(),
                        "candidateUsersList" => task.candidate_users = v.candidate_users.clone(),
                        "dueDate" => task.due_date = checked_date(&v.due_date)?,
                        "followUpDate" => task.follow_up_date = checked_date(&v.follow_up_date)?,
                        "priority" => {
                            task.priority = priority_of(&Json::from(v.priority))
                                .map_err(|e| rejection(RejectionType::InvalidArgument, e))?
                        }
                        other => {
                            return Err(rejection(
                                RejectionType::InvalidArgument,
                                format!(
                                    "Expected to update user task with key '{key}', but the attribute '{other}' cannot be updated; updatable are {}",
                                    UPDATABLE_ATTRIBUTES.join(", ")
                                ),
                            ))
                        }
                    }
                    if !task.changed_attributes.contains(name) {
                        task.changed_attributes.push(name.clone());
                    }
                }
                self.run_task_transition(ctx, Intent::Updating, task, cmd.request_id);
            }
            _ => {
                let vars = parse_document(&v.variables)
                    .map_err(|e| rejection(RejectionType::InvalidArgument, e))?;
                drop(vars);
                task.variables = v.variables.clone();
                self.run_task_transition(ctx, Intent::Completing, task, cmd.request_id);
            }
        }
        // The answer comes when the transition ends (after its listeners).
        Ok(())
    }
}

fn checked_date(text: &str) -> Result<String, Rejection> {
    date_of(&Json::from(text)).map_err(|e| rejection(RejectionType::InvalidArgument, e))
}

impl State {
    /// Applies a `USER_TASK` event.
    pub(crate) fn apply_user_task(&mut self, key: i64, value: &UserTaskRecord, intent: Intent) {
        match intent {
            Intent::Created => {
                let mut task = value.clone();
                task.variables = String::new();
                task.changed_attributes = Vec::new();
                task.action = String::new();
                if let Some(el) = self.instances.get_mut(&task.element_instance_key) {
                    el.job_key = key;
                }
                self.user_tasks.insert(key, task);
            }
            Intent::Assigned | Intent::Updated => {
                // The event carries the whole task with the task listeners'
                // corrections.
                if let Some(task) = self.user_tasks.get_mut(&key) {
                    task.assignee = value.assignee.clone();
                    task.candidate_groups = value.candidate_groups.clone();
                    task.candidate_users = value.candidate_users.clone();
                    task.due_date = value.due_date.clone();
                    task.follow_up_date = value.follow_up_date.clone();
                    task.priority = value.priority;
                }
            }
            Intent::Completed | Intent::Canceled => {
                if let Some(task) = self.user_tasks.remove(&key) {
                    if let Some(el) = self.instances.get_mut(&task.element_instance_key) {
                        el.job_key = NO_KEY;
                    }
                }
            }
            _ => {}
        }
    }
}
