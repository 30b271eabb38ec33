//! Process instance migration of what waits for events and of what runs
//! more than once: boundary events (kept, closed, opened), intermediate
//! catch events and receive tasks, event-based gateways, multi-instance
//! bodies, waiting joins and event sub-processes, each with Zeebe's
//! rejections, and replay.

mod common;
use ::engine::*;
use common::*;

/// `bpmn` with message and signal definitions after the process.
fn with_defs(process: String, defs: &str) -> String {
    process.replace("</bpmn:definitions>", &format!("{defs}</bpmn:definitions>"))
}

const MESSAGES: &str = r#"<bpmn:message id="cancel" name="cancel"><bpmn:extensionElements><zeebe:subscription correlationKey="=orderId"/></bpmn:extensionElements></bpmn:message><bpmn:message id="paid" name="paid"><bpmn:extensionElements><zeebe:subscription correlationKey="=orderId"/></bpmn:extensionElements></bpmn:message><bpmn:message id="broken" name="broken"><bpmn:extensionElements><zeebe:subscription correlationKey="=no_such_variable"/></bpmn:extensionElements></bpmn:message><bpmn:signal id="alarm" name="alarm"/><bpmn:signal id="stop" name="stop"/>"#;

fn timer(duration: &str) -> String {
    format!(
        r#"<bpmn:timerEventDefinition><bpmn:timeDuration>{duration}</bpmn:timeDuration></bpmn:timerEventDefinition>"#
    )
}

