//! Job commands: creation from a task, activation in batches and by push,
//! complete, fail (retries, back-off, incident at zero), throw error,
//! time-out, back-off expiry, yield, update retries and timeout.
//!
//! Job states: ACTIVATABLE → ACTIVATED → (completed | FAILED | ERROR_THROWN |
//! timed out / yielded → ACTIVATABLE). A FAILED job with retries waits for its
//! back-off; without retries it holds an incident.

use crate::engine::{rejection, ActivatedJob, Ctx, Engine, JobPush, ResponseValue, Step};
use crate::model::JobDefinition;
use crate::record::*;
use crate::scope_variables::parse_document;
use crate::state::{DeployedProcess, ElementState, JobState};
use serde_json::Value as Json;
use std::sync::Arc;

/// Most jobs in one activation batch.
pub const MAX_JOBS_PER_BATCH: usize = 1_000;
/// Most variable bytes in one activation batch (the rest is left for the next).
pub const MAX_BATCH_VARIABLE_BYTES: usize = 2 * 1024 * 1024;

/// A job type: static, or a FEEL expression that must give a non-empty
/// string (Zeebe's incident message otherwise).
pub(crate) fn evaluate_job_type(
    expression: &crate::expression::Expression,
    vars: &[(&str, &str)],
    clock: &crate::expression::Clock,
) -> Result<Arc<str>, String> {
    match expression {
        crate::expression::Expression::Static(s) => Ok(s.clone()),
        e => match e.evaluate(vars, clock)? {
            Json::String(s) if !s.is_empty() => Ok(Arc::from(s)),
            other => Err(format!(
                "Expected result of the expression '{}' to be a non-empty string, but was '{other}'",
                e.source()
            )),
        },
    }
}

/// Job retries: a static number (checked at deployment), or a FEEL
/// expression that must give a number.
pub(crate) fn evaluate_retries(
    expression: &crate::expression::Expression,
    vars: &[(&str, &str)],
    clock: &crate::expression::Clock,
) -> Result<i32, String> {
    match expression {
        crate::expression::Expression::Static(s) => s
            .trim()
            .parse::<i32>()
            .map_err(|_| format!("retries '{s}' is not a number")),
        e => match e.evaluate(vars, clock)? {
            Json::Number(n) if n.as_i64().is_some() => Ok(n.as_i64().unwrap_or(0) as i32),
            other => Err(format!(
                "Expected result of the expression '{}' to be a number, but was '{other}'",
                e.source()
            )),
        },
    }
}

impl Engine {
    /// The job a task creates, with its expressions evaluated.
    pub(crate) fn job_for(
        &self,
        def: &DeployedProcess,
        element: u32,
        key: i64,
        pi_key: i64,
        job: &JobDefinition,
    ) -> Result<JobRecord, String> {
        let el = def.model.element(element);
        let all_static =
            job.job_type.is_static() && job.retries.is_static() && job.dynamic_headers.is_empty();
        let vars = if all_static {
            Vec::new()
        } else {
            self.visible(key)
        };
        let job_type = evaluate_job_type(&job.job_type, &vars, &self.clock)?;
        let retries = evaluate_retries(&job.retries, &vars, &self.clock)?;
        let custom_headers = if job.dynamic_headers.is_empty() {
            job.custom_headers.clone()
        } else {
            let mut headers: serde_json::Map<String, Json> =
                serde_json::from_str(&job.custom_headers).unwrap_or_default();
            for (name, e) in &job.dynamic_headers {
                let value = match e.evaluate(&vars, &self.clock)? {
                    v if crate::model::is_candidate_list_header(name) => {
                        crate::model::candidate_list_header(&v)
                    }
                    Json::String(s) => s,
                    other => other.to_string(),
                };
                headers.insert(name.clone(), Json::String(value));
            }
            Arc::from(Json::Object(headers).to_string())
        };
        Ok(JobRecord {
            job_type,
            worker: String::new(),
            retries,
            retry_backoff_ms: 0,
            recurring_at_ms: NO_KEY,
            deadline_ms: NO_KEY,
            timeout_ms: 0,
            error_message: String::new(),
            error_code: String::new(),
            custom_headers,
            variables: String::new(),
            element_id: el.id.clone(),
            element_instance_key: key,
            process_instance_key: pi_key,
            bpmn_process_id: def.metadata.bpmn_process_id.clone(),
            process_definition_version: def.metadata.version,
            process_definition_key: def.metadata.process_definition_key,
            job_kind: JobKind::BpmnElement,
            listener_event_type: ListenerEventType::Unspecified,
            result: JobResult::default(),
            user_task: None,
        })
    }

