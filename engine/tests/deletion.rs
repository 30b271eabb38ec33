//! Resource deletion: unknown keys, running instances, the latest-version
//! fallback, start timers, distribution to the other partitions and
//! snapshots taken while instances of a deleted definition still end.

mod common;
use ::engine::*;
use common::*;

fn delete_command(resource_key: i64) -> Record {
    Record::command(
        NO_KEY,
        Intent::Delete,
        RecordValue::ResourceDeletion(ResourceDeletionRecord { resource_key }),
        None,
    )
}

/// Deploys and returns the process definition key.
fn deploy_key(h: &mut Harness, name: &str, xml: &str) -> i64 {
    match h.deploy(name, xml) {
        Ok(ResponseValue::Deployment { processes, .. }) => processes[0].process_definition_key,
        other => panic!("deploy {name}: {other:?}"),
    }
}

/// A one-task process whose job type is `job_type` (different content, new version).
fn task_process(process_id: &str, job_type: &str) -> String {
    bpmn(
        process_id,
        &format!(
            r#"<bpmn:startEvent id="start"/>{}<bpmn:endEvent id="end"/>{}{}"#,
            service_task("task", job_type, ""),
            flow("f1", "start", "task"),
            flow("f2", "task", "end")
        ),
    )
}

fn timer_start_process(process_id: &str, end_id: &str) -> String {
    bpmn(
        process_id,
        &format!(
            r#"<bpmn:startEvent id="s"><bpmn:timerEventDefinition><bpmn:timeCycle>R/PT1M</bpmn:timeCycle></bpmn:timerEventDefinition></bpmn:startEvent><bpmn:endEvent id="{end_id}"/>{}"#,
            flow("f", "s", end_id)
        ),
    )
}

/// A follower that applies the log reaches the leader's state.
fn assert_replay_matches(h: &Harness) {
    let mut follower = Engine::new(1, 1);
    for r in &h.log {
        follower.replay(r);
    }
    assert!(follower.snapshot() == h.engine.snapshot(), "replayed state");
}

/// (value type, intent) of the events written since log index `from`.
fn events_since(h: &Harness, from: usize) -> Vec<(ValueType, Intent)> {
    h.log[from..]
        .iter()
        .filter(|r| r.record_type == RecordType::Event)
        .map(|r| (r.value_type, r.intent))
        .collect()
}

#[test]
fn deleting_an_unknown_key_is_rejected_naming_the_key() {
    let mut h = Harness::new();
    let key = deploy_key(&mut h, "one.bpmn", &one_task("one"));
    let unknown = key + 1_000;
    let rejection = h.request(delete_command(unknown)).unwrap_err();
    assert_eq!(rejection.rejection_type, RejectionType::NotFound);
    assert!(
        rejection.reason.contains(&unknown.to_string()),
        "{}",
        rejection.reason
    );
    assert!(h.engine.state().process(key).is_some());
    // deleted once; a second deletion finds nothing
    assert!(h.request(delete_command(key)).is_ok());
    let again = h.request(delete_command(key)).unwrap_err();
    assert_eq!(again.rejection_type, RejectionType::NotFound);
}

#[test]
fn deletion_is_processed_on_the_deployment_partition_only() {
    let mut h = Harness::with_engine(Engine::new(2, 2));
    let rejection = h.request(delete_command(1)).unwrap_err();
    assert_eq!(rejection.rejection_type, RejectionType::InvalidArgument);
}