fn message(reference: &str) -> String {
    format!(r#"<bpmn:messageEventDefinition messageRef="{reference}"/>"#)
}

fn signal(reference: &str) -> String {
    format!(r#"<bpmn:signalEventDefinition signalRef="{reference}"/>"#)
}

/// start → `task` (job `work`) → end, with one boundary event `boundary`
/// (definition `definition`) leading to `boundary_end`.
fn task_with_boundary(process: &str, task: &str, boundary: &str, definition: &str) -> String {
    with_defs(
        bpmn(
            process,
            &format!(
                r#"<bpmn:startEvent id="start"/>{}<bpmn:boundaryEvent id="{boundary}" attachedToRef="{task}">{definition}</bpmn:boundaryEvent><bpmn:endEvent id="end"/><bpmn:endEvent id="{boundary}_end"/>{}{}{}"#,
                service_task(task, "work", ""),
                flow("f1", "start", task),
                flow("f2", task, "end"),
                flow("f3", boundary, &format!("{boundary}_end"))
            ),
        ),
        MESSAGES,
    )
}

/// Migrates and checks that the rejection has `reason` and wrote nothing
/// but the command and its rejection.
fn assert_rejected(h: &mut Harness, pi: i64, target: i64, pairs: &[(&str, &str)], reason: &str) {
    let before = h.log.len();
    let instances = h.engine.state().instances.clone();
    match migrate(h, pi, target, pairs) {
        Err(r) => {
            assert_eq!(
                r.rejection_type,
                RejectionType::InvalidState,
                "{}",
                r.reason
            );
            assert_eq!(r.reason, reason);
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(
        h.log.len(),
        before + 2,
        "the command and its rejection only"
    );
    assert_eq!(h.engine.state().instances, instances, "no state changed");
}

/// Events of `value_type` with `intent` written after log position `from`.
fn events_since(h: &Harness, from: usize, value_type: ValueType, intent: Intent) -> Vec<Record> {
    h.log[from..]
        .iter()
        .filter(|r| r.record_type == RecordType::Event)
        .filter(|r| r.value_type == value_type && r.intent == intent)
        .cloned()
        .collect()
}

#[test]
fn a_mapped_timer_boundary_event_keeps_its_timer_and_fires_in_the_target() {
    let mut h = Harness::new();
    deploy_key(
        &mut h,
        "a.bpmn",
        &task_with_boundary("order", "review", "late", &timer("PT1H")),
    );
    let pi = h.create("order", r#"{"orderId":"o-1"}"#);
    h.advance(60_000);
    let (&timer_key, before) = h.engine.state().timers.iter().next().expect("the timer");
    let before = before.clone();
    let v2 = deploy_key(
        &mut h,
        "a.bpmn",
        &task_with_boundary("order", "review2", "late2", &timer("PT5H")),
    );
    let from = h.log.len();
    migrate(&mut h, pi, v2, &[("review", "review2"), ("late", "late2")]).expect("migrate");

    let migrated = events_since(&h, from, ValueType::Timer, Intent::Migrated);
    assert_eq!(migrated.len(), 1);
    assert_eq!(migrated[0].key, timer_key);
    assert!(events_since(&h, from, ValueType::Timer, Intent::Canceled).is_empty());
    assert!(events_since(&h, from, ValueType::Timer, Intent::Created).is_empty());
    let timer = &h.engine.state().timers[&timer_key];
    assert_eq!(&*timer.target_element_id, "late2");
    assert_eq!(timer.process_definition_key, v2);
    assert_eq!(
        timer.due_date_ms, before.due_date_ms,
        "the due date is kept"
    );

    h.advance(3_600_000);
    assert_eq!(
        h.element_intents(pi, "late2"),
        [
            "ELEMENT_ACTIVATING",
            "ELEMENT_ACTIVATED",
            "ELEMENT_COMPLETING",
            "ELEMENT_COMPLETED"
        ]
    );
    assert!(h.is_completed(pi));
    assert!(h
        .element_intents(pi, "late2_end")
        .contains(&"ELEMENT_COMPLETED"));
    assert_replay_matches(&h);
}

#[test]
fn an_unmapped_boundary_event_is_closed_and_the_targets_is_opened() {
    let mut h = Harness::new();
    deploy_key(
        &mut h,
        "a.bpmn",
        &task_with_boundary("order", "review", "late", &timer("PT1H")),
    );
    let pi = h.create("order", r#"{"orderId":"o-2"}"#);
    let timer_key = *h.engine.state().timers.keys().next().expect("the timer");
    let v2 = deploy_key(
        &mut h,
        "a.bpmn",
        &task_with_boundary("order", "review", "cancelled", &message("cancel")),
    );
    let from = h.log.len();
    migrate(&mut h, pi, v2, &[("review", "review")]).expect("migrate");
    let canceled = events_since(&h, from, ValueType::Timer, Intent::Canceled);
    assert_eq!(canceled.len(), 1);
    assert_eq!(canceled[0].key, timer_key);
    assert!(h.engine.state().timers.is_empty());
    let opened = events_since(
        &h,
        from,
        ValueType::ProcessMessageSubscription,
        Intent::Creating,
    );
    assert_eq!(opened.len(), 1);
    match &opened[0].value {
        RecordValue::ProcessMessageSubscription(m) => {
            assert_eq!(&*m.element_id, "cancelled");
            assert_eq!(m.correlation_key, "o-2");
        }
        other => panic!("{other:?}"),
    }

    h.advance(7_200_000);
    assert!(!h.is_completed(pi), "the old timer is gone");
    h.publish("cancel", "o-2", 0, "", "{}").expect("publish");
    assert!(h
        .element_intents(pi, "cancelled")
        .contains(&"ELEMENT_COMPLETED"));
    assert!(h.is_completed(pi));
    assert_replay_matches(&h);
}

#[test]
fn a_mapped_message_boundary_event_keeps_its_subscription_on_both_sides() {
    let mut h = Harness::new();
    deploy_key(
        &mut h,
        "a.bpmn",
        &task_with_boundary("order", "review", "cancel_it", &message("cancel")),
    );
    let pi = h.create("order", r#"{"orderId":"o-3"}"#);
    let (&pms_key, _) = h
        .engine
        .state()
        .process_message_subscriptions
        .iter()
        .next()
        .expect("the subscription");
    let v2 = deploy_key(
        &mut h,
        "b.bpmn",
        &with_defs(
            bpmn(
                "order2",
                &format!(
                    r#"<bpmn:startEvent id="start"/>{}<bpmn:boundaryEvent id="cancel2" attachedToRef="review2" cancelActivity="false">{}</bpmn:boundaryEvent><bpmn:endEvent id="end"/><bpmn:endEvent id="cancel2_end"/>{}{}{}"#,
                    service_task("review2", "work", ""),
                    message("cancel"),
                    flow("f1", "start", "review2"),
                    flow("f2", "review2", "end"),
                    flow("f3", "cancel2", "cancel2_end")
                ),
            ),
            MESSAGES,
        ),
    );
    let from = h.log.len();
    migrate(
        &mut h,
        pi,
        v2,
        &[("review", "review2"), ("cancel_it", "cancel2")],
    )
    .expect("migrate");
    let migrated = events_since(
        &h,
        from,
        ValueType::ProcessMessageSubscription,
        Intent::Migrated,
    );
    assert_eq!(migrated.len(), 1);
    assert_eq!(migrated[0].key, pms_key);
    assert_eq!(
        events_since(&h, from, ValueType::MessageSubscription, Intent::Migrated).len(),
        1
    );
    assert!(events_since(
        &h,
        from,
        ValueType::ProcessMessageSubscription,
        Intent::Deleting
    )
    .is_empty());
    let sub = &h.engine.state().process_message_subscriptions[&pms_key].record;
    assert_eq!(&*sub.element_id, "cancel2");
    assert_eq!(&*sub.bpmn_process_id, "order2");
    assert_eq!(sub.correlation_key, "o-3", "the correlation key is kept");
    assert!(!sub.interrupting, "interrupting as in the target");
    let ms = h
        .engine
        .state()
        .message_subscriptions
        .values()
        .next()
        .expect("message side");
    assert_eq!(&*ms.record.bpmn_process_id, "order2");
    assert!(!ms.record.interrupting);

    // Non-interrupting in the target: the task stays, the boundary path runs.
    h.publish("cancel", "o-3", 0, "", "{}").expect("publish");
    assert!(h
        .element_intents(pi, "cancel2_end")
        .contains(&"ELEMENT_COMPLETED"));
    assert!(!h.is_completed(pi));
    let job = h.activate("work", 1).remove(0);
    assert_eq!(&*job.job.element_id, "review2");
    h.complete(job.key, "{}").expect("complete");
    assert!(h.is_completed(pi));
    assert_replay_matches(&h);
}

/// Two partitions; an instance on partition 1 waits at a task with a
/// message boundary event whose correlation key (returned) lives on
/// partition 2, its subscription opened there.
fn waiting_on_the_message_partition() -> (Cluster, String, i64) {
    let mut c = Cluster::new(2);
    let key = (0..100)
        .map(|i| format!("k{i}"))
        .find(|k| message_partition(k, 2) == 2)
        .expect("a key of partition 2");
    c.deploy(
        "a.bpmn",
        &task_with_boundary("order", "review", "cancel_it", &message("cancel")),
    );
    let pi = c
        .partition(1)
        .create("order", &format!(r#"{{"orderId":"{key}"}}"#));
    c.deliver();
    (c, key, pi)
}

#[test]
fn a_message_subscription_on_another_partition_is_migrated_there() {
    let (mut c, key, pi) = waiting_on_the_message_partition();
    assert_eq!(c.partition(2).engine.state().message_subscriptions.len(), 1);
    c.deploy(
        "a.bpmn",
        &task_with_boundary("order", "review", "cancel2", &message("cancel")),
    );
    let v2 = *c.partition(1).engine.state().process_versions["order"]
        .get(&2)
        .expect("version 2");
    migrate(
        c.partition(1),
        pi,
        v2,
        &[("review", "review"), ("cancel_it", "cancel2")],
    )
    .expect("migrate");
    c.deliver();
    let ms = c
        .partition(2)
        .engine
        .state()
        .message_subscriptions
        .values()
        .next()
        .cloned();
    assert_eq!(&*ms.expect("still open").record.element_id, "cancel2");
    c.publish("cancel", &key, 0, "{}");
    assert!(c
        .partition(1)
        .element_intents(pi, "cancel2_end")
        .contains(&"ELEMENT_COMPLETED"));
    assert!(c.partition(1).is_completed(pi));
}

#[test]
fn a_mapped_signal_boundary_event_keeps_its_subscription() {
    let mut h = Harness::new();
    deploy_key(
        &mut h,
        "a.bpmn",
        &task_with_boundary("order", "review", "alarmed", &signal("alarm")),
    );
    let pi = h.create("order", "{}");
    let sub_key = *h
        .engine
        .state()
        .signal_subscriptions
        .keys()
        .next()
        .expect("subscribed");
    let v2 = deploy_key(
        &mut h,
        "a.bpmn",
        &task_with_boundary("order", "review", "alarmed2", &signal("alarm")),
    );
    let from = h.log.len();
    migrate(
        &mut h,
        pi,
        v2,
        &[("review", "review"), ("alarmed", "alarmed2")],
    )
    .expect("migrate");
    let migrated = events_since(&h, from, ValueType::SignalSubscription, Intent::Migrated);
    assert_eq!(migrated.len(), 1);
    assert_eq!(migrated[0].key, sub_key);
    let sub = &h.engine.state().signal_subscriptions[&sub_key];
    assert_eq!(&*sub.element_id, "alarmed2");
    assert_eq!(sub.process_definition_key, v2);
    h.broadcast("alarm", "{}").expect("broadcast");
    assert!(h
        .element_intents(pi, "alarmed2_end")
        .contains(&"ELEMENT_COMPLETED"));
    assert!(h.is_completed(pi));
    assert_replay_matches(&h);
}

#[test]
fn catch_event_mappings_are_checked_as_zeebe_does() {
    let mut h = Harness::new();
    let source = with_defs(
        bpmn(
            "two",
            &format!(
                r#"<bpmn:startEvent id="start"/>{}<bpmn:boundaryEvent id="t1" attachedToRef="review">{}</bpmn:boundaryEvent><bpmn:boundaryEvent id="t2" attachedToRef="review">{}</bpmn:boundaryEvent><bpmn:endEvent id="end"/><bpmn:endEvent id="e1"/><bpmn:endEvent id="e2"/>{}{}{}{}"#,
                service_task("review", "work", ""),
                timer("PT1H"),
                timer("PT2H"),
                flow("f1", "start", "review"),
                flow("f2", "review", "end"),
                flow("f3", "t1", "e1"),
                flow("f4", "t2", "e2")
            ),
        ),
        MESSAGES,
    );
    deploy_key(&mut h, "two.bpmn", &source);
    let pi = h.create("two", r#"{"orderId":"o-4"}"#);
    let same = deploy_key(&mut h, "two.bpmn", &source.replace("PT2H", "PT3H"));
    let signalled = deploy_key(
        &mut h,
        "sig.bpmn",
        &task_with_boundary("sig", "review", "t1", &signal("alarm")),
    );
    let other_task = deploy_key(
        &mut h,
        "other.bpmn",
        &with_defs(
            bpmn(
                "other",
                &format!(
                    r#"<bpmn:startEvent id="start"/>{}{}<bpmn:boundaryEvent id="elsewhere" attachedToRef="audit">{}</bpmn:boundaryEvent><bpmn:endEvent id="end"/><bpmn:endEvent id="e"/>{}{}{}{}"#,
                    service_task("review", "work", ""),
                    service_task("audit", "audit", ""),
                    timer("PT1H"),
                    flow("f1", "start", "review"),
                    flow("f2", "review", "audit"),
                    flow("f3", "audit", "end"),
                    flow("f4", "elsewhere", "e")
                ),
            ),
            MESSAGES,
        ),
    );
    let broken = deploy_key(
        &mut h,
        "broken.bpmn",
        &task_with_boundary("broken", "review", "b", &message("broken")),
    );
    assert_rejected(
        &mut h,
        pi,
        other_task,
        &[("review", "review"), ("t1", "elsewhere")],
        &format!("Expected to migrate process instance '{pi}' but active element with id 'review' is mapped to an element with id 'review' and has a catch event with id 't1' that is mapped to a catch event with id 'elsewhere'. These mappings detach the catch event from the element in the target process. Catch events must stay attached to the same element instance."),
    );
    assert_rejected(
        &mut h,
        pi,
        same,
        &[("review", "review"), ("t1", "t2"), ("t2", "t2")],
        &format!("Expected to migrate process instance '{pi}' but active element with id 'review' has a catch event attached that is mapped to a catch event with id 't2'. There are multiple mapping instructions that target this catch event: 't1', 't2'. Catch events cannot be merged by process instance migration. Please ensure the mapping instructions target a catch event only once."),
    );
    assert_rejected(
        &mut h,
        pi,
        signalled,
        &[("review", "review"), ("t1", "t1")],
        &format!("Expected to migrate process instance '{pi}' but active element with id 'review' has a catch event with id 't1' that is mapped to a catch event with id 't1'. These catch events have different event types: 'TIMER' and 'SIGNAL'. The event type of a catch event cannot be changed by process instance migration. Please ensure the event type of the catch event remains the same or remove the mapping instruction for these catch events."),
    );
    assert_rejected(
        &mut h,
        pi,
        broken,
        &[("review", "review")],
        &format!("Expected to migrate process instance '{pi}' but active element with id 'review' is mapped to element with id 'review' that must be subscribed to a catch event. event 'b': Expected the correlation key '=no_such_variable' to be a string or a number, but was 'null'"),
    );
    // Mapped timers keep their due dates; the unmapped one starts anew.
    let from = h.log.len();
    h.advance(1_000);
    migrate(&mut h, pi, same, &[("review", "review"), ("t1", "t1")]).expect("migrate");
    assert_eq!(
        events_since(&h, from, ValueType::Timer, Intent::Migrated).len(),
        1
    );
    assert_eq!(
        events_since(&h, from, ValueType::Timer, Intent::Canceled).len(),
        1
    );
    assert_eq!(
        events_since(&h, from, ValueType::Timer, Intent::Created).len(),
        1
    );
    assert_replay_matches(&h);
}

#[test]
fn a_message_the_element_already_waits_for_must_be_mapped() {
    let mut h = Harness::new();
    deploy_key(
        &mut h,
        "a.bpmn",
        &task_with_boundary("order", "review", "cancel_it", &message("cancel")),
    );
    let pi = h.create("order", r#"{"orderId":"o-5"}"#);
    let v2 = deploy_key(
        &mut h,
        "a.bpmn",
        &task_with_boundary("order", "review", "cancel2", &message("cancel")),
    );
    assert_rejected(
        &mut h,
        pi,
        v2,
        &[("review", "review")],
        &format!("Expected to migrate process instance '{pi}' but active element with id 'review' attempts to subscribe to a message it is already subscribed to with name 'cancel'. Migrating active elements that subscribe to a message they are already subscribed to is not possible yet. Please provide a mapping instruction to message catch event with id 'cancel2' to migrate the respective message subscription."),
    );
}

/// start → `catch` (definition) → `next` (job `next`) → end.
fn waiting(process: &str, catch: &str, definition: &str) -> String {
    with_defs(
        bpmn(
            process,
            &format!(
                r#"<bpmn:startEvent id="start"/><bpmn:intermediateCatchEvent id="{catch}">{definition}</bpmn:intermediateCatchEvent>{}<bpmn:endEvent id="end"/>{}{}{}"#,
                service_task("next", "next", ""),
                flow("f1", "start", catch),
                flow("f2", catch, "next"),
                flow("f3", "next", "end")
            ),
        ),
        MESSAGES,
    )
}

#[test]
fn waiting_intermediate_catch_events_move_with_their_subscriptions() {
    let mut h = Harness::new();
    deploy_key(&mut h, "t.bpmn", &waiting("timed", "wait", &timer("PT1H")));
    deploy_key(
        &mut h,
        "m.bpmn",
        &waiting("paying", "wait", &message("paid")),
    );
    deploy_key(
        &mut h,
        "s.bpmn",
        &waiting("signalled", "wait", &signal("alarm")),
    );
    let timed = h.create("timed", "{}");
    let paying = h.create("paying", r#"{"orderId":"o-6"}"#);
    let signalled = h.create("signalled", "{}");
    let timed2 = deploy_key(&mut h, "t.bpmn", &waiting("timed", "wait2", &timer("PT9H")));
    let paying2 = deploy_key(
        &mut h,
        "m.bpmn",
        &waiting("paying", "wait2", &message("paid")),
    );
    let signalled2 = deploy_key(
        &mut h,
        "s.bpmn",
        &waiting("signalled", "wait2", &signal("alarm")),
    );
    assert_rejected(
        &mut h,
        timed,
        paying2,
        &[("wait", "wait2")],
        &format!("Expected to migrate process instance '{timed}' but active element with id 'wait' has a catch event with id 'wait' that is mapped to a catch event with id 'wait2'. These catch events have different event types: 'TIMER' and 'MESSAGE'. The event type of a catch event cannot be changed by process instance migration. Please ensure the event type of the catch event remains the same or remove the mapping instruction for these catch events."),
    );
    for (pi, target) in [(timed, timed2), (paying, paying2), (signalled, signalled2)] {
        migrate(&mut h, pi, target, &[("wait", "wait2")]).expect("migrate");
        assert_eq!(
            h.engine.state().instances[&pi].process_definition_key,
            target
        );
    }
    assert_eq!(
        h.count(ValueType::Timer, Intent::Migrated)
            + h.count(ValueType::ProcessMessageSubscription, Intent::Migrated)
            + h.count(ValueType::SignalSubscription, Intent::Migrated),
        3
    );
    h.advance(3_600_000);
    h.publish("paid", "o-6", 0, "", r#"{"amount":5}"#)
        .expect("publish");
    h.broadcast("alarm", "{}").expect("broadcast");
    for pi in [timed, paying, signalled] {
        assert!(
            h.element_intents(pi, "wait2")
                .contains(&"ELEMENT_COMPLETED"),
            "{pi}"
        );
    }
    assert_eq!(h.variable(paying, "amount").as_deref(), Some("5"));
    for job in h.activate("next", 10) {
        h.complete(job.key, "{}").expect("complete");
    }
    for pi in [timed, paying, signalled] {
        assert!(h.is_completed(pi));
    }
    assert_replay_matches(&h);
}

#[test]
fn a_receive_task_and_an_event_based_gateway_move_with_their_subscriptions() {
    let receive = |process: &str, task: &str| {
        with_defs(
            bpmn(
                process,
                &format!(
                    r#"<bpmn:startEvent id="start"/><bpmn:receiveTask id="{task}" messageRef="paid"/><bpmn:endEvent id="end"/>{}{}"#,
                    flow("f1", "start", task),
                    flow("f2", task, "end")
                ),
            ),
            MESSAGES,
        )
    };
    let gateway = |process: &str, g: &str, m: &str, t: &str| {
        with_defs(
            bpmn(
                process,
                &format!(
                    r#"<bpmn:startEvent id="start"/><bpmn:eventBasedGateway id="{g}"/><bpmn:intermediateCatchEvent id="{m}">{}</bpmn:intermediateCatchEvent><bpmn:intermediateCatchEvent id="{t}">{}</bpmn:intermediateCatchEvent><bpmn:endEvent id="paid_end"/><bpmn:endEvent id="late_end"/>{}{}{}{}{}"#,
                    message("paid"),
                    timer("PT1H"),
                    flow("f1", "start", g),
                    flow("f2", g, m),
                    flow("f3", g, t),
                    flow("f4", m, "paid_end"),
                    flow("f5", t, "late_end")
                ),
            ),
            MESSAGES,
        )
    };
    let mut h = Harness::new();
    deploy_key(&mut h, "r.bpmn", &receive("receiving", "r"));
    deploy_key(&mut h, "g.bpmn", &gateway("gated", "g", "m", "t"));
    let receiving = h.create("receiving", r#"{"orderId":"o-7"}"#);
    let gated = h.create("gated", r#"{"orderId":"o-8"}"#);
    let r2 = deploy_key(&mut h, "r.bpmn", &receive("receiving", "r2"));
    let g2 = deploy_key(&mut h, "g.bpmn", &gateway("gated", "g2", "m2", "t2"));
    migrate(&mut h, receiving, r2, &[("r", "r2")]).expect("migrate the receive task");
    let from = h.log.len();
    // The message event is mapped, the timer is not: it starts anew.
    migrate(&mut h, gated, g2, &[("g", "g2"), ("m", "m2")]).expect("migrate the gateway");
    assert_eq!(
        events_since(
            &h,
            from,
            ValueType::ProcessMessageSubscription,
            Intent::Migrated
        )
        .len(),
        1
    );
    assert_eq!(
        events_since(&h, from, ValueType::Timer, Intent::Canceled).len(),
        1
    );
    let created = events_since(&h, from, ValueType::Timer, Intent::Created);
    match &created[..] {
        [r] => match &r.value {
            RecordValue::Timer(t) => assert_eq!(&*t.target_element_id, "t2"),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
    h.publish("paid", "o-7", 0, "", "{}").expect("publish");
    h.publish("paid", "o-8", 0, "", "{}").expect("publish");
    assert!(h
        .element_intents(receiving, "r2")
        .contains(&"ELEMENT_COMPLETED"));
    assert!(h
        .element_intents(gated, "m2")
        .contains(&"ELEMENT_COMPLETED"));
    assert!(h.is_completed(receiving));
    assert!(h.is_completed(gated));
    assert!(
        h.engine.state().timers.is_empty(),
        "the gateway's timer closed"
    );
    assert_replay_matches(&h);
}

/// start → `task` (multi-instance over `items`, job `work`) → end.
fn multi_instance(process: &str, task: &str, sequential: bool, boundary: &str) -> String {
    with_defs(
        bpmn(
            process,
            &format!(
                r#"<bpmn:startEvent id="start"/><bpmn:serviceTask id="{task}"><bpmn:extensionElements><zeebe:taskDefinition type="work"/></bpmn:extensionElements><bpmn:multiInstanceLoopCharacteristics isSequential="{sequential}"><bpmn:extensionElements><zeebe:loopCharacteristics inputCollection="=items" inputElement="item" outputCollection="results" outputElement="=item * 2"/></bpmn:extensionElements></bpmn:multiInstanceLoopCharacteristics></bpmn:serviceTask>{boundary}<bpmn:endEvent id="end"/>{}{}"#,
                flow("f1", "start", task),
                flow("f2", task, "end")
            ),
        ),
        MESSAGES,
    )
}

#[test]
fn a_multi_instance_body_and_its_inner_instances_move_together() {
    let mut h = Harness::new();
    deploy_key(
        &mut h,
        "mi.bpmn",
        &multi_instance("batch", "each", false, ""),
    );
    let pi = h.create("batch", r#"{"items":[1,2,3]}"#);
    let first = h.activate("work", 1).remove(0);
    h.complete(first.key, "{}").expect("complete one before");
    let sequential = deploy_key(
        &mut h,
        "mi.bpmn",
        &multi_instance("batch", "each2", true, ""),
    );
    let boundary = format!(
        r#"<bpmn:boundaryEvent id="late" attachedToRef="each2">{}</bpmn:boundaryEvent><bpmn:endEvent id="late_end"/>{}"#,
        timer("PT1H"),
        flow("f3", "late", "late_end")
    );
    let parallel = deploy_key(
        &mut h,
        "mi.bpmn",
        &multi_instance("batch", "each2", false, &boundary),
    );
    assert_rejected(
        &mut h,
        pi,
        sequential,
        &[("each", "each2")],
        &format!("Expected to migrate process instance '{pi}' but active element with id 'each' has a different loop characteristics than the target element with id 'each2'. Both elements must have either sequential or parallel loop characteristics."),
    );
    let from = h.log.len();
    migrate(&mut h, pi, parallel, &[("each", "each2")]).expect("migrate");
    let migrated: Vec<(BpmnElementType, String)> = events_since(
        &h,
        from,
        ValueType::ProcessInstance,
        Intent::ElementMigrated,
    )
    .iter()
    .map(|r| match &r.value {
        RecordValue::ProcessInstance(v) => (v.bpmn_element_type, v.element_id.to_string()),
        other => panic!("{other:?}"),
    })
    .collect();
    assert_eq!(
        migrated,
        [
            (BpmnElementType::Process, "batch".to_string()),
            (BpmnElementType::MultiInstanceBody, "each2".to_string()),
            (BpmnElementType::ServiceTask, "each2".to_string()),
            (BpmnElementType::ServiceTask, "each2".to_string()),
        ]
    );
    assert_eq!(
        events_since(&h, from, ValueType::Timer, Intent::Created).len(),
        1,
        "the target body's boundary event is subscribed"
    );
    let jobs = h.activate("work", 10);
    assert_eq!(jobs.len(), 2);
    for job in jobs {
        assert_eq!(&*job.job.element_id, "each2");
        assert_eq!(job.job.process_definition_key, parallel);
        h.complete(job.key, "{}").expect("complete");
    }
    assert!(h.is_completed(pi));
    let results = h.log.iter().rev().find_map(|r| match &r.value {
        RecordValue::Variable(v) if v.name == "results" => Some(v.value.clone()),
        _ => None,
    });
    assert_eq!(results.as_deref(), Some("[2,4,6]"));
    assert!(h.engine.state().timers.is_empty());
    assert_replay_matches(&h);
}

/// start → fork → a (job `a`), b (job `b`) → join → end; ids given.
fn fork_join(join: &str, b: &str, flow_b: &str) -> String {
    bpmn(
        "forked",
        &format!(
            r#"<bpmn:startEvent id="start"/><bpmn:parallelGateway id="fork"/>{}{}<bpmn:parallelGateway id="{join}"/><bpmn:endEvent id="end"/>{}{}{}{}{}{}"#,
            service_task("a", "a", ""),
            service_task(b, "b", ""),
            flow("f0", "start", "fork"),
            flow("fa", "fork", "a"),
            flow("fb", "fork", b),
            flow("ja", "a", join),
            flow(flow_b, b, join),
            flow("fe", join, "end")
        ),
    )
}

#[test]
fn a_waiting_join_moves_with_its_taken_flows() {
    let mut h = Harness::new();
    deploy_key(&mut h, "f.bpmn", &fork_join("join", "b", "jb"));
    let pi = h.create("forked", "{}");
    let a = h.activate("a", 1).remove(0);
    h.complete(a.key, "{}").expect("complete a");
    assert!(
        !h.engine.state().instances[&pi].joins.is_empty(),
        "the join waits"
    );
    let renamed = deploy_key(&mut h, "f.bpmn", &fork_join("join2", "b2", "jb2"));
    let inclusive = deploy_key(
        &mut h,
        "f.bpmn",
        &fork_join("join2", "b2", "jb2").replace(
            r#"<bpmn:parallelGateway id="join2"/>"#,
            r#"<bpmn:inclusiveGateway id="join2"/>"#,
        ),
    );
    let without_flow = deploy_key(
        &mut h,
        "f.bpmn",
        &fork_join("join2", "b2", "jb2").replace(r#"id="ja""#, r#"id="ja2""#),
    );
    assert_rejected(
        &mut h,
        pi,
        renamed,
        &[("b", "b2")],
        &format!("Expected to migrate process instance '{pi}' but no mapping instruction defined for active gateway with id 'join' that has taken incoming sequence flows. Joining gateways with taken sequence flows must be mapped."),
    );
    assert_rejected(
        &mut h,
        pi,
        inclusive,
        &[("b", "b2"), ("join", "join2")],
        &format!("Expected to migrate process instance '{pi}' but active gateway with id 'join' and type 'PARALLEL_GATEWAY' is mapped to an element with id 'join2' and different type 'INCLUSIVE_GATEWAY'. Elements must be mapped to elements of the same type."),
    );
    assert_rejected(
        &mut h,
        pi,
        without_flow,
        &[("b", "b2"), ("join", "join2")],
        &format!("Expected to migrate process instance '{pi}' but active gateway with id 'join' has a taken incoming sequence flow with id 'ja' that is not an incoming sequence flow of the target gateway with id 'join2'. Taken sequence flows are migrated by id and must exist in the target process."),
    );
    let from = h.log.len();
    migrate(&mut h, pi, renamed, &[("b", "b2"), ("join", "join2")]).expect("migrate");
    let flows: Vec<String> = events_since(
        &h,
        from,
        ValueType::ProcessInstance,
        Intent::ElementMigrated,
    )
    .iter()
    .filter_map(|r| match &r.value {
        RecordValue::ProcessInstance(v) if v.bpmn_element_type == BpmnElementType::SequenceFlow => {
            assert_eq!(v.flow_scope_key, pi);
            Some(v.element_id.to_string())
        }
        _ => None,
    })
    .collect();
    assert_eq!(flows, ["ja"]);
    let b = h.activate("b", 1).remove(0);
    assert_eq!(&*b.job.element_id, "b2");
    h.complete(b.key, "{}").expect("complete b");
    assert!(h
        .element_intents(pi, "join2")
        .contains(&"ELEMENT_COMPLETED"));
    assert!(h.is_completed(pi));
    assert_replay_matches(&h);
}

/// start → `task` (job `work`) → end, with an event sub-process `esp`
/// whose start event `esp_start` has `definition`, and a task `handle`
/// (job `handle`) inside.
fn with_event_subprocess(
    process: &str,
    task: &str,
    esp: &str,
    interrupting: bool,
    definition: &str,
) -> String {
    with_defs(
        bpmn(
            process,
            &format!(
                r#"<bpmn:startEvent id="start"/>{}<bpmn:endEvent id="end"/>{}{}<bpmn:subProcess id="{esp}" triggeredByEvent="true"><bpmn:startEvent id="{esp}_start" isInterrupting="{interrupting}">{definition}</bpmn:startEvent>{}<bpmn:endEvent id="{esp}_end"/>{}{}</bpmn:subProcess>"#,
                service_task(task, "work", ""),
                flow("f1", "start", task),
                flow("f2", task, "end"),
                service_task(&format!("{esp}_handle"), "handle", ""),
                flow(
                    &format!("{esp}_f1"),
                    &format!("{esp}_start"),
                    &format!("{esp}_handle")
                ),
                flow(
                    &format!("{esp}_f2"),
                    &format!("{esp}_handle"),
                    &format!("{esp}_end")
                )
            ),
        ),
        MESSAGES,
    )
}

#[test]
fn event_sub_process_subscriptions_are_closed_and_opened_and_active_ones_move() {
    let mut h = Harness::new();
    deploy_key(
        &mut h,
        "e.bpmn",
        &with_event_subprocess("esp", "task", "pinged", false, &message("paid")),
    );
    let pi = h.create("esp", r#"{"orderId":"o-9"}"#);
    let timed = deploy_key(
        &mut h,
        "e.bpmn",
        &with_event_subprocess("esp", "task", "timed", false, &timer("PT1H")),
    );
    let from = h.log.len();
    migrate(&mut h, pi, timed, &[("task", "task")]).expect("migrate");
    assert_eq!(
        events_since(
            &h,
            from,
            ValueType::ProcessMessageSubscription,
            Intent::Deleting
        )
        .len(),
        1
    );
    let created = events_since(&h, from, ValueType::Timer, Intent::Created);
    assert_eq!(created.len(), 1, "the target's start event is subscribed");
    match &created[0].value {
        RecordValue::Timer(t) => {
            assert_eq!(&*t.target_element_id, "timed_start");
            assert_eq!(t.element_instance_key, pi);
        }
        other => panic!("{other:?}"),
    }
    h.advance(3_600_000);
    let handle = h.activate("handle", 1).remove(0);
    assert_eq!(&*handle.job.element_id, "timed_handle");

    // The running event sub-process moves when it is mapped.
    let again = deploy_key(
        &mut h,
        "e.bpmn",
        &with_event_subprocess("esp", "task2", "timed2", false, &timer("PT1H")),
    );
    assert_rejected(
        &mut h,
        pi,
        again,
        &[("task", "task2")],
        &format!("Expected to migrate process instance '{pi}' but no mapping instruction defined for active element with id 'timed'. Elements cannot be migrated without a mapping."),
    );
    migrate(
        &mut h,
        pi,
        again,
        &[
            ("task", "task2"),
            ("timed", "timed2"),
            ("timed_handle", "timed2_handle"),
            ("timed_start", "timed2_start"),
        ],
    )
    .expect("migrate the event sub-process");
    let handle_job = &h.engine.state().jobs[&handle.key].record;
    assert_eq!(&*handle_job.element_id, "timed2_handle");
    h.complete(handle.key, "{}").expect("complete the handler");
    assert!(h
        .element_intents(pi, "timed2")
        .contains(&"ELEMENT_COMPLETED"));
    let work = h.activate("work", 1).remove(0);
    assert_eq!(&*work.job.element_id, "task2");
    h.complete(work.key, "{}").expect("complete");
    assert!(h.is_completed(pi));
    assert_replay_matches(&h);
}

#[test]
fn an_interrupted_scope_subscribes_to_nothing_new() {
    let mut h = Harness::new();
    deploy_key(
        &mut h,
        "e.bpmn",
        &with_event_subprocess("esp", "task", "stopper", true, &signal("stop")),
    );
    let pi = h.create("esp", "{}");
    h.broadcast("stop", "{}").expect("interrupt");
    assert!(h
        .element_intents(pi, "task")
        .contains(&"ELEMENT_TERMINATED"));
    let target = deploy_key(
        &mut h,
        "e.bpmn",
        &with_event_subprocess("esp", "task", "stopper2", true, &signal("alarm")),
    );
    let from = h.log.len();
    migrate(
        &mut h,
        pi,
        target,
        &[
            ("stopper", "stopper2"),
            ("stopper_handle", "stopper2_handle"),
        ],
    )
    .expect("migrate");
    assert!(
        events_since(&h, from, ValueType::SignalSubscription, Intent::Created).is_empty(),
        "the interrupted process does not wait for another start event"
    );
    let handle = h.activate("handle", 1).remove(0);
    assert_eq!(&*handle.job.element_id, "stopper2_handle");
    h.complete(handle.key, "{}").expect("complete");
    assert!(h.is_completed(pi));
    assert_replay_matches(&h);
}

#[test]
fn a_second_migration_waits_for_the_first_to_reach_the_message_partition() {
    let (mut c, _, pi) = waiting_on_the_message_partition();
    c.deploy(
        "a.bpmn",
        &task_with_boundary("order", "review", "cancel2", &message("cancel")),
    );
    c.deploy(
        "a.bpmn",
        &task_with_boundary("order", "review", "cancel3", &message("cancel")),
    );
    let versions = c.partition(1).engine.state().process_versions["order"].clone();
    let (v2, v3) = (versions[&2], versions[&3]);
    migrate(
        c.partition(1),
        pi,
        v2,
        &[("review", "review"), ("cancel_it", "cancel2")],
    )
    .expect("migrate");
    // Not delivered yet: the message partition has not acknowledged.
    let h = c.partition(1);
    let before = h.log.len();
    let r = migrate(h, pi, v3, &[("review", "review"), ("cancel2", "cancel3")]);
    assert_eq!(
        r.expect_err("rejected").reason,
        format!("Expected to migrate process instance '{pi}' but active element with id 'review' has a pending message subscription migration distribution for event with id 'cancel2'.")
    );
    assert_eq!(h.log.len(), before + 2);
    c.deliver();
    migrate(
        c.partition(1),
        pi,
        v3,
        &[("review", "review"), ("cancel2", "cancel3")],
    )
    .expect("migrate again once acknowledged");
    c.deliver();
    let ms = c
        .partition(2)
        .engine
        .state()
        .message_subscriptions
        .values()
        .next()
        .cloned();
    assert_eq!(&*ms.expect("open").record.element_id, "cancel3");
}

#[test]
fn an_event_waiting_for_its_interrupted_element_rejects_the_migration() {
    let model = |boundary: &str| {
        bpmn(
            "ut",
            &format!(
                r#"<bpmn:startEvent id="s"/><bpmn:userTask id="task"><bpmn:extensionElements><zeebe:userTask/><zeebe:taskListeners><zeebe:taskListener eventType="canceling" type="bye"/></zeebe:taskListeners></bpmn:extensionElements></bpmn:userTask><bpmn:boundaryEvent id="{boundary}" attachedToRef="task">{}</bpmn:boundaryEvent><bpmn:endEvent id="e"/><bpmn:endEvent id="late_end"/>{}{}{}"#,
                timer("PT1M"),
                flow("f1", "s", "task"),
                flow("f2", "task", "e"),
                flow("f3", boundary, "late_end")
            ),
        )
    };
    let mut h = Harness::new();
    deploy_key(&mut h, "ut.bpmn", &model("late"));
    let pi = h.create("ut", "{}");
    let target = deploy_key(&mut h, "ut.bpmn", &model("late2"));
    h.advance(60_000);
    assert!(
        h.element_intents(pi, "late").is_empty(),
        "the boundary event waits for the canceling listener"
    );
    assert_rejected(
        &mut h,
        pi,
        target,
        &[("task", "task"), ("late", "late2")],
        &format!("Expected to migrate process instance '{pi}' but a concurrent command was executed on the process instance. Please retry the migration."),
    );
    let listener = h.activate("bye", 1).remove(0);
    h.complete(listener.key, "{}")
        .expect("complete the listener");
    assert!(h.element_intents(pi, "late").contains(&"ELEMENT_COMPLETED"));
    assert!(h.is_completed(pi));
}

#[test]
fn an_exclusive_gateway_stuck_on_an_incident_is_resolved_against_the_target() {
    let model = |default: bool| {
        bpmn(
            "route",
            &format!(
                r#"<bpmn:startEvent id="start"/><bpmn:exclusiveGateway id="gw"{}/><bpmn:endEvent id="big"/><bpmn:endEvent id="other"/>{}{}{}"#,
                if default { r#" default="fOther""# } else { "" },
                flow("f1", "start", "gw"),
                cond_flow("fBig", "gw", "big", "=amount &gt; 100"),
                if default {
                    flow("fOther", "gw", "other")
                } else {
                    cond_flow("fOther", "gw", "other", "=amount &lt; 0")
                }
            ),
        )
    };
    let mut h = Harness::new();
    deploy_key(&mut h, "route.bpmn", &model(false));
    let pi = h.create("route", r#"{"amount":5}"#);
    let (incident_key, _) = h.incidents().remove(0);
    let fixed = deploy_key(&mut h, "route.bpmn", &model(true));
    migrate(&mut h, pi, fixed, &[("gw", "gw")]).expect("migrate");
    assert_eq!(
        h.engine.state().incidents[&incident_key].process_definition_key,
        fixed
    );
    h.resolve(incident_key).expect("resolve");
    assert!(h
        .element_intents(pi, "other")
        .contains(&"ELEMENT_COMPLETED"));
    assert!(h.is_completed(pi));
    assert_replay_matches(&h);
}

/// Instances with a timer and a message boundary event, migrated back and
/// forth between two versions (one keeping the timer, one replacing it),
/// with timers firing and messages correlating in between.
fn event_migration_workload(h: &mut Harness, v1: i64, v2: i64, rounds: usize) {
    for i in 0..rounds {
        let pi = h.create("order", &format!(r#"{{"orderId":"w-{i}"}}"#));
        // Created on version 2; to version 1 keeping the timer (even) or
        // replacing it (odd), and every fourth back to version 2.
        let keep: &[(&str, &str)] = &[
            ("review", "review"),
            ("cancel_it", "cancel_it"),
            ("late_v2", "late"),
        ];
        let replace: &[(&str, &str)] = &[("review", "review"), ("cancel_it", "cancel_it")];
        migrate(h, pi, v1, if i % 2 == 0 { keep } else { replace }).expect("migrate");
        if i % 4 == 0 {
            let back: &[(&str, &str)] = &[
                ("review", "review"),
                ("cancel_it", "cancel_it"),
                ("late", "late_v2"),
            ];
            migrate(h, pi, v2, back).expect("migrate back");
        }
        if i % 3 == 0 {
            h.publish("cancel", &format!("w-{i}"), 0, "", "{}")
                .expect("publish");
        }
        h.advance(1_800_000);
    }
}

#[test]
fn event_migrations_replay_and_restore_identically() {
    let both = |late: &str| {
        with_defs(
            bpmn(
                "order",
                &format!(
                    r#"<bpmn:startEvent id="start"/>{}<bpmn:boundaryEvent id="{late}" attachedToRef="review">{}</bpmn:boundaryEvent><bpmn:boundaryEvent id="cancel_it" attachedToRef="review">{}</bpmn:boundaryEvent><bpmn:endEvent id="end"/><bpmn:endEvent id="late_end"/><bpmn:endEvent id="cancel_end"/>{}{}{}{}"#,
                    service_task("review", "work", ""),
                    timer("PT1H"),
                    message("cancel"),
                    flow("f1", "start", "review"),
                    flow("f2", "review", "end"),
                    flow("f3", late, "late_end"),
                    flow("f4", "cancel_it", "cancel_end")
                ),
            ),
            MESSAGES,
        )
    };
    let mut full = Harness::new();
    let v1 = deploy_key(&mut full, "o.bpmn", &both("late"));
    let v2 = deploy_key(&mut full, "o.bpmn", &both("late_v2"));
    event_migration_workload(&mut full, v1, v2, 8);
    let half_log = full.log.len();
    let half_snapshot = full.engine.snapshot();
    event_migration_workload(&mut full, v1, v2, 8);
    assert!(full.count(ValueType::Timer, Intent::Canceled) > 0);
    assert!(full.count(ValueType::ProcessMessageSubscription, Intent::Migrated) > 0);
    assert!(full.log.iter().any(|r| r.intent == Intent::Triggered));

    let mut second = Harness::with_engine(Engine::restore(&half_snapshot).expect("restore"));
    second.log = full.log[..half_log].to_vec();
    for cmd in full.log[half_log..]
        .iter()
        .filter(|r| r.record_type == RecordType::Command && r.source_record_position == NO_KEY)
    {
        second.submit_as_is(cmd.clone());
    }
    let encoded = |records: &[Record]| {
        let mut out = Vec::new();
        for r in records {
            r.encode(&mut out);
        }
        out
    };
    assert!(
        encoded(&full.log[half_log..]) == encoded(&second.log[half_log..]),
        "byte-identical records after the snapshot"
    );
    assert!(full.engine.snapshot() == second.engine.snapshot());
    assert_replay_matches(&full);
}