    /// Completes the task `el_key` that waited for a job or a user: the
    /// variables are merged into the scopes (set locally when the task has
    /// output mappings), then the element completes.
    pub(crate) fn complete_waiting_task(
        &mut self,
        ctx: &mut Ctx,
        el_key: i64,
        vars: Vec<(String, &serde_json::value::RawValue)>,
    ) {
        if let Some((def, element, _, pi_key)) = self.instance_parts(el_key) {
            let local = !def.model.element(element).outputs.is_empty();
            for (name, value) in vars {
                if local {
                    self.set_local(ctx, el_key, pi_key, &name, value.get());
                } else {
                    self.merge(ctx, el_key, pi_key, &name, value.get());
                }
            }
            ctx.steps.push_back(Step::Complete(el_key));
        }
    }

    /// If a stream serves the (activatable) job's type, activates it for that stream.
    pub(crate) fn push_job(&mut self, ctx: &mut Ctx, job_key: i64) {
        if self.streams.is_empty() {
            return;
        }
        let Some(job) = self.state.jobs.get(&job_key) else {
            return;
        };
        if job.state != JobState::Activatable {
            return;
        }
        let ty = job.record.job_type.clone();
        let tenant = self.state.process_tenant(job.record.process_definition_key);
        let process = job.record.bpmn_process_id.clone();
        let Some((stream_id, stream)) = self.streams.next_for(&ty, &tenant, &process) else {
            return;
        };
        let activated = self.activated(
            job_key,
            &stream.worker,
            stream.timeout_ms,
            &stream.fetch_variables,
            ctx.timestamp_ms,
        );
        let batch = JobBatchRecord {
            job_type: ty.to_string(),
            worker: stream.worker.clone(),
            timeout_ms: stream.timeout_ms,
            max_jobs_to_activate: 1,
            fetch_variables: stream.fetch_variables.clone(),
            job_keys: vec![job_key],
            jobs: vec![activated.clone()],
            truncated: false,
        };
        let created_ms = job.created_ms;
        let key = self.state.keys.next_key();
        self.emit(ctx, key, Intent::Activated, RecordValue::JobBatch(batch));
        ctx.out.pushed_jobs.push(JobPush {
            stream_id,
            job: ActivatedJob {
                key: job_key,
                tenant: self.state.process_tenant(activated.process_definition_key),
                job: activated,
                created_ms,
            },
        });
    }

    fn activated(
        &self,
        job_key: i64,
        worker: &str,
        timeout_ms: i64,
        fetch: &[String],
        now_ms: i64,
    ) -> JobRecord {
        let job = &self.state.jobs[&job_key];
        let mut record = job.record.clone();
        record.worker = worker.to_string();
        record.timeout_ms = timeout_ms;
        record.deadline_ms = now_ms.saturating_add(timeout_ms);
        record.variables = self.variables_json(record.element_instance_key, fetch);
        record
    }

    pub(crate) fn activate_jobs(
        &mut self,
        ctx: &mut Ctx,
        cmd: &Record,
        b: &JobBatchRecord,
    ) -> Result<(), Rejection> {
        if b.job_type.trim().is_empty() {
            return Err(rejection(
                RejectionType::InvalidArgument,
                "Expected to activate jobs of a type, but the type is empty".into(),
            ));
        }
        if b.timeout_ms < 1 {
            return Err(rejection(
                RejectionType::InvalidArgument,
                format!(
                    "Expected a job timeout of at least 1 ms, but was {}",
                    b.timeout_ms
                ),
            ));
        }
        if b.max_jobs_to_activate < 1 {
            return Err(rejection(
                RejectionType::InvalidArgument,
                format!(
                    "Expected to activate at least 1 job, but maxJobsToActivate was {}",
                    b.max_jobs_to_activate
                ),
            ));
        }
        let max = (b.max_jobs_to_activate as usize).min(MAX_JOBS_PER_BATCH);
        let state = &self.state;
        // Only jobs of the tenants asked for and the processes granted.
        let restricted = cmd.authorized_tenants.is_some() || cmd.authorized_processes.is_some();
        let activatable = |k: &&i64| {
            !restricted
                || state.jobs.get(k).is_some_and(|j| {
                    let tenant = state.process_tenant(j.record.process_definition_key);
                    crate::owner::may_activate(cmd, &tenant, &j.record.bpmn_process_id)
                })
        };
        let candidates: Vec<i64> = state
            .activatable
            .get(b.job_type.as_str())
            .map(|set| {
                set.iter()
                    .filter(activatable)
                    .take(max + 1)
                    .copied()
                    .collect()
            })
            .unwrap_or_default();
        let mut jobs = Vec::new();
        let mut keys = Vec::new();
        let mut bytes = 0;
        let mut truncated = candidates.len() > max;
        for &k in candidates.iter().take(max) {
            let record = self.activated(
                k,
                &b.worker,
                b.timeout_ms,
                &b.fetch_variables,
                ctx.timestamp_ms,
            );
            bytes += record.variables.len();
            if bytes > MAX_BATCH_VARIABLE_BYTES && !jobs.is_empty() {
                truncated = true;
                break;
            }
            keys.push(k);
            jobs.push(record);
        }
        if !jobs.is_empty() {
            let batch = JobBatchRecord {
                job_type: b.job_type.clone(),
                worker: b.worker.clone(),
                timeout_ms: b.timeout_ms,
                max_jobs_to_activate: b.max_jobs_to_activate,
                fetch_variables: b.fetch_variables.clone(),
                job_keys: keys.clone(),
                jobs: jobs.clone(),
                truncated,
            };
            let key = self.state.keys.next_key();
            self.emit(ctx, key, Intent::Activated, RecordValue::JobBatch(batch));
        }
        let activated = keys
            .into_iter()
            .zip(jobs)
            .map(|(key, job)| ActivatedJob {
                key,
                tenant: self.state.process_tenant(job.process_definition_key),
                created_ms: self
                    .state
                    .jobs
                    .get(&key)
                    .expect("a job just activated exists")
                    .created_ms,
                job,
            })
            .collect();
        Self::respond(
            ctx,
            cmd,
            ResponseValue::JobBatch {
                jobs: activated,
                truncated,
            },
        );
        Ok(())
    }

