//! Timer scenarios: intermediate catch, boundary (interrupting and not, with
//! cycles), start events, event-based gateway, bounded batches of due timers.

mod common;
use ::engine::*;
use common::*;

fn timer_catch(id: &str, kind: &str, value: &str) -> String {
    format!(
        r#"<bpmn:intermediateCatchEvent id="{id}"><bpmn:timerEventDefinition><bpmn:{kind}>{value}</bpmn:{kind}></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>"#
    )
}

fn boundary_timer(id: &str, on: &str, kind: &str, value: &str, cancel: bool) -> String {
    format!(
        r#"<bpmn:boundaryEvent id="{id}" attachedToRef="{on}" cancelActivity="{cancel}"><bpmn:timerEventDefinition><bpmn:{kind}>{value}</bpmn:{kind}></bpmn:timerEventDefinition></bpmn:boundaryEvent>"#
    )
}

#[test]
fn intermediate_timer_waits_for_its_duration_static_or_feel() {
    let mut h = Harness::new();
    let xml = bpmn(
        "wait",
        &format!(
            r#"<bpmn:startEvent id="s"/>{}{}<bpmn:endEvent id="e"/>{}{}{}"#,
            timer_catch("t1", "timeDuration", "PT10S"),
            timer_catch("t2", "timeDuration", "=wait"),
            flow("f1", "s", "t1"),
            flow("f2", "t1", "t2"),
            flow("f3", "t2", "e"),
        ),
    );
    h.deploy("wait.bpmn", &xml).unwrap();
    let pi = h.create("wait", r#"{"wait": "PT1M"}"#);
    assert_eq!(h.count(ValueType::Timer, Intent::Created), 1);
    h.advance(9_999);
    assert_eq!(h.count(ValueType::Timer, Intent::Triggered), 0, "not early");
    h.advance(1);
    assert_eq!(h.count(ValueType::Timer, Intent::Triggered), 1);
    assert_eq!(
        h.element_intents(pi, "t1"),
        [
            "ELEMENT_ACTIVATING",
            "ELEMENT_ACTIVATED",
            "ELEMENT_COMPLETING",
            "ELEMENT_COMPLETED"
        ]
    );
    h.advance(59_000);
    assert!(!h.is_completed(pi));
    h.advance(1_000);
    assert!(h.is_completed(pi));
    assert!(h.engine.state().timers.is_empty());
}

#[test]
fn timer_date_and_bad_feel_timer_raise_an_incident_naming_the_event() {
    let mut h = Harness::new();
    let xml = bpmn(
        "date",
        &format!(
            r#"<bpmn:startEvent id="s"/>{}<bpmn:endEvent id="e"/>{}{}"#,
            timer_catch("t", "timeDate", "=at"),
            flow("f1", "s", "t"),
            flow("f2", "t", "e"),
        ),
    );
    h.deploy("date.bpmn", &xml).unwrap();
    let pi = h.create("date", r#"{"at": "1970-01-01T00:16:50Z"}"#); // now + 10 s
    h.advance(10_000);
    assert!(h.is_completed(pi));
    h.create("date", r#"{"at": "next tuesday"}"#);
    let incidents = h.incidents();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].1.error_type, ErrorType::ExtractValueError);
    assert!(
        incidents[0].1.error_message.contains("event 't'"),
        "{}",
        incidents[0].1.error_message
    );
}

#[test]
fn bad_static_timers_are_rejected_at_deployment() {
    let mut h = Harness::new();
    let xml = bpmn(
        "bad",
        &format!(
            r#"<bpmn:startEvent id="s"/>{}{}"#,
            timer_catch("late", "timeDuration", "10 seconds"),
            flow("f1", "s", "late"),
        ),
    );
    let err = h.deploy("bad.bpmn", &xml).unwrap_err();
    assert!(err.reason.contains("'late'"), "{}", err.reason);
    assert!(err.reason.contains("ISO 8601"), "{}", err.reason);
}

fn task_with_boundary(process_id: &str, boundary: &str) -> String {
    bpmn(
        process_id,
        &format!(
            r#"<bpmn:startEvent id="s"/>{}{boundary}<bpmn:endEvent id="done"/><bpmn:endEvent id="escalated"/>{}{}{}"#,
            service_task("task", "work", ""),
            flow("f1", "s", "task"),
            flow("f2", "task", "done"),
            flow("f3", "b", "escalated"),
        ),
    )
}

#[test]
fn interrupting_boundary_timer_terminates_the_task_and_cancels_its_job() {
    let mut h = Harness::new();
    let xml = task_with_boundary(
        "bt",
        &boundary_timer("b", "task", "timeDuration", "PT1M", true),
    );
    h.deploy("bt.bpmn", &xml).unwrap();
    let pi = h.create("bt", "");
    let jobs = h.activate("work", 1);
    h.advance(60_000);
    assert!(h.is_completed(pi));
    assert_eq!(
        h.element_intents(pi, "task"),
        [
            "ELEMENT_ACTIVATING",
            "ELEMENT_ACTIVATED",
            "ELEMENT_TERMINATING",
            "ELEMENT_TERMINATED"
        ]
    );
    assert_eq!(h.element_intents(pi, "escalated").len(), 4);
    assert!(h.element_intents(pi, "done").is_empty());
    assert_eq!(h.count(ValueType::Job, Intent::Canceled), 1);
    assert!(h.complete(jobs[0].key, "{}").is_err(), "the job is gone");
    assert!(h.engine.state().event_triggers.is_empty());
}

#[test]
fn completing_the_task_cancels_the_boundary_timer() {
    let mut h = Harness::new();
    let xml = task_with_boundary(
        "bt",
        &boundary_timer("b", "task", "timeDuration", "PT1M", true),
    );
    h.deploy("bt.bpmn", &xml).unwrap();
    let pi = h.create("bt", "");
    let jobs = h.activate("work", 1);
    h.complete(jobs[0].key, "{}").unwrap();
    assert!(h.is_completed(pi));
    assert_eq!(h.count(ValueType::Timer, Intent::Canceled), 1);
    h.advance(120_000);
    assert_eq!(h.count(ValueType::Timer, Intent::Triggered), 0);
}

#[test]
fn non_interrupting_cycle_fires_repeatedly_while_the_task_waits() {
    let mut h = Harness::new();
    let xml = task_with_boundary(
        "nb",
        &boundary_timer("b", "task", "timeCycle", "R3/PT1M", false),
    );
    h.deploy("nb.bpmn", &xml).unwrap();
    let pi = h.create("nb", "");
    for minute in 1..=4 {
        h.advance(60_000);
        let fired = h.element_intents(pi, "b").len() / 4;
        assert_eq!(fired, minute.min(3), "after {minute} minutes");
    }
    assert_eq!(h.element_intents(pi, "escalated").len(), 12);
    assert!(!h.is_completed(pi), "the task still waits");
    let jobs = h.activate("work", 1);
    h.complete(jobs[0].key, "{}").unwrap();
    assert!(h.is_completed(pi));
}

#[test]
fn cron_cycle_boundary_fires_at_the_next_matching_second() {
    let mut h = Harness::new();
    h.now_ms = 1_767_225_600_000; // 2026-01-01T00:00:00Z
    let xml = task_with_boundary(
        "cron",
        &boundary_timer("b", "task", "timeCycle", "0 30 * * * *", false),
    );
    h.deploy("cron.bpmn", &xml).unwrap();
    let pi = h.create("cron", "");
    let due = h.engine.state().timers.values().next().unwrap().due_date_ms;
    assert_eq!(due, h.now_ms + 30 * 60_000);
    h.advance(30 * 60_000);
    h.advance(60 * 60_000);
    assert_eq!(h.element_intents(pi, "escalated").len(), 8, "fired twice");
}

#[test]
fn timer_start_event_creates_instances_and_a_new_version_replaces_it() {
    let mut h = Harness::new();
    let start = |cycle: &str| {
        bpmn(
            "ticker",
            &format!(
                r#"<bpmn:startEvent id="s"><bpmn:timerEventDefinition><bpmn:timeCycle>{cycle}</bpmn:timeCycle></bpmn:timerEventDefinition></bpmn:startEvent><bpmn:endEvent id="e"/>{}"#,
                flow("f", "s", "e")
            ),
        )
    };
    h.deploy("t.bpmn", &start("R2/PT1H")).unwrap();
    h.advance(3_600_000);
    assert_eq!(h.instances_of("ticker").len(), 1);
    h.advance(3_600_000);
    assert_eq!(h.instances_of("ticker").len(), 2);
    h.advance(3_600_000);
    assert_eq!(h.instances_of("ticker").len(), 2, "R2 fires twice");
    h.deploy("t.bpmn", &start("R/PT10M")).unwrap();
    h.advance(600_000);
    assert_eq!(h.instances_of("ticker").len(), 3);
    let err = h
        .request(create_command("ticker", -1, "", false))
        .unwrap_err();
    assert_eq!(err.rejection_type, RejectionType::InvalidState);
    // a third version without a timer start cancels the cycle
    h.deploy("t.bpmn", &one_task("ticker")).unwrap();
    h.advance(3_600_000);
    assert_eq!(h.instances_of("ticker").len(), 3);
    assert!(h.engine.state().timers.is_empty());
}

#[test]
fn due_timers_are_handed_out_in_bounded_batches() {
    let mut h = Harness::new();
    let xml = bpmn(
        "many",
        &format!(
            r#"<bpmn:startEvent id="s"/>{}<bpmn:endEvent id="e"/>{}{}"#,
            timer_catch("t", "timeDuration", "PT1S"),
            flow("f1", "s", "t"),
            flow("f2", "t", "e"),
        ),
    );
    h.deploy("many.bpmn", &xml).unwrap();
    for _ in 0..250 {
        h.create("many", "");
    }
    h.now_ms += 1_000;
    let first = h.engine.due_commands(h.now_ms, 100);
    assert_eq!(first.len(), 100);
    assert!(first.iter().all(|c| c.intent == Intent::Trigger));
    let second = h.engine.due_commands(h.now_ms, 100);
    assert_eq!(second.len(), 100, "handed-out timers are not repeated");
    // another client command is processed between the batches
    h.deploy("one.bpmn", &one_task("one")).unwrap();
    for c in first.into_iter().chain(second) {
        h.submit(c, false);
    }
    let third = h.engine.due_commands(h.now_ms, 100);
    assert_eq!(third.len(), 50);
    for c in third {
        h.submit(c, false);
    }
    assert_eq!(h.count(ValueType::Timer, Intent::Triggered), 250);
    assert!(h.engine.state().instances.is_empty());
}

#[test]
fn feel_durations_dates_and_cycles_are_accepted() {
    let mut h = Harness::new();
    h.now_ms = 1_767_225_600_000; // 2026-01-01T00:00:00Z
    for (kind, expression, due_after_ms) in [
        ("timeDuration", r#"=duration("PT2M")"#, 120_000),
        ("timeDuration", "=wait", 60_000),
        (
            "timeDate",
            r#"=date and time("2026-01-01T00:00:30Z")"#,
            30_000,
        ),
        ("timeCycle", r#"="R2/PT10S""#, 10_000),
    ] {
        let boundary = boundary_timer("b", "task", kind, expression, false);
        h.deploy("feel.bpmn", &task_with_boundary("feel", &boundary))
            .unwrap();
        let pi = h.create("feel", r#"{"wait": "PT1M"}"#);
        let due = h
            .engine
            .state()
            .timers
            .values()
            .find(|t| t.process_instance_key == pi)
            .unwrap_or_else(|| {
                panic!(
                    "{kind} {expression}: no timer, incidents {:?}",
                    h.incidents()
                )
            })
            .due_date_ms;
        assert_eq!(due - h.now_ms, due_after_ms, "{kind} {expression}");
        h.cancel(pi).unwrap();
    }
}

/// A due command handed out but lost (never appended: a leader change, a
/// full disk) is handed out again once `DUE_RESEND_MS` passed, not never;
/// applied twice, the second is rejected and changes nothing.
#[test]
fn lost_due_commands_are_handed_out_again() {
    let mut h = Harness::new();
    h.deploy("one.bpmn", &one_task("one")).unwrap();
    h.create("one", "");
    let job = h.activate("work", 1).pop().expect("a job");
    h.now_ms += 30_000;
    let lost = h.engine.due_commands(h.now_ms, 10);
    assert_eq!(lost.len(), 1);
    assert_eq!((lost[0].key, lost[0].intent), (job.key, Intent::TimeOut));
    h.now_ms += DUE_RESEND_MS - 1;
    assert!(
        h.engine.due_commands(h.now_ms, 10).is_empty(),
        "not repeated while it may still be on its way"
    );
    h.now_ms += 1;
    let again = h.engine.due_commands(h.now_ms, 10);
    assert_eq!(again.len(), 1, "handed out again");
    h.submit(again[0].clone(), false);
    assert_eq!(h.count(ValueType::Job, Intent::TimedOut), 1);
    // The lost one arriving late is rejected; the job is activatable once.
    h.submit(lost[0].clone(), false);
    assert_eq!(h.count(ValueType::Job, Intent::TimedOut), 1);
    assert_eq!(h.activate("work", 5).len(), 1);
    assert!(h.engine.due_commands(h.now_ms, 10).is_empty());
}