#[test]
fn deleting_a_definition_terminates_its_running_instances() {
    let mut h = Harness::new();
    let key = deploy_key(&mut h, "one.bpmn", &one_task("one"));
    let other = deploy_key(&mut h, "other.bpmn", &task_process("other", "work"));
    let a = h.create("one", "{}");
    let b = h.create("one", "{}");
    let kept = h.create("other", "{}");
    let jobs = h.activate("work", 1);
    assert_eq!(jobs.len(), 1);
    let from = h.log.len();
    let response = h.request(delete_command(key)).unwrap();
    let ResponseValue::ResourceDeleted {
        key: deletion_key,
        resource_key,
    } = response
    else {
        panic!("unexpected response {response:?}");
    };
    assert_eq!(resource_key, key);
    assert!(h.is_terminated(a) && h.is_terminated(b));
    assert!(!h.is_terminated(kept));
    assert_eq!(
        h.element_intents(a, "task").last(),
        Some(&"ELEMENT_TERMINATED")
    );
    // the jobs of the deleted definition are cancelled, the other's stays
    let state = h.engine.state();
    assert_eq!(state.jobs.len(), 1);
    assert!(state
        .jobs
        .values()
        .all(|j| j.record.process_definition_key == other));
    assert!(state.process(key).is_none());
    assert!(!state.is_deleting(key));
    assert!(state.instances_of_definition(key).is_empty());
    assert_eq!(h.count(ValueType::Job, Intent::Canceled), 2);
    // Zeebe's order: deletion started, process deleting, instances end,
    // process deleted, deletion done
    let events = events_since(&h, from);
    assert_eq!(
        events.first(),
        Some(&(ValueType::ResourceDeletion, Intent::Deleting))
    );
    assert_eq!(events[1], (ValueType::Process, Intent::Deleting));
    let deleted = events
        .iter()
        .position(|e| *e == (ValueType::Process, Intent::Deleted))
        .expect("process deleted");
    let done = events
        .iter()
        .position(|e| *e == (ValueType::ResourceDeletion, Intent::Deleted))
        .expect("deletion done");
    let last_terminated = events
        .iter()
        .rposition(|e| *e == (ValueType::ProcessInstance, Intent::ElementTerminated))
        .expect("instances terminated");
    assert!(last_terminated < deleted);
    assert!(h.log.iter().any(|r| r.key == deletion_key
        && r.value_type == ValueType::ResourceDeletion
        && r.intent == Intent::Deleted));
    assert!(done > 1);
    // the activated job is gone; the definition cannot be started any more
    let gone = h.complete(jobs[0].key, "{}").unwrap_err();
    assert_eq!(gone.rejection_type, RejectionType::NotFound);
    let mut by_key = create_command("", -1, "{}", false);
    if let RecordValue::ProcessInstanceCreation(c) = &mut by_key.value {
        c.process_definition_key = key;
    }
    assert_eq!(
        h.request(by_key).unwrap_err().rejection_type,
        RejectionType::NotFound
    );
    assert_eq!(
        h.request(create_command("one", -1, "{}", false))
            .unwrap_err()
            .rejection_type,
        RejectionType::NotFound
    );
    assert_replay_matches(&h);
}

#[test]
fn deleting_a_called_definition_cancels_the_calling_root_instance() {
    let mut h = Harness::new();
    let child = deploy_key(&mut h, "child.bpmn", &one_task("child"));
    let parent = bpmn(
        "parent",
        &format!(
            r#"<bpmn:startEvent id="s"/><bpmn:callActivity id="call"><bpmn:extensionElements><zeebe:calledElement processId="child"/></bpmn:extensionElements></bpmn:callActivity><bpmn:endEvent id="e"/>{}{}"#,
            flow("f1", "s", "call"),
            flow("f2", "call", "e")
        ),
    );
    h.deploy("parent.bpmn", &parent).unwrap();
    let root = h.create("parent", "{}");
    assert_eq!(h.engine.state().instances_of_definition(child).len(), 1);
    h.request(delete_command(child)).unwrap();
    assert!(h.is_terminated(root));
    assert!(h.engine.state().instances.is_empty());
    assert!(h.engine.state().process(child).is_none());
}