    pub(crate) fn job_command(
        &mut self,
        ctx: &mut Ctx,
        cmd: &Record,
        v: &JobRecord,
    ) -> Result<(), Rejection> {
        let key = cmd.key;
        let intent_name = cmd.intent.name();
        let job = self.state.jobs.get(&key).cloned().ok_or_else(|| {
            rejection(
                RejectionType::NotFound,
                format!(
                    "Expected to {intent_name} job with key '{key}', but no such job was found"
                ),
            )
        })?;
        let wrong_state = |state: JobState| {
            rejection(
                RejectionType::InvalidState,
                format!(
                    "Expected to {intent_name} job with key '{key}', but it is in state {state:?}"
                ),
            )
        };
        let mut record = job.record.clone();
        let result_intent = match cmd.intent {
            Intent::Complete => {
                if !matches!(job.state, JobState::Activated | JobState::Activatable) {
                    return Err(wrong_state(job.state));
                }
                if record.job_kind != JobKind::BpmnElement {
                    return self.complete_listener_job(ctx, cmd, record, v);
                }
                let vars = parse_document(&v.variables)
                    .map_err(|e| rejection(RejectionType::InvalidArgument, e))?;
                record.variables = v.variables.clone();
                self.emit(
                    ctx,
                    key,
                    Intent::Completed,
                    RecordValue::Job(Box::new(record.clone())),
                );
                self.complete_waiting_task(ctx, record.element_instance_key, vars);
                Intent::Completed
            }
            Intent::Fail => {
                if job.state != JobState::Activated {
                    return Err(wrong_state(job.state));
                }
                let vars = parse_document(&v.variables)
                    .map_err(|e| rejection(RejectionType::InvalidArgument, e))?;
                record.retries = v.retries;
                record.error_message = v.error_message.clone();
                record.retry_backoff_ms = v.retry_backoff_ms.max(0);
                record.recurring_at_ms = if v.retries > 0 && v.retry_backoff_ms > 0 {
                    ctx.timestamp_ms.saturating_add(v.retry_backoff_ms)
                } else {
                    NO_KEY
                };
                record.variables = v.variables.clone();
                self.emit(
                    ctx,
                    key,
                    Intent::Failed,
                    RecordValue::Job(Box::new(record.clone())),
                );
                let el_key = record.element_instance_key;
                if let Some((_, _, _, pi_key)) = self.instance_parts(el_key) {
                    for (name, value) in vars {
                        self.set_local(ctx, el_key, pi_key, &name, value.get());
                    }
                }
                if v.retries <= 0 {
                    let message = if v.error_message.is_empty() {
                        "No more retries left.".to_string()
                    } else {
                        v.error_message.clone()
                    };
                    let error_type = Self::no_retries_error(&record);
                    self.raise_incident(ctx, el_key, error_type, message, key);
                } else if record.recurring_at_ms == NO_KEY {
                    self.push_job(ctx, key);
                }
                Intent::Failed
            }
            Intent::ThrowError => {
                if !matches!(job.state, JobState::Activated | JobState::Activatable) {
                    return Err(wrong_state(job.state));
                }
                if record.job_kind != JobKind::BpmnElement {
                    return Err(self.listener_job_throw_error(key, &record));
                }
                record.error_code = v.error_code.clone();
                record.error_message = v.error_message.clone();
                record.variables = v.variables.clone();
                self.emit(
                    ctx,
                    key,
                    Intent::ErrorThrown,
                    RecordValue::Job(Box::new(record.clone())),
                );
                if self.throw_error(
                    ctx,
                    record.element_instance_key,
                    &v.error_code,
                    &v.variables,
                ) {
                    Self::respond(
                        ctx,
                        cmd,
                        ResponseValue::Job {
                            key,
                            intent: Intent::ErrorThrown,
                        },
                    );
                    return Ok(());
                }
                let message = format!(
                    "Expected to throw an error event with the code '{}' with message '{}', but it was not caught. No error events are available in the scope.",
                    v.error_code, v.error_message
                );
                self.raise_incident(
                    ctx,
                    record.element_instance_key,
                    ErrorType::UnhandledErrorEvent,
                    message,
                    key,
                );
                Intent::ErrorThrown
            }
            Intent::UpdateRetries => {
                if v.retries < 1 {
                    return Err(rejection(
                        RejectionType::InvalidArgument,
                        format!("Expected to update retries of job '{key}' to a positive number, but was {}", v.retries),
                    ));
                }
                record.retries = v.retries;
                self.emit(
                    ctx,
                    key,
                    Intent::RetriesUpdated,
                    RecordValue::Job(Box::new(record)),
                );
                Intent::RetriesUpdated
            }
            Intent::UpdateTimeout => {
                if job.state != JobState::Activated {
                    return Err(rejection(
                        RejectionType::InvalidState,
                        format!("Expected to update the timeout of job '{key}', but it is not activated and has no deadline"),
                    ));
                }
                record.timeout_ms = v.timeout_ms;
                record.deadline_ms = ctx.timestamp_ms.saturating_add(v.timeout_ms);
                self.emit(
                    ctx,
                    key,
                    Intent::TimeoutUpdated,
                    RecordValue::Job(Box::new(record)),
                );
                Intent::TimeoutUpdated
            }
            Intent::TimeOut => {
                if job.state != JobState::Activated || job.record.deadline_ms > ctx.timestamp_ms {
                    return Err(wrong_state(job.state));
                }
                self.emit(
                    ctx,
                    key,
                    Intent::TimedOut,
                    RecordValue::Job(Box::new(record)),
                );
                self.push_job(ctx, key);
                Intent::TimedOut
            }
            Intent::RecurAfterBackoff => {
                if job.state != JobState::Failed
                    || job.record.retries <= 0
                    || job.record.recurring_at_ms == NO_KEY
                    || job.record.recurring_at_ms > ctx.timestamp_ms
                {
                    return Err(wrong_state(job.state));
                }
                self.emit(
                    ctx,
                    key,
                    Intent::RecurredAfterBackoff,
                    RecordValue::Job(Box::new(record)),
                );
                self.push_job(ctx, key);
                Intent::RecurredAfterBackoff
            }
            Intent::Yield => {
                if job.state != JobState::Activated {
                    return Err(wrong_state(job.state));
                }
                self.emit(
                    ctx,
                    key,
                    Intent::Yielded,
                    RecordValue::Job(Box::new(record)),
                );
                Intent::Yielded
            }
            other => {
                return Err(rejection(
                    RejectionType::InvalidArgument,
                    format!("command JOB {} is not supported", other.name()),
                ))
            }
        };
        Self::respond(
            ctx,
            cmd,
            ResponseValue::Job {
                key,
                intent: result_intent,
            },
        );
        Ok(())
    }

