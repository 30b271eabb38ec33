//! Execution listeners (start/end jobs on tasks, processes, sub-processes,
//! events) and task listeners (creating, assigning, updating, completing,
//! canceling jobs on Camunda user tasks, with denial and corrections):
//! order, variables, incidents, rejections of invalid models and of listener
//! job commands, and replay determinism.

mod common;
use ::engine::*;
use common::*;

fn listeners(items: &[(&str, &str)]) -> String {
    let mut out = String::from("<zeebe:executionListeners>");
    for (event, ty) in items {
        out.push_str(&format!(
            r#"<zeebe:executionListener eventType="{event}" type="{ty}"/>"#
        ));
    }
    out.push_str("</zeebe:executionListeners>");
    out
}

/// The job types created, in order.
fn created_jobs(h: &Harness) -> Vec<(String, JobKind, ListenerEventType)> {
    h.log
        .iter()
        .filter(|r| r.record_type == RecordType::Event && r.intent == Intent::Created)
        .filter_map(|r| match &r.value {
            RecordValue::Job(j) => {
                Some((j.job_type.to_string(), j.job_kind, j.listener_event_type))
            }
            _ => None,
        })
        .collect()
}

/// Activates and completes the one job of `job_type`.
fn complete_one(h: &mut Harness, job_type: &str, variables: &str) -> ActivatedJob {
    let jobs = h.activate(job_type, 10);
    assert_eq!(jobs.len(), 1, "one {job_type} job: {jobs:?}");
    h.complete(jobs[0].key, variables).expect("complete");
    jobs[0].clone()
}

