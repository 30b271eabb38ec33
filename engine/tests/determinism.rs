//! Replay and snapshot determinism: a command stream processed on a fresh
//! engine, and on one restored from a snapshot taken halfway, gives
//! byte-identical events and state; a follower replaying the events reaches
//! the same state. Also: the record codec never panics on garbage.

mod common;
use ::engine::*;
use common::*;

fn workload(h: &mut Harness, rounds: usize) {
    for i in 0..rounds {
        let pi = h.create("one", &format!(r#"{{"i": {i}, "s": "x"}}"#));
        let jobs = h.activate("work", 3);
        for (n, job) in jobs.iter().enumerate() {
            if (i + n) % 3 == 1 {
                h.job(Intent::Fail, job.key, |j| {
                    j.retries = 1;
                    j.retry_backoff_ms = 10;
                })
                .unwrap();
            } else {
                h.complete(job.key, r#"{"done": true}"#).unwrap();
            }
        }
        if i % 4 == 3 {
            let _ = h.cancel(pi);
        }
        // timers and messages: a receive task with a boundary timer, messages
        // published before, after or never
        let key = format!("k{i}");
        if i % 3 == 0 {
            h.publish("msg", &key, 30, "", r#"{"early": true}"#)
                .unwrap();
        }
        let ev = h.create("events", &format!(r#"{{"k": "{key}"}}"#));
        if i % 3 == 1 {
            h.publish("msg", &key, 0, &key, r#"{"late": true}"#)
                .unwrap();
        }
        if i % 5 == 4 {
            let _ = h.cancel(ev);
        }
        // execution listeners: a start listener job in flight across the
        // snapshot, its variables, and an end listener
        h.create("listened", &format!(r#"{{"i": {i}}}"#));
        for job in h.activate("el-start", 2) {
            h.complete(job.key, r#"{"seen": true}"#).unwrap();
        }
        for job in h.activate("el-end", 1) {
            h.complete(job.key, "{}").unwrap();
        }
        h.now_ms += 20;
        h.tick();
    }
}

fn listened_process() -> String {
    let ext = r#"<zeebe:executionListeners><zeebe:executionListener eventType="start" type="el-start"/><zeebe:executionListener eventType="end" type="el-end"/></zeebe:executionListeners>"#;
    bpmn(
        "listened",
        &format!(
            r#"<bpmn:startEvent id="s"/>{}<bpmn:endEvent id="e"/>{}{}"#,
            service_task("t", "work", ext),
            flow("f1", "s", "t"),
            flow("f2", "t", "e")
        ),
    )
}

fn events_process() -> String {
    bpmn(
        "events",
        &format!(
            r#"<bpmn:startEvent id="s"/><bpmn:receiveTask id="r" messageRef="m"/><bpmn:boundaryEvent id="b" attachedToRef="r"><bpmn:timerEventDefinition><bpmn:timeDuration>PT0.05S</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent><bpmn:endEvent id="e"/><bpmn:endEvent id="late"/>{}{}{}"#,
            flow("f1", "s", "r"),
            flow("f2", "r", "e"),
            flow("f3", "b", "late")
        ),
    )
    .replace(
        "</bpmn:definitions>",
        r#"<bpmn:message id="m" name="msg"><bpmn:extensionElements><zeebe:subscription correlationKey="=k"/></bpmn:extensionElements></bpmn:message></bpmn:definitions>"#,
    )
}

fn encoded(records: &[Record]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        r.encode(&mut out);
    }
    out
}

#[test]
fn snapshot_halfway_and_replay_give_identical_events_and_state() {
    let mut full = Harness::new();
    full.deploy("one.bpmn", &one_task("one")).unwrap();
    full.deploy("events.bpmn", &events_process()).unwrap();
    full.deploy("listened.bpmn", &listened_process()).unwrap();
    workload(&mut full, 20);
    full.create("events", r#"{"k": "pending"}"#);
    full.publish("msg", "buffered", 60_000, "", "{}").unwrap();
    assert!(
        !full.engine.state().timers.is_empty(),
        "a timer in the halfway state"
    );
    assert!(
        !full.engine.state().messages.is_empty(),
        "a message in the halfway state"
    );
    let half_log = full.log.len();
    let half_snapshot = full.engine.snapshot();
    workload(&mut full, 20);

    // The second half again, on an engine restored from the halfway snapshot,
    // fed the same commands.
    let restored = Engine::restore(&half_snapshot).unwrap();
    assert_eq!(
        restored.snapshot(),
        half_snapshot,
        "restore/snapshot round trip"
    );
    let mut second = Harness::with_engine(restored);
    second.log = full.log[..half_log].to_vec();
    second.now_ms = full.log[half_log].timestamp_ms;
    for cmd in full.log[half_log..]
        .iter()
        .filter(|r| r.record_type == RecordType::Command && r.source_record_position == NO_KEY)
    {
        second.submit_as_is(cmd.clone());
    }
    assert_eq!(full.log.len(), second.log.len());
    assert!(
        encoded(&full.log[half_log..]) == encoded(&second.log[half_log..]),
        "byte-identical records after the snapshot"
    );
    assert!(full.engine.snapshot() == second.engine.snapshot());
    // Fingerprints (what replicas compare to notice divergence) agree where
    // the states do, and tell the halfway state from the final one.
    assert_eq!(full.engine.fingerprint(), second.engine.fingerprint());
    let halfway = Engine::restore(&half_snapshot).unwrap();
    assert_ne!(halfway.fingerprint(), full.engine.fingerprint());

    // A follower applying every record ends with the same state.
    let mut follower = Engine::new(1, 1);
    for r in &full.log {
        follower.replay(r);
    }
    assert!(
        follower.snapshot() == full.engine.snapshot(),
        "follower state"
    );
    assert_eq!(follower.fingerprint(), full.engine.fingerprint());
    assert_eq!(
        follower.last_processed_position(),
        full.engine.last_processed_position()
    );
    assert!(full
        .log
        .iter()
        .any(|r| r.intent == Intent::RecurredAfterBackoff));
    assert!(full.log.iter().any(|r| matches!(&r.value,
        RecordValue::Job(j) if j.job_kind == JobKind::ExecutionListener
            && j.listener_event_type == ListenerEventType::End
            && r.intent == Intent::Completed)));
    for intent in [
        Intent::Triggered,
        Intent::Correlated,
        Intent::Expired,
        Intent::Canceled,
    ] {
        assert!(
            full.log.iter().any(|r| r.intent == intent
                && matches!(
                    r.value_type,
                    ValueType::Timer | ValueType::ProcessMessageSubscription | ValueType::Message
                )),
            "the workload covers {intent:?}"
        );
    }
}

#[test]
fn codec_round_trips_and_never_panics_on_garbage() {
    let mut h = Harness::new();
    h.deploy("one.bpmn", &one_task("one")).unwrap();
    h.create("one", r#"{"a": [1, 2, {"b": null}]}"#);
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for r in &h.log {
        let mut bytes = Vec::new();
        r.encode(&mut bytes);
        assert_eq!(&Record::decode(&bytes).unwrap(), r);
        for cut in 0..bytes.len().min(64) {
            let _ = Record::decode(&bytes[..cut]);
        }
        for _ in 0..64 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut garbled = bytes.clone();
            let i = (seed as usize) % garbled.len();
            garbled[i] ^= (seed >> 32) as u8 | 1;
            let _ = Record::decode(&garbled);
        }
    }
    assert!(Record::decode(&[]).is_err());
    assert!(Record::decode(&[9, 1, 2]).is_err());
    assert!(Engine::restore(&[1, 255, 255, 255]).is_err());
}

/// Modification, migration and start instructions: instances moved back to
/// their task with variables, migrated to version 2, created at the task.
fn repair_workload(h: &mut Harness, target: i64, rounds: usize) {
    for i in 0..rounds {
        let pi = h.create("one", &format!(r#"{{"i": {i}}}"#));
        let task = *h
            .engine
            .state()
            .children_of(pi)
            .first()
            .expect("the task is active");
        let modification = ProcessInstanceModificationRecord {
            process_instance_key: pi,
            terminate_instructions: vec![task],
            activate_instructions: vec![ActivateInstruction {
                element_id: "task".into(),
                ancestor_scope_key: NO_KEY,
                variable_instructions: vec![VariableInstruction {
                    variables: format!(r#"{{"again": {i}}}"#),
                    element_id: "task".into(),
                }],
                ancestor_scope_keys: vec![],
            }],
        };
        h.request(Record::command(
            pi,
            Intent::Modify,
            RecordValue::ProcessInstanceModification(modification),
            None,
        ))
        .expect("modify");
        if i % 2 == 0 {
            let migration = ProcessInstanceMigrationRecord {
                process_instance_key: pi,
                target_process_definition_key: target,
                mapping_instructions: vec![MappingInstruction {
                    source_element_id: "task".into(),
                    target_element_id: "task".into(),
                }],
            };
            h.request(Record::command(
                pi,
                Intent::Migrate,
                RecordValue::ProcessInstanceMigration(migration),
                None,
            ))
            .expect("migrate");
        }
        let mut create = create_command("one", 1, "{}", false);
        if let RecordValue::ProcessInstanceCreation(c) = &mut create.value {
            c.start_instructions = vec!["task".into()];
        }
        h.request(create).expect("create at the task");
        for job in h.activate("work", 2) {
            h.complete(job.key, "{}").expect("complete");
        }
        h.now_ms += 7;
    }
}

#[test]
fn modification_and_migration_replay_and_restore_identically() {
    let mut full = Harness::new();
    full.deploy("one.bpmn", &one_task("one")).unwrap();
    let v2 = one_task("one")
        .replace("id=\"end\"", "id=\"done\"")
        .replace("\"end\"", "\"done\"");
    let target = match full.deploy("one.bpmn", &v2).unwrap() {
        ResponseValue::Deployment { processes, .. } => processes[0].process_definition_key,
        other => panic!("{other:?}"),
    };
    repair_workload(&mut full, target, 10);
    let half_log = full.log.len();
    let half_snapshot = full.engine.snapshot();
    repair_workload(&mut full, target, 10);
    assert!(full.log.iter().any(|r| r.intent == Intent::Modified));
    assert!(full.log.iter().any(|r| r.intent == Intent::ElementMigrated));

    let mut second = Harness::with_engine(Engine::restore(&half_snapshot).unwrap());
    second.log = full.log[..half_log].to_vec();
    for cmd in full.log[half_log..]
        .iter()
        .filter(|r| r.record_type == RecordType::Command && r.source_record_position == NO_KEY)
    {
        second.submit_as_is(cmd.clone());
    }
    assert!(
        encoded(&full.log[half_log..]) == encoded(&second.log[half_log..]),
        "byte-identical records after the snapshot"
    );
    assert!(full.engine.snapshot() == second.engine.snapshot());
    // Fingerprints (what replicas compare to notice divergence) agree where
    // the states do, and tell the halfway state from the final one.
    assert_eq!(full.engine.fingerprint(), second.engine.fingerprint());
    let halfway = Engine::restore(&half_snapshot).unwrap();
    assert_ne!(halfway.fingerprint(), full.engine.fingerprint());
    let mut follower = Engine::new(1, 1);
    for r in &full.log {
        follower.replay(r);
    }
    assert!(
        follower.snapshot() == full.engine.snapshot(),
        "follower state"
    );
    assert_eq!(follower.fingerprint(), full.engine.fingerprint());
}