#[test]
fn deleting_the_latest_version_falls_back_to_the_previous_one() {
    let mut h = Harness::new();
    let v1 = deploy_key(&mut h, "p.bpmn", &task_process("p", "first"));
    let v2 = deploy_key(&mut h, "p.bpmn", &task_process("p", "second"));
    assert_eq!(
        h.engine
            .state()
            .latest_process(&Tenant::default(), "p")
            .unwrap()
            .metadata
            .version,
        2
    );
    h.request(delete_command(v2)).unwrap();
    let latest = h
        .engine
        .state()
        .latest_process(&Tenant::default(), "p")
        .unwrap();
    assert_eq!(latest.metadata.process_definition_key, v1);
    match h.request(create_command("p", -1, "{}", false)).unwrap() {
        ResponseValue::ProcessInstanceCreated {
            process_definition_key,
            version,
            ..
        } => {
            assert_eq!(process_definition_key, v1);
            assert_eq!(version, 1);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        h.request(create_command("p", 2, "{}", false))
            .unwrap_err()
            .rejection_type,
        RejectionType::NotFound
    );
    // a deleted version number is not handed out again
    match h.deploy("p.bpmn", &task_process("p", "second")).unwrap() {
        ResponseValue::Deployment { processes, .. } => {
            assert_eq!(processes[0].version, 3);
            assert!(!processes[0].duplicate);
        }
        other => panic!("unexpected {other:?}"),
    }
    // deleting an older version keeps the latest
    h.request(delete_command(v1)).unwrap();
    assert_eq!(
        h.engine
            .state()
            .latest_process(&Tenant::default(), "p")
            .unwrap()
            .metadata
            .version,
        3
    );
    assert!(h
        .engine
        .state()
        .process_version(&Tenant::default(), "p", 1)
        .is_none());
    assert_replay_matches(&h);
}

#[test]
fn deleting_the_only_version_leaves_no_latest() {
    let mut h = Harness::new();
    let key = deploy_key(&mut h, "one.bpmn", &one_task("one"));
    h.request(delete_command(key)).unwrap();
    assert!(h
        .engine
        .state()
        .latest_process(&Tenant::default(), "one")
        .is_none());
    assert!(h.engine.state().process_versions.is_empty());
}

#[test]
fn deleting_the_latest_version_moves_start_timers_to_the_previous_one() {
    let mut h = Harness::new();
    let v1 = deploy_key(&mut h, "t.bpmn", &timer_start_process("t", "e1"));
    let v2 = deploy_key(&mut h, "t.bpmn", &timer_start_process("t", "e2"));
    let timers = |h: &Harness| -> Vec<i64> {
        h.engine
            .state()
            .timers
            .values()
            .map(|t| t.process_definition_key)
            .collect()
    };
    assert_eq!(timers(&h), vec![v2]);
    h.request(delete_command(v2)).unwrap();
    assert_eq!(timers(&h), vec![v1]);
    h.advance(60_000);
    assert_eq!(h.instances_of("t").len(), 1);
    h.request(delete_command(v1)).unwrap();
    assert!(timers(&h).is_empty());
    assert_replay_matches(&h);
}

#[test]
fn deletion_is_distributed_to_the_other_partitions() {
    let mut c = Cluster::new(2);
    c.deploy("one.bpmn", &one_task("one"));
    c.deploy("p.bpmn", &task_process("p", "first"));
    let v2 = deploy_key(c.partition(1), "p.bpmn", &task_process("p", "second"));
    c.deliver();
    let key = c
        .partition(2)
        .engine
        .state()
        .latest_process(&Tenant::default(), "one")
        .unwrap()
        .metadata
        .process_definition_key;
    let remote = c.partition(2).create("one", "{}");
    let local = c.partition(1).create("one", "{}");
    c.partition(1).request(delete_command(key)).unwrap();
    c.partition(1).request(delete_command(v2)).unwrap();
    assert!(c.partition(1).is_terminated(local));
    assert!(
        !c.partition(2).is_terminated(remote),
        "needs the distribution"
    );
    c.deliver();
    let p2 = c.partition(2);
    assert!(p2.is_terminated(remote));
    assert!(p2.engine.state().process(key).is_none());
    assert!(p2.engine.state().process(v2).is_none());
    assert_eq!(
        p2.engine
            .state()
            .latest_process(&Tenant::default(), "p")
            .unwrap()
            .metadata
            .version,
        1
    );
    assert!(p2.engine.state().jobs.is_empty());
    assert_eq!(p2.count(ValueType::ResourceDeletion, Intent::Deleted), 2);
}

/// A deletion whose instances take more than one command to terminate: the
/// definition stays (being deleted) until the last instance ended, also
/// across a snapshot taken in between.
#[test]
fn snapshot_while_a_definition_is_being_deleted() {
    const INSTANCES: usize = 700;
    let mut h = Harness::new();
    let key = deploy_key(&mut h, "one.bpmn", &one_task("one"));
    let v2 = deploy_key(&mut h, "one.bpmn", &task_process("one", "other"));
    for _ in 0..INSTANCES {
        h.request(create_command("one", 1, "{}", false)).unwrap();
    }
    let mut command = delete_command(key);
    command.position = h.log.len() as i64 + 1;
    command.timestamp_ms = h.now_ms;
    command.request_id = Some(u64::MAX);
    let out = h.engine.process(&command);
    let follow_ups: Vec<Record> = out
        .records
        .iter()
        .filter(|r| r.record_type == RecordType::Command)
        .cloned()
        .collect();
    assert!(!follow_ups.is_empty(), "termination spills into follow-ups");
    let state = h.engine.state();
    assert!(state.is_deleting(key));
    assert!(state.process(key).is_some(), "kept while instances end");
    assert_eq!(
        state
            .latest_process(&Tenant::default(), "one")
            .unwrap()
            .metadata
            .process_definition_key,
        v2
    );

    let snapshot = h.engine.snapshot();
    let mut restored = Engine::restore(&snapshot).unwrap();
    assert_eq!(restored.snapshot(), snapshot);
    assert!(restored.state().is_deleting(key));

    let drain = |engine: &mut Engine, mut queue: Vec<Record>| {
        let mut events = Vec::new();
        let mut position = 1_000_000;
        while !queue.is_empty() {
            let mut next = Vec::new();
            for mut cmd in queue {
                position += 1;
                cmd.position = position;
                let out = engine.process(&cmd);
                for r in out.records {
                    if r.record_type == RecordType::Command {
                        next.push(r);
                    } else {
                        events.push((r.key, r.value_type, r.intent));
                    }
                }
            }
            queue = next;
        }
        events
    };
    let original = drain(&mut h.engine, follow_ups.clone());
    let replayed = drain(&mut restored, follow_ups);
    assert_eq!(original, replayed);
    assert!(original.contains(&(key, ValueType::Process, Intent::Deleted)));
    assert_eq!(h.engine.snapshot(), restored.snapshot());
    let state = restored.state();
    assert!(state.process(key).is_none());
    assert!(!state.is_deleting(key));
    assert!(state.instances.is_empty());
    assert!(state.jobs.is_empty());
}