#[test]
fn start_and_end_listeners_of_a_task_run_as_jobs_around_it() {
    let mut h = Harness::new();
    let ext = listeners(&[("start", "s1"), ("start", "s2"), ("end", "e1")]);
    let xml = bpmn(
        "p",
        &format!(
            r#"<bpmn:startEvent id="start"/>{}<bpmn:endEvent id="end"/>{}{}"#,
            service_task("task", "work", &ext),
            flow("f1", "start", "task"),
            flow("f2", "task", "end")
        ),
    );
    h.deploy("p.bpmn", &xml).unwrap();
    let pi = h.create("p", "{}");
    assert_eq!(h.element_intents(pi, "task"), ["ELEMENT_ACTIVATING"]);
    assert!(
        h.activate("work", 10).is_empty(),
        "the task waits for its start listeners"
    );
    let s1 = complete_one(&mut h, "s1", r#"{"fromStart": 1}"#);
    assert_eq!(s1.job.job_kind, JobKind::ExecutionListener);
    assert_eq!(s1.job.listener_event_type, ListenerEventType::Start);
    assert_eq!(&*s1.job.element_id, "task");
    assert_eq!(h.element_intents(pi, "task"), ["ELEMENT_ACTIVATING"]);
    complete_one(&mut h, "s2", "{}");
    assert_eq!(
        h.element_intents(pi, "task"),
        ["ELEMENT_ACTIVATING", "ELEMENT_ACTIVATED"]
    );
    // A start listener's variables are local to the element.
    let work = h.activate_fetch("work", 10, vec![]);
    assert!(work[0].job.variables.contains(r#""fromStart":1"#));
    let task_key = work[0].job.element_instance_key;
    assert_eq!(h.variable(task_key, "fromStart").as_deref(), Some("1"));
    assert_eq!(h.variable(pi, "fromStart"), None);
    h.complete(work[0].key, "{}").unwrap();
    assert_eq!(
        h.element_intents(pi, "task"),
        [
            "ELEMENT_ACTIVATING",
            "ELEMENT_ACTIVATED",
            "ELEMENT_COMPLETING"
        ]
    );
    let e1 = complete_one(&mut h, "e1", r#"{"fromEnd": 2}"#);
    assert_eq!(e1.job.listener_event_type, ListenerEventType::End);
    assert!(h.is_completed(pi));
    // An end listener's variables propagate like output mappings.
    assert!(h.log.iter().any(
        |r| matches!(&r.value, RecordValue::Variable(v) if v.name == "fromEnd" && v.scope_key == pi)
    ));
    let order: Vec<String> = created_jobs(&h).into_iter().map(|j| j.0).collect();
    assert_eq!(order, ["s1", "s2", "work", "e1"]);
}

#[test]
fn process_and_sub_process_listeners_wrap_their_contents() {
    let mut h = Harness::new();
    let sub = format!(
        r#"<bpmn:subProcess id="sub"><bpmn:extensionElements>{}</bpmn:extensionElements><bpmn:startEvent id="ss"/>{}<bpmn:endEvent id="se"/>{}{}</bpmn:subProcess>"#,
        listeners(&[("start", "sub-start"), ("end", "sub-end")]),
        service_task("inner", "work", ""),
        flow("g1", "ss", "inner"),
        flow("g2", "inner", "se")
    );
    let xml = bpmn(
        "p",
        &format!(
            r#"<bpmn:extensionElements>{}</bpmn:extensionElements><bpmn:startEvent id="start"/>{sub}<bpmn:endEvent id="end"/>{}{}"#,
            listeners(&[("start", "p-start"), ("end", "p-end")]),
            flow("f1", "start", "sub"),
            flow("f2", "sub", "end")
        ),
    );
    h.deploy("p.bpmn", &xml).unwrap();
    let pi = h.create("p", "{}");
    assert_eq!(h.element_intents(pi, "p"), ["ELEMENT_ACTIVATING"]);
    complete_one(&mut h, "p-start", r#"{"x": 5}"#);
    assert_eq!(
        h.variable(pi, "x").as_deref(),
        Some("5"),
        "process-level variable"
    );
    complete_one(&mut h, "sub-start", "{}");
    complete_one(&mut h, "work", "{}");
    assert!(!h.element_intents(pi, "sub").contains(&"ELEMENT_COMPLETED"));
    complete_one(&mut h, "sub-end", "{}");
    assert!(h.element_intents(pi, "sub").contains(&"ELEMENT_COMPLETED"));
    assert!(!h.is_completed(pi));
    complete_one(&mut h, "p-end", "{}");
    assert!(h.is_completed(pi));
    let order: Vec<String> = created_jobs(&h).into_iter().map(|j| j.0).collect();
    assert_eq!(order, ["p-start", "sub-start", "work", "sub-end", "p-end"]);
}

#[test]
fn events_and_gateways_run_their_listeners() {
    let mut h = Harness::new();
    let xml = bpmn(
        "p",
        &format!(
            r#"<bpmn:startEvent id="start"><bpmn:extensionElements>{}</bpmn:extensionElements></bpmn:startEvent><bpmn:exclusiveGateway id="gw"><bpmn:extensionElements>{}</bpmn:extensionElements></bpmn:exclusiveGateway><bpmn:intermediateThrowEvent id="throw"><bpmn:extensionElements>{}</bpmn:extensionElements></bpmn:intermediateThrowEvent><bpmn:endEvent id="end"><bpmn:extensionElements>{}</bpmn:extensionElements></bpmn:endEvent>{}{}{}"#,
            listeners(&[("end", "start-end")]),
            listeners(&[("start", "gw-start")]),
            listeners(&[("start", "throw-start"), ("end", "throw-end")]),
            listeners(&[("start", "end-start"), ("end", "end-end")]),
            flow("f1", "start", "gw"),
            flow("f2", "gw", "throw"),
            flow("f3", "throw", "end")
        ),
    );
    h.deploy("p.bpmn", &xml).unwrap();
    let pi = h.create("p", "{}");
    h.auto_complete(20);
    assert!(h.is_completed(pi));
    let order: Vec<String> = created_jobs(&h).into_iter().map(|j| j.0).collect();
    assert_eq!(
        order,
        [
            "start-end",
            "gw-start",
            "throw-start",
            "throw-end",
            "end-start",
            "end-end"
        ]
    );
}

#[test]
fn a_listener_job_without_retries_raises_an_incident_that_resolving_retries() {
    let mut h = Harness::new();
    let ext = listeners(&[("start", "audit")]);
    let xml = bpmn(
        "p",
        &format!(
            r#"<bpmn:startEvent id="start"/>{}<bpmn:endEvent id="end"/>{}{}"#,
            service_task("task", "work", &ext),
            flow("f1", "start", "task"),
            flow("f2", "task", "end")
        ),
    );
    h.deploy("p.bpmn", &xml).unwrap();
    let pi = h.create("p", "{}");
    let job = h.activate("audit", 1)[0].key;
    h.job(Intent::Fail, job, |j| {
        j.retries = 0;
        j.error_message = "audit store down".into();
    })
    .unwrap();
    let incidents = h.incidents();
    assert_eq!(incidents.len(), 1);
    let (incident_key, incident) = &incidents[0];
    assert_eq!(incident.error_type, ErrorType::ExecutionListenerNoRetries);
    assert_eq!(incident.error_type.name(), "EXECUTION_LISTENER_NO_RETRIES");
    assert_eq!(incident.job_key, job);
    assert_eq!(&*incident.element_id, "task");
    assert_eq!(incident.error_message, "audit store down");
    h.job(Intent::UpdateRetries, job, |j| j.retries = 1)
        .unwrap();
    h.resolve(*incident_key).unwrap();
    assert!(h.incidents().is_empty());
    let again = h.activate("audit", 1);
    assert_eq!(again[0].key, job, "the same listener job runs again");
    h.complete(job, "{}").unwrap();
    complete_one(&mut h, "work", "{}");
    assert!(h.is_completed(pi));
}

#[test]
fn a_bpmn_error_from_a_listener_job_is_rejected() {
    let mut h = Harness::new();
    let ext = listeners(&[("start", "audit")]);
    let xml = bpmn(
        "p",
        &format!(
            r#"<bpmn:startEvent id="start"/>{}<bpmn:endEvent id="end"/>{}{}"#,
            service_task("task", "work", &ext),
            flow("f1", "start", "task"),
            flow("f2", "task", "end")
        ),
    );
    h.deploy("p.bpmn", &xml).unwrap();
    h.create("p", "{}");
    let job = h.activate("audit", 1)[0].key;
    let err = h
        .job(Intent::ThrowError, job, |j| j.error_code = "E".into())
        .unwrap_err();
    assert_eq!(err.rejection_type, RejectionType::InvalidState);
    assert!(
        err.reason
            .contains("Throwing BPMN errors from execution listener jobs is not supported"),
        "{}",
        err.reason
    );
    // A job result is only for task listener jobs.
    let err = h
        .job(Intent::Complete, job, |j| {
            j.variables = "{}".into();
            j.result.denied = true;
        })
        .unwrap_err();
    assert_eq!(err.rejection_type, RejectionType::InvalidArgument);
}

#[test]
fn canceling_the_instance_cancels_an_open_listener_job() {
    let mut h = Harness::new();
    let ext = listeners(&[("start", "audit")]);
    let xml = bpmn(
        "p",
        &format!(
            r#"<bpmn:startEvent id="start"/>{}<bpmn:endEvent id="end"/>{}{}"#,
            service_task("task", "work", &ext),
            flow("f1", "start", "task"),
            flow("f2", "task", "end")
        ),
    );
    h.deploy("p.bpmn", &xml).unwrap();
    let pi = h.create("p", "{}");
    h.cancel(pi).unwrap();
    assert!(h.is_terminated(pi));
    assert!(h.engine.state().jobs.is_empty());
    assert!(h.activate("audit", 1).is_empty());
}

#[test]
fn invalid_listener_models_are_rejected_naming_the_element() {
    let cases: Vec<(String, &str, &str)> = vec![
        (
            format!(
                r#"<bpmn:startEvent id="start"><bpmn:extensionElements>{}</bpmn:extensionElements></bpmn:startEvent>"#,
                listeners(&[("start", "x")])
            ),
            "start",
            "Execution listeners of type 'start' are not supported by start events",
        ),
        (
            format!(
                r#"<bpmn:startEvent id="start"/><bpmn:parallelGateway id="gw"><bpmn:extensionElements>{}</bpmn:extensionElements></bpmn:parallelGateway>{}"#,
                listeners(&[("end", "x")]),
                flow("f", "start", "gw")
            ),
            "gw",
            "Execution listeners of type 'end' are not supported by gateway element",
        ),
        (
            format!(
                r#"<bpmn:startEvent id="start"/><bpmn:endEvent id="err"><bpmn:extensionElements>{}</bpmn:extensionElements><bpmn:errorEventDefinition errorRef="e"/></bpmn:endEvent>{}"#,
                listeners(&[("end", "x")]),
                flow("f", "start", "err")
            ),
            "err",
            "Execution listeners of type 'end' are not supported by [error] end events",
        ),
        (
            format!(
                r#"<bpmn:startEvent id="start"/>{}<bpmn:boundaryEvent id="b" attachedToRef="task"><bpmn:extensionElements>{}</bpmn:extensionElements><bpmn:timerEventDefinition><bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>{}"#,
                service_task("task", "work", ""),
                listeners(&[("start", "x")]),
                flow("f", "start", "task")
            ),
            "b",
            "Execution listeners of type 'start' are not supported by boundary events",
        ),
        (
            format!(
                r#"<bpmn:startEvent id="start"/>{}{}"#,
                service_task("task", "work", &listeners(&[("start", "x"), ("start", "x")])),
                flow("f", "start", "task")
            ),
            "task",
            "Found '2' duplicates based on eventType[start] and type[x], these combinations should be unique.",
        ),
        (
            format!(
                r#"<bpmn:startEvent id="start"/>{}{}"#,
                service_task("task", "work", r#"<zeebe:executionListeners><zeebe:executionListener eventType="take" type="x"/></zeebe:executionListeners>"#),
                flow("f", "start", "task")
            ),
            "task",
            "eventType 'take' is not supported; supported are: start, end",
        ),
        (
            format!(
                r#"<bpmn:startEvent id="start"/>{}{}"#,
                service_task("task", "work", r#"<zeebe:executionListeners><zeebe:executionListener eventType="start" type=""/></zeebe:executionListeners>"#),
                flow("f", "start", "task")
            ),
            "task",
            "zeebe:executionListener has no type",
        ),
        (
            format!(
                r#"<bpmn:startEvent id="start"/><bpmn:userTask id="ut"><bpmn:extensionElements><zeebe:userTask/><zeebe:taskListeners><zeebe:taskListener eventType="start" type="x"/></zeebe:taskListeners></bpmn:extensionElements></bpmn:userTask>{}"#,
                flow("f", "start", "ut")
            ),
            "ut",
            "zeebe:taskListener eventType 'start' is not supported; supported are: creating, assigning, updating, completing, canceling",
        ),
    ];
    for (body, element, message) in cases {
        let mut h = Harness::new();
        let xml = bpmn("bad", &body).replace(
            "</bpmn:definitions>",
            r#"<bpmn:error id="e" errorCode="E"/></bpmn:definitions>"#,
        );
        let err = h.deploy("bad.bpmn", &xml).unwrap_err();
        assert_eq!(err.rejection_type, RejectionType::InvalidArgument);
        assert!(
            err.reason.contains(&format!("'{element}'")) && err.reason.contains(message),
            "expected '{element}' and '{message}' in: {}",
            err.reason
        );
    }
}

// ----- task listeners -----

fn user_task_process(task_listeners: &[(&str, &str)], extra: &str) -> String {
    let mut tl = String::from("<zeebe:taskListeners>");
    for (event, ty) in task_listeners {
        tl.push_str(&format!(
            r#"<zeebe:taskListener eventType="{event}" type="{ty}"/>"#
        ));
    }
    tl.push_str("</zeebe:taskListeners>");
    bpmn(
        "ut",
        &format!(
            r#"<bpmn:startEvent id="s"/><bpmn:userTask id="task"><bpmn:extensionElements><zeebe:userTask/>{extra}{tl}</bpmn:extensionElements></bpmn:userTask><bpmn:endEvent id="e"/>{}{}"#,
            flow("f1", "s", "task"),
            flow("f2", "task", "e")
        ),
    )
}

fn task_intents(h: &Harness) -> Vec<&'static str> {
    h.log
        .iter()
        .filter(|r| r.record_type == RecordType::Event && r.value_type == ValueType::UserTask)
        .map(|r| r.intent.name())
        .collect()
}

fn task_command(
    h: &mut Harness,
    key: i64,
    intent: Intent,
    fill: impl FnOnce(&mut UserTaskRecord),
) -> u64 {
    let mut value = UserTaskRecord::empty();
    fill(&mut value);
    h.submit(
        Record::command(key, intent, RecordValue::UserTask(Box::new(value)), None),
        true,
    )
}

fn complete_listener(
    h: &mut Harness,
    job_type: &str,
    fill: impl FnOnce(&mut JobResult),
) -> ActivatedJob {
    let jobs = h.activate(job_type, 10);
    assert_eq!(jobs.len(), 1, "one {job_type} job");
    let job = jobs[0].clone();
    assert_eq!(job.job.job_kind, JobKind::TaskListener);
    h.job(Intent::Complete, job.key, |j| {
        j.variables = "{}".into();
        fill(&mut j.result);
    })
    .expect("complete the listener job");
    job
}

#[test]
fn creating_and_assigning_listeners_run_before_the_task_is_created_and_assigned() {
    let mut h = Harness::new();
    let xml = user_task_process(
        &[("creating", "on-create"), ("assigning", "on-assign")],
        r#"<zeebe:assignmentDefinition assignee="alice"/>"#,
    );
    h.deploy("ut.bpmn", &xml).unwrap();
    let pi = h.create("ut", "{}");
    assert_eq!(task_intents(&h), ["CREATING"]);
    assert!(h.engine.state().user_tasks.is_empty());
    let job = complete_listener(&mut h, "on-create", |_| {});
    assert_eq!(job.job.listener_event_type, ListenerEventType::Creating);
    assert_eq!(task_intents(&h), ["CREATING", "CREATED", "ASSIGNING"]);
    // The assigning listener corrects the priority and the assignee.
    let job = complete_listener(&mut h, "on-assign", |r| {
        r.corrected_attributes = vec!["priority".into(), "assignee".into()];
        r.priority = 80;
        r.assignee = "bob".into();
    });
    assert_eq!(job.job.listener_event_type, ListenerEventType::Assigning);
    assert_eq!(
        task_intents(&h),
        ["CREATING", "CREATED", "ASSIGNING", "ASSIGNED"]
    );
    let task = h.engine.state().user_tasks.values().next().unwrap().clone();
    assert_eq!(task.assignee, "bob");
    assert_eq!(task.priority, 80);
    // Listener jobs leave the element's link to its user task alone.
    let key = task.user_task_key;
    task_command(&mut h, key, Intent::Complete, |t| t.variables = "{}".into());
    assert!(h.is_completed(pi));
}

#[test]
fn an_assigning_listener_denies_the_assignment() {
    let mut h = Harness::new();
    h.deploy(
        "ut.bpmn",
        &user_task_process(&[("assignment", "guard")], ""),
    )
    .unwrap();
    h.create("ut", "{}");
    let key = *h.engine.state().user_tasks.keys().next().unwrap();
    let request = task_command(&mut h, key, Intent::Assign, |t| {
        t.assignee = "mallory".into()
    });
    assert!(
        !h.responses.contains_key(&request),
        "the answer waits for the listener"
    );
    // Another command is refused while the transition is open.
    let err = h
        .request(Record::command(
            key,
            Intent::Complete,
            RecordValue::UserTask(Box::new(UserTaskRecord::empty())),
            None,
        ))
        .unwrap_err();
    assert_eq!(err.rejection_type, RejectionType::InvalidState);
    complete_listener(&mut h, "guard", |r| {
        r.denied = true;
        r.denied_reason = "not on the team".into();
    });
    let answer = h.responses.remove(&request).expect("answered");
    let err = answer.unwrap_err();
    assert_eq!(err.rejection_type, RejectionType::InvalidState);
    assert!(err.reason.contains("not on the team"), "{}", err.reason);
    assert_eq!(task_intents(&h).last(), Some(&"ASSIGNMENT_DENIED"));
    assert_eq!(h.engine.state().user_tasks[&key].assignee, "");
    assert!(h.engine.state().task_transitions.is_empty());
}

#[test]
fn updating_listeners_correct_or_deny_an_update() {
    let mut h = Harness::new();
    h.deploy(
        "ut.bpmn",
        &user_task_process(&[("updating", "u1"), ("updating", "u2")], ""),
    )
    .unwrap();
    h.create("ut", "{}");
    let key = *h.engine.state().user_tasks.keys().next().unwrap();
    let request = task_command(&mut h, key, Intent::Update, |t| {
        t.changed_attributes = vec!["priority".into()];
        t.priority = 10;
    });
    complete_listener(&mut h, "u1", |r| {
        r.corrected_attributes = vec!["candidateGroupsList".into(), "dueDate".into()];
        r.candidate_groups = vec!["ops".into()];
        r.due_date = "2030-01-01T10:00:00Z".into();
    });
    assert!(
        !h.responses.contains_key(&request),
        "waits for the second listener"
    );
    // The second listener sees the first one's correction.
    let second = h.activate("u2", 1);
    let event_task = h
        .engine
        .state()
        .task_transitions
        .get(&key)
        .expect("open transition")
        .task
        .clone();
    assert_eq!(event_task.candidate_groups, ["ops"]);
    let seen = second[0]
        .job
        .user_task
        .as_ref()
        .expect("a task listener job carries its task");
    assert_eq!(seen.candidate_groups, ["ops"]);
    assert_eq!(seen.priority, 10);
    assert_eq!(seen.user_task_key, key);
    assert_eq!(
        seen.changed_attributes,
        ["priority", "candidateGroupsList", "dueDate"]
    );
    h.job(Intent::Complete, second[0].key, |j| {
        j.variables = "{}".into()
    })
    .unwrap();
    assert_eq!(
        h.responses.remove(&request).unwrap().unwrap(),
        ResponseValue::UserTask {
            key,
            intent: Intent::Updated
        }
    );
    let task = &h.engine.state().user_tasks[&key];
    assert_eq!(task.priority, 10);
    assert_eq!(task.candidate_groups, ["ops"]);
    assert_eq!(task.due_date, "2030-01-01T10:00:00Z");
    // Denied: nothing changes.
    let request = task_command(&mut h, key, Intent::Update, |t| {
        t.changed_attributes = vec!["priority".into()];
        t.priority = 99;
    });
    complete_listener(&mut h, "u1", |r| r.denied = true);
    assert!(h.responses.remove(&request).unwrap().is_err());
    assert_eq!(task_intents(&h).last(), Some(&"UPDATE_DENIED"));
    assert_eq!(h.engine.state().user_tasks[&key].priority, 10);
}

#[test]
fn a_completing_listener_denies_then_allows_the_completion() {
    let mut h = Harness::new();
    h.deploy(
        "ut.bpmn",
        &user_task_process(&[("completing", "check")], ""),
    )
    .unwrap();
    let pi = h.create("ut", "{}");
    let key = *h.engine.state().user_tasks.keys().next().unwrap();
    task_command(&mut h, key, Intent::Complete, |t| {
        t.variables = r#"{"ok": false}"#.into()
    });
    complete_listener(&mut h, "check", |r| {
        r.denied = true;
        r.denied_reason = "form incomplete".into();
    });
    assert_eq!(task_intents(&h).last(), Some(&"COMPLETION_DENIED"));
    assert!(!h.is_completed(pi));
    assert_eq!(h.variable(pi, "ok"), None, "denied: no variables");
    let request = task_command(&mut h, key, Intent::Complete, |t| {
        t.variables = r#"{"ok": true}"#.into()
    });
    complete_listener(&mut h, "check", |_| {});
    assert!(h.responses.remove(&request).unwrap().is_ok());
    assert!(h.is_completed(pi));
    let ok: Vec<&str> = h
        .log
        .iter()
        .filter_map(|r| match &r.value {
            RecordValue::Variable(v) if v.name == "ok" => Some(&*v.value),
            _ => None,
        })
        .collect();
    assert_eq!(
        ok,
        ["true"],
        "only the allowed completion's variables are set"
    );
}

#[test]
fn canceling_listeners_run_before_the_task_element_terminates() {
    let mut h = Harness::new();
    h.deploy("ut.bpmn", &user_task_process(&[("canceling", "bye")], ""))
        .unwrap();
    let pi = h.create("ut", "{}");
    h.cancel(pi).unwrap();
    assert!(!h.is_terminated(pi), "termination waits for the listener");
    assert_eq!(task_intents(&h).last(), Some(&"CANCELING"));
    let job = complete_listener(&mut h, "bye", |_| {});
    assert_eq!(job.job.listener_event_type, ListenerEventType::Canceling);
    assert_eq!(task_intents(&h).last(), Some(&"CANCELED"));
    assert!(h.is_terminated(pi));
    assert!(h.engine.state().user_tasks.is_empty());
    assert!(h.engine.state().jobs.is_empty());
}

#[test]
fn a_modification_ends_a_user_task_and_its_listener_job_within_the_command() {
    let mut h = Harness::new();
    let model = user_task_process(&[("assigning", "check"), ("canceling", "bye")], "");
    h.deploy("ut.bpmn", &model).unwrap();
    let pi = h.create("ut", "{}");
    let (task_key, element) = {
        let (k, t) = h
            .engine
            .state()
            .user_tasks
            .iter()
            .next()
            .expect("a user task");
        (*k, t.element_instance_key)
    };
    // An assignment opens a transition with a listener job in flight.
    task_command(&mut h, task_key, Intent::Assign, |v| {
        v.assignee = "anna".into()
    });
    assert_eq!(
        h.engine.state().jobs.len(),
        1,
        "the assigning listener's job"
    );
    h.request(Record::command(
        pi,
        Intent::Modify,
        RecordValue::ProcessInstanceModification(ProcessInstanceModificationRecord {
            process_instance_key: pi,
            terminate_instructions: vec![element],
            activate_instructions: vec![],
        }),
        None,
    ))
    .expect("modified");
    // Terminated in the same command: the canceling listeners do not run,
    // and nothing of the task is left open.
    assert!(h.is_terminated(pi));
    assert_eq!(task_intents(&h).last(), Some(&"CANCELED"));
    assert!(h.engine.state().user_tasks.is_empty());
    assert!(
        h.engine.state().jobs.is_empty(),
        "the listener job is canceled"
    );
    assert!(h.engine.state().task_transitions.is_empty());
}

#[test]
fn listener_job_results_are_checked() {
    let mut h = Harness::new();
    h.deploy(
        "ut.bpmn",
        &user_task_process(&[("creating", "c"), ("completing", "d")], ""),
    )
    .unwrap();
    h.create("ut", "{}");
    let job = h.activate("c", 1)[0].key;
    let deny = h
        .job(Intent::Complete, job, |j| {
            j.variables = "{}".into();
            j.result.denied = true;
        })
        .unwrap_err();
    assert!(
        deny.reason.contains("denying is only supported"),
        "{}",
        deny.reason
    );
    let vars = h
        .job(Intent::Complete, job, |j| {
            j.variables = r#"{"a": 1}"#.into()
        })
        .unwrap_err();
    assert!(
        vars.reason.contains("variables are not supported"),
        "{}",
        vars.reason
    );
    let bad = h
        .job(Intent::Complete, job, |j| {
            j.variables = "{}".into();
            j.result.corrected_attributes = vec!["name".into()];
        })
        .unwrap_err();
    assert!(
        bad.reason.contains("'name' cannot be corrected"),
        "{}",
        bad.reason
    );
    let err = h
        .job(Intent::ThrowError, job, |j| j.error_code = "E".into())
        .unwrap_err();
    assert!(
        err.reason.contains("task listener jobs is not supported"),
        "{}",
        err.reason
    );
    h.job(Intent::Fail, job, |j| j.retries = 0).unwrap();
    assert_eq!(
        h.incidents()[0].1.error_type,
        ErrorType::TaskListenerNoRetries
    );
}

#[test]
fn replay_and_snapshot_are_identical_with_listeners_in_flight() {
    let mut h = Harness::new();
    let ext = listeners(&[("start", "s"), ("end", "e")]);
    let xml = bpmn(
        "p",
        &format!(
            r#"<bpmn:startEvent id="start"/>{}<bpmn:endEvent id="end"/>{}{}"#,
            service_task("task", "work", &ext),
            flow("f1", "start", "task"),
            flow("f2", "task", "end")
        ),
    );
    h.deploy("p.bpmn", &xml).unwrap();
    h.deploy(
        "ut.bpmn",
        &user_task_process(&[("assigning", "a"), ("completing", "c")], ""),
    )
    .unwrap();
    for _ in 0..4 {
        h.create("p", "{}");
        h.create("ut", "{}");
    }
    let first = h.activate("s", 1)[0].key;
    h.complete(first, "{}").unwrap();
    let tasks: Vec<i64> = h.engine.state().user_tasks.keys().copied().collect();
    task_command(&mut h, tasks[0], Intent::Assign, |t| {
        t.assignee = "x".into()
    });
    let half = h.log.len();
    let snapshot = h.engine.snapshot();
    assert!(!h.engine.state().task_transitions.is_empty());
    let run = |h: &mut Harness| {
        for job in h.activate("a", 10) {
            h.job(Intent::Complete, job.key, |j| {
                j.variables = "{}".into();
                j.result.corrected_attributes = vec!["priority".into()];
                j.result.priority = 7;
            })
            .unwrap();
        }
        task_command(h, tasks[1], Intent::Complete, |t| t.variables = "{}".into());
        for job in h.activate("s", 10) {
            h.complete(job.key, r#"{"v": 1}"#).unwrap();
        }
        for job in h.activate("work", 10) {
            h.complete(job.key, "{}").unwrap();
        }
        for job in h.activate("c", 10) {
            h.job(Intent::Complete, job.key, |j| {
                j.variables = "{}".into();
                j.result.denied = true;
            })
            .unwrap();
        }
    };
    run(&mut h);
    let mut second = Harness::with_engine(Engine::restore(&snapshot).unwrap());
    second.log = h.log[..half].to_vec();
    for cmd in h.log[half..]
        .iter()
        .filter(|r| r.record_type == RecordType::Command && r.source_record_position == NO_KEY)
    {
        second.submit_as_is(cmd.clone());
    }
    let mut a = Vec::new();
    let mut b = Vec::new();
    for r in &h.log[half..] {
        r.encode(&mut a);
    }
    for r in &second.log[half..] {
        r.encode(&mut b);
    }
    assert!(a == b, "identical records after the snapshot");
    assert!(h.engine.snapshot() == second.engine.snapshot());
    let mut follower = Engine::new(1, 1);
    for r in &h.log {
        follower.replay(r);
    }
    assert!(follower.snapshot() == h.engine.snapshot(), "follower state");
    assert!(h.log.iter().any(|r| r.intent == Intent::CompletionDenied));
    assert!(h
        .log
        .iter()
        .any(|r| matches!(&r.value, RecordValue::Job(j) if j.listener_event_type == ListenerEventType::End)));
}

#[test]
fn corpus_models_with_listeners_deploy_and_run_their_listener_jobs() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(CORPUS);
    let mut h = Harness::new();
    let bytes = std::fs::read(dir.join("zeebemoddle__zeebe-execution-listeners.bpmn")).unwrap();
    let Ok(ResponseValue::Deployment { processes, .. }) =
        h.deploy_bytes("zeebe-execution-listeners.bpmn", bytes)
    else {
        panic!("the execution listeners model deploys");
    };
    let pi = h.create(&processes[0].bpmn_process_id, "{}");
    h.auto_complete(50);
    assert!(h.is_completed(pi));
    // Only the start event runs (the other elements have no flows): its end
    // listener, then the process's end listener.
    let listener_jobs: Vec<(String, ListenerEventType)> = h
        .log
        .iter()
        .filter(|r| r.record_type == RecordType::Event && r.intent == Intent::Completed)
        .filter_map(|r| match &r.value {
            RecordValue::Job(j) if j.job_kind == JobKind::ExecutionListener => {
                Some((j.element_id.to_string(), j.listener_event_type))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        listener_jobs,
        [
            ("Event_17qas0b".to_string(), ListenerEventType::End),
            ("ZeebePropertiesTest".to_string(), ListenerEventType::End)
        ]
    );

    let bytes = std::fs::read(dir.join("c8examples__eventHandler.bpmn")).unwrap();
    h.deploy_bytes("eventHandler.bpmn", bytes)
        .expect("the event handler model (an end listener on a message start event) deploys");

    // Zeebe rejects this one too: its process has no start event. Its task
    // listeners sit on job-worker user tasks, which Zeebe ignores.
    let bytes = std::fs::read(dir.join("zeebemoddle__zeebe-taskListeners.bpmn")).unwrap();
    let err = h.deploy_bytes("tl.bpmn", bytes).unwrap_err();
    assert!(
        err.reason.contains("Must have at least one start event"),
        "{}",
        err.reason
    );
    assert!(!err.reason.contains("zeebe:taskListener"), "{}", err.reason);
}

#[test]
fn a_failing_listener_type_expression_raises_an_incident_and_resolving_retries() {
    let mut h = Harness::new();
    h.deploy(
        "ut.bpmn",
        &user_task_process(&[("completing", "=checker")], ""),
    )
    .unwrap();
    let pi = h.create("ut", "{}");
    let key = *h.engine.state().user_tasks.keys().next().unwrap();
    task_command(&mut h, key, Intent::Complete, |t| t.variables = "{}".into());
    let incidents = h.incidents();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].1.error_type, ErrorType::ExtractValueError);
    h.set_variables(pi, r#"{"checker": "check"}"#, false)
        .unwrap();
    h.resolve(incidents[0].0).unwrap();
    complete_listener(&mut h, "check", |_| {});
    assert!(h.is_completed(pi));

    // The same for an execution listener: the element stays activating.
    let ext = r#"<zeebe:executionListeners><zeebe:executionListener eventType="start" type="=audit"/></zeebe:executionListeners>"#;
    let xml = bpmn(
        "p",
        &format!(
            r#"<bpmn:startEvent id="start"/>{}<bpmn:endEvent id="end"/>{}{}"#,
            service_task("task", "work", ext),
            flow("f1", "start", "task"),
            flow("f2", "task", "end")
        ),
    );
    h.deploy("p.bpmn", &xml).unwrap();
    let pi = h.create("p", "{}");
    let (incident_key, incident) = h.incidents().into_iter().next().expect("an incident");
    assert_eq!(&*incident.element_id, "task");
    h.set_variables(pi, r#"{"audit": "audit-log"}"#, false)
        .unwrap();
    h.resolve(incident_key).unwrap();
    complete_one(&mut h, "audit-log", "{}");
    complete_one(&mut h, "work", "{}");
    assert!(h.is_completed(pi));
}
