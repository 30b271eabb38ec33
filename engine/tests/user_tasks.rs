//! Camunda user tasks (`zeebe:userTask`): creation with static and FEEL
//! attributes, assign, claim, update, complete, rejections, cancellation by
//! a boundary event and by cancel, incidents, replay determinism.

mod common;
use ::engine::*;
use common::*;

fn user_task(extensions: &str) -> String {
    bpmn(
        "ut",
        &format!(
            r#"<bpmn:startEvent id="s"/><bpmn:userTask id="task"><bpmn:extensionElements><zeebe:userTask/>{extensions}</bpmn:extensionElements></bpmn:userTask><bpmn:endEvent id="e"/>{}{}"#,
            flow("f1", "s", "task"),
            flow("f2", "task", "e")
        ),
    )
}

/// The `USER_TASK` events of the log as (key, intent, value).
fn task_events(h: &Harness) -> Vec<(i64, Intent, UserTaskRecord)> {
    h.log
        .iter()
        .filter(|r| r.record_type == RecordType::Event)
        .filter_map(|r| match &r.value {
            RecordValue::UserTask(t) => Some((r.key, r.intent, (**t).clone())),
            _ => None,
        })
        .collect()
}

fn created_task(h: &Harness) -> (i64, UserTaskRecord) {
    task_events(h)
        .into_iter()
        .rev()
        .find(|(_, i, _)| *i == Intent::Created)
        .map(|(k, _, t)| (k, t))
        .expect("a user task was created")
}

fn command(
    h: &mut Harness,
    key: i64,
    intent: Intent,
    fill: impl FnOnce(&mut UserTaskRecord),
) -> Result<ResponseValue, Rejection> {
    let mut value = UserTaskRecord::empty();
    fill(&mut value);
    h.request(Record::command(
        key,
        intent,
        RecordValue::UserTask(Box::new(value)),
        None,
    ))
}

fn intents_since(h: &Harness, from: usize) -> Vec<&'static str> {
    h.log[from..]
        .iter()
        .filter(|r| r.record_type == RecordType::Event && r.value_type == ValueType::UserTask)
        .map(|r| r.intent.name())
        .collect()
}