    pub(crate) fn resolve_incident(
        &mut self,
        ctx: &mut Ctx,
        cmd: &Record,
    ) -> Result<(), Rejection> {
        let key = cmd.key;
        let incident = self.state.incidents.get(&key).cloned().ok_or_else(|| {
            rejection(
                RejectionType::NotFound,
                format!(
                    "Expected to resolve incident with key '{key}', but no such incident was found"
                ),
            )
        })?;
        if incident.job_key != NO_KEY {
            if let Some(job) = self.state.jobs.get(&incident.job_key) {
                if job.record.retries <= 0 {
                    return Err(rejection(
                        RejectionType::InvalidState,
                        format!(
                            "Expected to resolve incident '{key}' of job '{}', but the job has no retries left; update its retries first",
                            incident.job_key
                        ),
                    ));
                }
            }
        }
        self.emit(
            ctx,
            key,
            Intent::Resolved,
            RecordValue::Incident(incident.clone()),
        );
        if incident.job_key != NO_KEY {
            self.push_job(ctx, incident.job_key);
        } else if let Some(inst) = self.state.instances.get(&incident.element_instance_key) {
            let el_key = incident.element_instance_key;
            match inst.state {
                ElementState::Activating => ctx.steps.push_back(Step::ContinueActivation(el_key)),
                ElementState::Completing => ctx.steps.push_back(Step::ContinueCompletion(el_key)),
                _ => self.retry_task_listener(ctx, el_key),
            }
        }
        Self::respond(ctx, cmd, ResponseValue::IncidentResolved { key });
        Ok(())
    }
}
