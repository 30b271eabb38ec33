//! Process instance migration (MIGRATE): a waiting job task moves to
//! version 2 and the instance finishes there, an incident is migrated and
//! resolved against the fixed model, a task inside a sub-process moves with
//! its scope, and Zeebe's rejections (nothing written), and replay.

mod common;
use ::engine::*;
use common::*;

/// Version 1: start → review (job `review`) → end.
fn v1() -> String {
    bpmn(
        "order",
        &format!(
            r#"<bpmn:startEvent id="start"/>{}<bpmn:endEvent id="end"/>{}{}"#,
            service_task("review", "review", ""),
            flow("f1", "start", "review"),
            flow("f2", "review", "end")
        ),
    )
}

/// Version 2: start → review2 (job `review`) → audit (job `audit`) → end.
fn v2() -> String {
    bpmn(
        "order",
        &format!(
            r#"<bpmn:startEvent id="start"/>{}{}<bpmn:endEvent id="end"/>{}{}{}"#,
            service_task("review2", "review", ""),
            service_task("audit", "audit", ""),
            flow("f1", "start", "review2"),
            flow("f2", "review2", "audit"),
            flow("f3", "audit", "end")
        ),
    )
}

fn rejected(result: Result<ResponseValue, Rejection>) -> Rejection {
    match result {
        Err(r) => r,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn a_waiting_job_task_moves_to_version_2_and_the_instance_finishes_there() {
    let mut h = Harness::new();
    let k1 = deploy_key(&mut h, "order.bpmn", &v1());
    let pi = h.create("order", "{}");
    let k2 = deploy_key(&mut h, "order.bpmn", &v2());
    assert_ne!(k1, k2);
    let job = h.activate("review", 1).remove(0);
    assert_eq!(job.job.process_definition_key, k1);

    let response = migrate(&mut h, pi, k2, &[("review", "review2")]).expect("migrate");
    assert_eq!(response, ResponseValue::ProcessInstanceMigrated { key: pi });

    let migrated = &h.engine.state().jobs[&job.key].record;
    assert_eq!(migrated.process_definition_key, k2);
    assert_eq!(migrated.process_definition_version, 2);
    assert_eq!(&*migrated.element_id, "review2");
    assert_eq!(
        &*migrated.worker, "test-worker",
        "still activated by its worker"
    );
    let root = &h.engine.state().instances[&pi];
    assert_eq!(root.process_definition_key, k2);
    let intents: Vec<(ValueType, Intent)> = h
        .log
        .iter()
        .filter(|r| r.record_type == RecordType::Event)
        .filter(|r| matches!(r.intent, Intent::ElementMigrated | Intent::Migrated))
        .map(|r| (r.value_type, r.intent))
        .collect();
    assert_eq!(
        intents,
        [
            (ValueType::ProcessInstance, Intent::ElementMigrated),
            (ValueType::ProcessInstance, Intent::ElementMigrated),
            (ValueType::Job, Intent::Migrated),
            (ValueType::ProcessInstanceMigration, Intent::Migrated),
        ]
    );

    h.complete(job.key, "{}")
        .expect("complete the migrated job");
    let audit = h.activate("audit", 1).remove(0);
    assert_eq!(audit.job.process_definition_key, k2, "version 2 continues");
    h.complete(audit.key, "{}").expect("complete");
    assert!(h.is_completed(pi));
    assert_replay_matches(&h);
}

#[test]
fn an_incident_is_migrated_and_resolved_against_the_fixed_model() {
    let script = |expr: &str| {
        bpmn(
            "calc",
            &format!(
                r#"<bpmn:startEvent id="start"/><bpmn:scriptTask id="sum"><bpmn:extensionElements><zeebe:script expression="{expr}" resultVariable="total"/></bpmn:extensionElements></bpmn:scriptTask><bpmn:endEvent id="end"/>{}{}"#,
                flow("f1", "start", "sum"),
                flow("f2", "sum", "end")
            ),
        )
    };
    let mut h = Harness::new();
    deploy_key(&mut h, "calc.bpmn", &script("=no_such_function(a)"));
    let pi = h.create("calc", r#"{"a":2}"#);
    let (incident_key, _) = h.incidents().remove(0);
    let fixed = deploy_key(&mut h, "calc.bpmn", &script("=a * 10"));
    migrate(&mut h, pi, fixed, &[("sum", "sum")]).expect("migrate");
    assert_eq!(
        h.engine.state().incidents[&incident_key].process_definition_key,
        fixed
    );
    h.resolve(incident_key).expect("resolve");
    assert!(h.is_completed(pi));
    assert_eq!(h.variable(pi, "total"), None, "the instance ended");
    let total = h.log.iter().rev().find_map(|r| match &r.value {
        RecordValue::Variable(v) if v.name == "total" => Some(v.value.clone()),
        _ => None,
    });
    assert_eq!(total.as_deref(), Some("20"), "the fixed expression ran");
    assert_replay_matches(&h);
}

/// start → sp { s → {task} → e } → end, with ids given.
fn with_sub_process(sp: &str, task: &str) -> String {
    bpmn(
        "nest",
        &format!(
            r#"<bpmn:startEvent id="start"/><bpmn:subProcess id="{sp}"><bpmn:startEvent id="s"/>{}<bpmn:endEvent id="e"/>{}{}</bpmn:subProcess><bpmn:endEvent id="end"/>{}{}"#,
            service_task(task, "work", ""),
            flow("i1", "s", task),
            flow("i2", task, "e"),
            flow("f1", "start", sp),
            flow("f2", sp, "end")
        ),
    )
}

#[test]
fn a_task_in_a_sub_process_moves_with_its_mapped_scope() {
    let mut h = Harness::new();
    deploy_key(&mut h, "nest.bpmn", &with_sub_process("sp", "t"));
    let pi = h.create("nest", "{}");
    let target = deploy_key(&mut h, "nest.bpmn", &with_sub_process("sp2", "t2"));
    let r = rejected(migrate(&mut h, pi, target, &[("t", "t2")]));
    assert_eq!(
        r.reason,
        format!("Expected to migrate process instance '{pi}' but no mapping instruction defined for active element with id 'sp'. Elements cannot be migrated without a mapping.")
    );
    migrate(&mut h, pi, target, &[("sp", "sp2"), ("t", "t2")]).expect("migrate");
    let job = h.activate("work", 1).remove(0);
    assert_eq!(&*job.job.element_id, "t2");
    h.complete(job.key, "{}").expect("complete");
    assert!(h.is_completed(pi));
    assert_replay_matches(&h);
}

/// Target definition, mapping, expected rejection type and reason.
type Case = (
    i64,
    Vec<(&'static str, &'static str)>,
    RejectionType,
    String,
);

#[test]
fn rejections_name_the_element_and_the_reason_and_write_nothing() {
    let mut h = Harness::new();
    let k1 = deploy_key(&mut h, "order.bpmn", &v1());
    let pi = h.create("order", "{}");
    let k2 = deploy_key(&mut h, "order.bpmn", &v2());
    let nest = deploy_key(&mut h, "nest.bpmn", &with_sub_process("sp", "inner"));
    let manual_target = deploy_key(
        &mut h,
        "manual.bpmn",
        &bpmn(
            "manual",
            &format!(
                r#"<bpmn:startEvent id="start"/><bpmn:userTask id="review"/><bpmn:endEvent id="end"/>{}{}"#,
                flow("f1", "start", "review"),
                flow("f2", "review", "end")
            ),
        ),
    );
    let before = h.engine.state().instances.clone();
    let cases: Vec<Case> = vec![
        (
            4242,
            vec![],
            RejectionType::NotFound,
            "Expected to migrate process instance to process definition but no process definition found with key '4242'".into(),
        ),
        (
            k2,
            vec![("review", "review2"), ("review", "audit")],
            RejectionType::InvalidArgument,
            format!("Expected to migrate process instance '{pi}' but the mapping instructions contain duplicate source element ids '[review]'."),
        ),
        (
            k2,
            vec![("nope", "review2")],
            RejectionType::InvalidArgument,
            format!("Expected to migrate process instance '{pi}' but mapping instructions contain a non-existing source element id 'nope'. Elements provided in mapping instructions must exist in the source process definition."),
        ),
        (
            k2,
            vec![("review", "nope")],
            RejectionType::InvalidArgument,
            format!("Expected to migrate process instance '{pi}' but mapping instructions contain a non-existing target element id 'nope'. Elements provided in mapping instructions must exist in the target process definition."),
        ),
        (
            k2,
            vec![],
            RejectionType::InvalidState,
            format!("Expected to migrate process instance '{pi}' but no mapping instruction defined for active element with id 'review'. Elements cannot be migrated without a mapping."),
        ),
        (
            k2,
            vec![("review", "end")],
            RejectionType::InvalidState,
            format!("Expected to migrate process instance '{pi}' but active element with id 'review' and type 'SERVICE_TASK' is mapped to an element with id 'end' and different type 'END_EVENT'. Elements must be mapped to elements of the same type."),
        ),
        (
            nest,
            vec![("review", "inner")],
            RejectionType::InvalidState,
            format!("Expected to migrate process instance '{pi}' but the flow scope of active element with id 'review' is changed. The flow scope of the active element is expected to be 'nest' but was 'sp'. The flow scope of an element cannot be changed during migration yet."),
        ),
        (
            manual_target,
            vec![("review", "review")],
            RejectionType::InvalidState,
            format!("Expected to migrate process instance '{pi}' but active element with id 'review' and type 'SERVICE_TASK' is mapped to an element with id 'review' and different type 'USER_TASK'. Elements must be mapped to elements of the same type."),
        ),
    ];
    for (target, pairs, rejection_type, reason) in cases {
        let log_len = h.log.len();
        let r = rejected(migrate(&mut h, pi, target, &pairs));
        assert_eq!(r.rejection_type, rejection_type, "{reason}");
        assert_eq!(r.reason, reason);
        assert_eq!(
            h.log.len(),
            log_len + 2,
            "the command and its rejection only"
        );
    }
    assert_eq!(h.engine.state().instances, before, "no state changed");
    assert_eq!(h.engine.state().instances[&pi].process_definition_key, k1);

    let r = rejected(migrate(&mut h, 777, k2, &[]));
    assert_eq!(r.rejection_type, RejectionType::NotFound);
    assert_eq!(
        r.reason,
        "Expected to migrate process instance but no process instance found with key '777'"
    );
}

#[test]
fn an_active_element_leaves_its_unmapped_boundary_timer_behind() {
    let timed = bpmn(
        "timed",
        &format!(
            r#"<bpmn:startEvent id="start"/>{}<bpmn:boundaryEvent id="late" attachedToRef="review"><bpmn:timerEventDefinition><bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent><bpmn:endEvent id="end"/><bpmn:endEvent id="late_end"/>{}{}{}"#,
            service_task("review", "review", ""),
            flow("f1", "start", "review"),
            flow("f2", "review", "end"),
            flow("f3", "late", "late_end")
        ),
    );
    let mut h = Harness::new();
    deploy_key(&mut h, "timed.bpmn", &timed);
    let pi = h.create("timed", "{}");
    let plain = deploy_key(&mut h, "order.bpmn", &v1());
    migrate(&mut h, pi, plain, &[("review", "review")]).expect("migrate");
    assert_eq!(h.count(ValueType::Timer, Intent::Canceled), 1);
    assert!(h.engine.state().timers.is_empty());
    h.advance(3_600_000);
    let job = h.activate("review", 1).remove(0);
    h.complete(job.key, "{}").expect("complete");
    assert!(h.is_completed(pi));
    assert_eq!(h.element_intents(pi, "late"), Vec::<&str>::new());
    assert_replay_matches(&h);
}

#[test]
fn a_camunda_user_task_moves_and_is_completed_in_version_2() {
    let model = |task: &str| {
        bpmn(
            "approval",
            &format!(
                r#"<bpmn:startEvent id="s"/><bpmn:userTask id="{task}"><bpmn:extensionElements><zeebe:userTask/><zeebe:assignmentDefinition assignee="anna"/></bpmn:extensionElements></bpmn:userTask><bpmn:endEvent id="e"/>{}{}"#,
                flow("f1", "s", task),
                flow("f2", task, "e")
            ),
        )
    };
    let mut h = Harness::new();
    deploy_key(&mut h, "approval.bpmn", &model("approve"));
    let pi = h.create("approval", "{}");
    let k2 = deploy_key(&mut h, "approval.bpmn", &model("approve2"));
    // A job-based user task is another implementation.
    let job_based = deploy_key(
        &mut h,
        "jobs.bpmn",
        &bpmn(
            "jobs",
            &format!(
                r#"<bpmn:startEvent id="s"/><bpmn:userTask id="approve"/><bpmn:endEvent id="e"/>{}{}"#,
                flow("f1", "s", "approve"),
                flow("f2", "approve", "e")
            ),
        ),
    );
    let r = rejected(migrate(&mut h, pi, job_based, &[("approve", "approve")]));
    assert_eq!(
        r.reason,
        format!("Expected to migrate process instance '{pi}' but active user task with id 'approve' and implementation 'zeebe user task' is mapped to an user task with id 'approve' and different implementation 'job worker'. Elements must be mapped to elements of the same implementation.")
    );

    migrate(&mut h, pi, k2, &[("approve", "approve2")]).expect("migrate");
    let (&task_key, task) = h
        .engine
        .state()
        .user_tasks
        .iter()
        .next()
        .expect("the user task is open");
    assert_eq!(&*task.element_id, "approve2");
    assert_eq!(task.process_definition_key, k2);
    assert_eq!(task.process_definition_version, 2);
    assert_eq!(task.assignee, "anna", "kept as it was");
    h.request(Record::command(
        task_key,
        Intent::Complete,
        RecordValue::UserTask(Box::new(UserTaskRecord::empty())),
        None,
    ))
    .expect("complete");
    assert!(h.is_completed(pi));
    assert_replay_matches(&h);
}