#[test]
fn static_attributes_are_written_and_the_assignee_is_assigned_after_creation() {
    let mut h = Harness::new();
    h.deploy(
        "ut.bpmn",
        &user_task(
            r#"<zeebe:assignmentDefinition assignee="anna" candidateGroups="sales, ops" candidateUsers="bob"/><zeebe:taskSchedule dueDate="2026-12-24T18:00:00Z" followUpDate="2026-12-20T09:00:00+01:00"/><zeebe:priorityDefinition priority="80"/><zeebe:formDefinition externalReference="https://forms.example/a"/><zeebe:taskHeaders><zeebe:header key="kind" value="review"/></zeebe:taskHeaders>"#,
        ),
    )
    .unwrap();
    let pi = h.create("ut", "{}");
    let events = task_events(&h);
    let intents: Vec<_> = events.iter().map(|(_, i, _)| i.name()).collect();
    assert_eq!(intents, ["CREATING", "CREATED", "ASSIGNING", "ASSIGNED"]);
    let (key, task) = created_task(&h);
    assert_eq!(task.user_task_key, key);
    assert_eq!(task.assignee, "", "created unassigned, then assigned");
    assert_eq!(
        events[0].2.assignee, "anna",
        "CREATING carries the assignee"
    );
    assert_eq!(task.candidate_groups, ["sales", "ops"]);
    assert_eq!(task.candidate_users, ["bob"]);
    assert_eq!(task.due_date, "2026-12-24T18:00:00Z");
    assert_eq!(task.follow_up_date, "2026-12-20T09:00:00+01:00");
    assert_eq!(task.priority, 80);
    assert_eq!(task.external_form_reference, "https://forms.example/a");
    assert_eq!(task.form_key, NO_KEY);
    assert_eq!(&*task.custom_headers, r#"{"kind":"review"}"#);
    assert_eq!(task.process_instance_key, pi);
    assert_eq!(&*task.element_id, "task");
    assert_eq!(task.creation_timestamp, h.now_ms);
    assert_eq!(&*task.bpmn_process_id, "ut");
    assert_eq!(task.tenant_id, "<default>");
    let assigned = &events[3].2;
    assert_eq!(assigned.assignee, "anna");
    assert_eq!(assigned.changed_attributes, ["assignee"]);
    assert_eq!(h.engine.state().user_tasks[&key].assignee, "anna");
    // The element is activated between CREATING and CREATED; no job exists.
    assert_eq!(
        h.element_intents(pi, "task"),
        ["ELEMENT_ACTIVATING", "ELEMENT_ACTIVATED"]
    );
    assert!(h.engine.state().jobs.is_empty());
}

#[test]
fn feel_attributes_are_evaluated_at_activation() {
    let mut h = Harness::new();
    h.deploy(
        "ut.bpmn",
        &user_task(
            r#"<zeebe:assignmentDefinition assignee="=owner" candidateUsers="=[&quot;a&quot;, &quot;b&quot;]" candidateGroups="=group"/><zeebe:taskSchedule dueDate="=due" followUpDate="=string(date and time(&quot;2027-01-02T03:04:05Z&quot;))"/><zeebe:priorityDefinition priority="=p + 1"/><zeebe:formDefinition formKey="=&quot;custom:&quot; + form"/>"#,
        ),
    )
    .unwrap();
    h.create(
        "ut",
        r#"{"owner": "carl", "group": "ops", "due": "2027-03-01T10:00:00Z", "p": 9, "form": "f1"}"#,
    );
    let (key, task) = created_task(&h);
    assert_eq!(task.candidate_users, ["a", "b"]);
    assert_eq!(task.candidate_groups, ["ops"]);
    assert_eq!(task.due_date, "2027-03-01T10:00:00Z");
    assert!(
        task.follow_up_date.starts_with("2027-01-02T03:04:05"),
        "{}",
        task.follow_up_date
    );
    assert_eq!(task.priority, 10);
    assert_eq!(task.external_form_reference, "custom:f1");
    assert_eq!(h.engine.state().user_tasks[&key].assignee, "carl");
}

#[test]
fn default_priority_is_50_and_no_assignee_means_no_assignment() {
    let mut h = Harness::new();
    h.deploy("ut.bpmn", &user_task("")).unwrap();
    h.create("ut", "{}");
    let (_, task) = created_task(&h);
    assert_eq!(task.priority, 50);
    assert_eq!(intents_since(&h, 0), ["CREATING", "CREATED"]);
}

#[test]
fn assign_claim_update_and_complete() {
    let mut h = Harness::new();
    h.deploy("ut.bpmn", &user_task("")).unwrap();
    let pi = h.create("ut", r#"{"x": 1}"#);
    let (key, _) = created_task(&h);

    let from = h.log.len();
    let r = command(&mut h, key, Intent::Claim, |t| t.assignee = "anna".into()).unwrap();
    assert_eq!(
        r,
        ResponseValue::UserTask {
            key,
            intent: Intent::Assigned
        }
    );
    assert_eq!(intents_since(&h, from), ["ASSIGNING", "ASSIGNED"]);
    let (_, _, assigned) = task_events(&h).pop().unwrap();
    assert_eq!(assigned.action, "claim");
    assert_eq!(assigned.assignee, "anna");

    // Claimed by someone else: rejected; by the same user: fine.
    let err = command(&mut h, key, Intent::Claim, |t| t.assignee = "bob".into()).unwrap_err();
    assert_eq!(err.rejection_type, RejectionType::InvalidState);
    assert_eq!(
        err.reason,
        format!("Expected to claim user task with key '{key}', but it has already been assigned")
    );
    command(&mut h, key, Intent::Claim, |t| t.assignee = "anna".into()).unwrap();
    let err = command(&mut h, key, Intent::Claim, |_| {}).unwrap_err();
    assert_eq!(err.rejection_type, RejectionType::InvalidArgument);
    assert_eq!(
        err.reason,
        format!("Expected to claim user task with key '{key}', but provided assignee is empty")
    );

    // Assign overrides; an empty assignee unassigns.
    command(&mut h, key, Intent::Assign, |t| t.assignee = "bob".into()).unwrap();
    assert_eq!(h.engine.state().user_tasks[&key].assignee, "bob");
    command(&mut h, key, Intent::Assign, |t| {
        t.action = "unassign".into()
    })
    .unwrap();
    assert_eq!(h.engine.state().user_tasks[&key].assignee, "");
    let (_, _, unassigned) = task_events(&h).pop().unwrap();
    assert_eq!(unassigned.action, "unassign");

    // Update: only the changeset changes.
    let from = h.log.len();
    let r = command(&mut h, key, Intent::Update, |t| {
        t.changed_attributes = vec![
            "candidateGroupsList".into(),
            "priority".into(),
            "dueDate".into(),
        ];
        t.candidate_groups = vec!["g1".into()];
        t.priority = 90;
        t.due_date = "2027-05-01T00:00:00Z".into();
        t.candidate_users = vec!["ignored".into()];
    })
    .unwrap();
    assert_eq!(
        r,
        ResponseValue::UserTask {
            key,
            intent: Intent::Updated
        }
    );
    assert_eq!(intents_since(&h, from), ["UPDATING", "UPDATED"]);
    let (_, _, updated) = task_events(&h).pop().unwrap();
    assert_eq!(
        updated.changed_attributes,
        ["candidateGroupsList", "priority", "dueDate"]
    );
    assert_eq!(updated.action, "update");
    let state = &h.engine.state().user_tasks[&key];
    assert_eq!(state.candidate_groups, ["g1"]);
    assert!(state.candidate_users.is_empty());
    assert_eq!(state.priority, 90);
    assert_eq!(state.due_date, "2027-05-01T00:00:00Z");

    // Complete: variables merged into the process, the instance completes.
    let from = h.log.len();
    let r = command(&mut h, key, Intent::Complete, |t| {
        t.variables = r#"{"approved": true}"#.into();
    })
    .unwrap();
    assert_eq!(
        r,
        ResponseValue::UserTask {
            key,
            intent: Intent::Completed
        }
    );
    assert_eq!(intents_since(&h, from), ["COMPLETING", "COMPLETED"]);
    assert!(h.is_completed(pi));
    assert_eq!(
        h.log.iter().rev().find_map(|r| match &r.value {
            RecordValue::Variable(v) if v.name == "approved" =>
                Some((v.scope_key, v.value.clone())),
            _ => None,
        }),
        Some((pi, "true".to_string()))
    );
    assert!(h.engine.state().user_tasks.is_empty());

    // The task is gone.
    for intent in [
        Intent::Complete,
        Intent::Assign,
        Intent::Claim,
        Intent::Update,
    ] {
        let err = command(&mut h, key, intent, |_| {}).unwrap_err();
        assert_eq!(err.rejection_type, RejectionType::NotFound);
        let verb = intent.name().to_lowercase();
        assert_eq!(
            err.reason,
            format!(
                "Expected to {verb} user task with key '{key}', but no such user task was found"
            )
        );
    }
}

#[test]
fn invalid_updates_and_variables_are_rejected() {
    let mut h = Harness::new();
    h.deploy("ut.bpmn", &user_task("")).unwrap();
    h.create("ut", "{}");
    let (key, _) = created_task(&h);
    let err = command(&mut h, key, Intent::Update, |t| {
        t.changed_attributes = vec!["priority".into()];
        t.priority = 101;
    })
    .unwrap_err();
    assert_eq!(err.rejection_type, RejectionType::InvalidArgument);
    assert!(err.reason.contains("between 0 and 100"), "{}", err.reason);
    let err = command(&mut h, key, Intent::Update, |t| {
        t.changed_attributes = vec!["followUpDate".into()];
        t.follow_up_date = "tomorrow".into();
    })
    .unwrap_err();
    assert!(err.reason.contains("'tomorrow'"), "{}", err.reason);
    let err = command(&mut h, key, Intent::Update, |t| {
        t.changed_attributes = vec!["assignee".into()];
    })
    .unwrap_err();
    assert!(
        err.reason.contains("'assignee' cannot be updated"),
        "{}",
        err.reason
    );
    let err = command(&mut h, key, Intent::Complete, |t| {
        t.variables = "[1]".into()
    })
    .unwrap_err();
    assert_eq!(err.rejection_type, RejectionType::InvalidArgument);
    assert_eq!(
        h.engine.state().user_tasks[&key].priority,
        50,
        "nothing changed"
    );
}

#[test]
fn a_boundary_timer_and_cancel_cancel_the_user_task() {
    let mut h = Harness::new();
    let xml = bpmn(
        "ut",
        &format!(
            r#"<bpmn:startEvent id="s"/><bpmn:userTask id="task"><bpmn:extensionElements><zeebe:userTask/></bpmn:extensionElements></bpmn:userTask><bpmn:boundaryEvent id="b" attachedToRef="task"><bpmn:timerEventDefinition><bpmn:timeDuration>PT1M</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent><bpmn:endEvent id="e"/><bpmn:endEvent id="late"/>{}{}{}"#,
            flow("f1", "s", "task"),
            flow("f2", "task", "e"),
            flow("f3", "b", "late")
        ),
    );
    h.deploy("ut.bpmn", &xml).unwrap();
    let pi = h.create("ut", "{}");
    let (key, _) = created_task(&h);
    let from = h.log.len();
    h.advance(60_000);
    assert_eq!(intents_since(&h, from), ["CANCELING", "CANCELED"]);
    assert!(h.is_completed(pi));
    assert!(h.element_intents(pi, "late").contains(&"ELEMENT_COMPLETED"));
    assert!(h.engine.state().user_tasks.is_empty());
    let err = command(&mut h, key, Intent::Complete, |_| {}).unwrap_err();
    assert_eq!(err.rejection_type, RejectionType::NotFound);

    let pi = h.create("ut", "{}");
    let from = h.log.len();
    h.cancel(pi).unwrap();
    assert_eq!(intents_since(&h, from), ["CANCELING", "CANCELED"]);
    assert!(h.is_terminated(pi));
    assert!(h.engine.state().user_tasks.is_empty());
}

#[test]
fn a_failing_expression_raises_an_incident_and_resolving_creates_the_task() {
    let mut h = Harness::new();
    h.deploy(
        "ut.bpmn",
        &user_task(
            r#"<zeebe:taskSchedule dueDate="=due"/><zeebe:priorityDefinition priority="=p"/>"#,
        ),
    )
    .unwrap();
    let pi = h.create("ut", r#"{"due": "not a date", "p": 5}"#);
    let incidents = h.incidents();
    assert_eq!(incidents.len(), 1);
    let (incident_key, incident) = &incidents[0];
    assert_eq!(incident.error_type, ErrorType::ExtractValueError);
    assert!(
        incident.error_message.contains("'not a date'"),
        "{}",
        incident.error_message
    );
    assert!(
        incident.error_message.contains("=due"),
        "{}",
        incident.error_message
    );
    assert!(task_events(&h).is_empty());
    h.set_variables(pi, r#"{"due": "2027-01-01T00:00:00Z"}"#, false)
        .unwrap();
    h.resolve(*incident_key).unwrap();
    let (_, task) = created_task(&h);
    assert_eq!(task.due_date, "2027-01-01T00:00:00Z");
    assert_eq!(task.priority, 5);

    // A priority out of range is an incident too.
    h.create("ut", r#"{"due": null, "p": 500}"#);
    let incidents = h.incidents();
    assert!(incidents
        .iter()
        .any(|(_, i)| i.error_message.contains("between 0 and 100")));
}

#[test]
fn static_values_are_checked_at_deployment() {
    let mut h = Harness::new();
    for (ext, problem) in [
        (r#"<zeebe:priorityDefinition priority="200"/>"#, "priority"),
        (r#"<zeebe:taskSchedule dueDate="next week"/>"#, "dueDate"),
        (r#"<zeebe:assignmentDefinition assignee="=("/>"#, "assignee"),
    ] {
        let err = h.deploy("ut.bpmn", &user_task(ext)).unwrap_err();
        assert_eq!(err.rejection_type, RejectionType::InvalidArgument);
        assert!(
            err.reason.contains("'task'") && err.reason.contains(problem),
            "{}",
            err.reason
        );
    }
}

#[test]
fn without_zeebe_user_task_the_user_task_is_a_job() {
    let mut h = Harness::new();
    let xml = user_task("").replace(
        "<zeebe:userTask/>",
        r#"<zeebe:assignmentDefinition assignee="anna"/>"#,
    );
    h.deploy("ut.bpmn", &xml).unwrap();
    h.create("ut", "{}");
    assert!(task_events(&h).is_empty());
    let jobs = h.activate("io.camunda.zeebe:userTask", 5);
    assert_eq!(jobs.len(), 1);
    assert!(jobs[0].job.custom_headers.contains("anna"));
}

#[test]
fn replay_and_snapshot_give_identical_state_with_user_tasks() {
    let mut h = Harness::new();
    h.deploy(
        "ut.bpmn",
        &user_task(r#"<zeebe:assignmentDefinition assignee="=owner" candidateGroups="g"/>"#),
    )
    .unwrap();
    for i in 0..6 {
        h.create("ut", &format!(r#"{{"owner": "u{i}"}}"#));
    }
    let half = h.log.len();
    let snapshot = h.engine.snapshot();
    let keys: Vec<i64> = h.engine.state().user_tasks.keys().copied().collect();
    let run = |h: &mut Harness| {
        let _ = command(h, keys[0], Intent::Complete, |t| {
            t.variables = r#"{"a": 1}"#.into()
        });
        let _ = command(h, keys[1], Intent::Claim, |t| t.assignee = "x".into());
        let _ = command(h, keys[2], Intent::Update, |t| {
            t.changed_attributes = vec!["priority".into()];
            t.priority = 3;
        });
        let _ = command(h, keys[3], Intent::Assign, |t| t.assignee = "y".into());
        let pi = h.engine.state().user_tasks[&keys[4]].process_instance_key;
        let _ = h.cancel(pi);
    };
    run(&mut h);
    // The same commands on an engine restored from the snapshot.
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
    assert_eq!(h.engine.state().user_tasks.len(), 4);
    assert!(h
        .log
        .iter()
        .any(|r| r.intent == Intent::Rejected || r.record_type == RecordType::CommandRejection));
}

#[test]
fn corpus_models_with_zeebe_user_task_deploy_and_complete() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(CORPUS);
    for (file, process_id, tasks) in [
        ("c8jssdk__zeebe-user-task.bpmn", "zeebe-user-task-test", 1),
        (
            "camunda__non-interrupting-boundary.bpmn",
            "non-interrupting-boundary",
            1,
        ),
    ] {
        let mut h = Harness::new();
        let bytes = std::fs::read(dir.join(file)).expect("the corpus sits beside the repository");
        h.deploy_bytes(file, bytes)
            .unwrap_or_else(|e| panic!("{file}: {}", e.reason));
        let pi = h.create(process_id, "{}");
        assert_eq!(h.engine.state().user_tasks.len(), tasks, "{file}");
        let mut rounds = 0;
        while let Some(&key) = h.engine.state().user_tasks.keys().next() {
            command(&mut h, key, Intent::Complete, |t| t.variables = "{}".into()).unwrap();
            rounds += 1;
            assert!(rounds < 10, "{file}: user tasks keep coming");
        }
        assert!(h.is_completed(pi), "{file}");
    }
    let file = "c8examples__payment_process.bpmn";
    let bytes = std::fs::read(dir.join(file)).unwrap();
    let mut h = Harness::new();
    h.deploy_bytes(file, bytes)
        .unwrap_or_else(|e| panic!("{file}: {}", e.reason));
}
