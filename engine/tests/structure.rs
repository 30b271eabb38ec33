//! Errors, escalations, signals, event sub-processes, call activities and
//! multi-instance activities.

mod common;
use ::engine::*;
use common::*;

fn defs(process: &str, extra: &str) -> String {
    process.replace(
        "</bpmn:definitions>",
        &format!("{extra}</bpmn:definitions>"),
    )
}

const ERRORS: &str =
    r#"<bpmn:error id="err_a" errorCode="A"/><bpmn:error id="err_b" errorCode="B"/>"#;

#[test]
fn thrown_job_error_is_caught_by_code_or_by_a_catch_all_boundary() {
    let mut h = Harness::new();
    let xml = defs(
        &bpmn(
            "errors",
            &format!(
                r#"<bpmn:startEvent id="s"/>{}<bpmn:boundaryEvent id="catch_a" attachedToRef="task"><bpmn:errorEventDefinition errorRef="err_a"/></bpmn:boundaryEvent><bpmn:boundaryEvent id="catch_all" attachedToRef="task"><bpmn:errorEventDefinition/></bpmn:boundaryEvent><bpmn:endEvent id="ok"/><bpmn:endEvent id="a"/><bpmn:endEvent id="other"/>{}{}{}{}"#,
                service_task("task", "work", ""),
                flow("f1", "s", "task"),
                flow("f2", "task", "ok"),
                flow("f3", "catch_a", "a"),
                flow("f4", "catch_all", "other"),
            ),
        ),
        ERRORS,
    );
    h.deploy("e.bpmn", &xml).unwrap();
    for (code, end) in [("A", "a"), ("Z", "other")] {
        let pi = h.create("errors", "");
        let job = h.activate("work", 1).remove(0);
        h.job(Intent::ThrowError, job.key, |j| {
            j.error_code = code.into();
            j.variables = r#"{"reason": "bad"}"#.into();
        })
        .unwrap();
        assert!(h.is_completed(pi), "error {code}");
        assert_eq!(
            h.element_intents(pi, end).len(),
            4,
            "error {code} ends at {end}"
        );
        assert!(h.incidents().is_empty());
        assert!(h.log.iter().any(|r| matches!(&r.value,
            RecordValue::Variable(v) if v.name == "reason" && v.process_instance_key == pi)));
    }
    assert!(h.engine.state().jobs.is_empty());
}

#[test]
fn error_end_event_in_a_sub_process_is_caught_on_the_sub_process_or_raises_an_incident() {
    let mut h = Harness::new();
    let process = |with_catch: bool| {
        let boundary = if with_catch {
            r#"<bpmn:boundaryEvent id="caught" attachedToRef="sub"><bpmn:errorEventDefinition errorRef="err_b"/></bpmn:boundaryEvent><bpmn:endEvent id="handled"/><bpmn:sequenceFlow id="f9" sourceRef="caught" targetRef="handled"/>"#
        } else {
            ""
        };
        defs(
            &bpmn(
                "sub_error",
                &format!(
                    r#"<bpmn:startEvent id="s"/><bpmn:subProcess id="sub"><bpmn:startEvent id="ss"/>{}<bpmn:endEvent id="fail"><bpmn:errorEventDefinition errorRef="err_b"/></bpmn:endEvent>{}{}{}{}</bpmn:subProcess>{boundary}<bpmn:endEvent id="e"/>{}{}"#,
                    service_task("side", "side", ""),
                    flow("g0", "ss", "split"),
                    r#"<bpmn:parallelGateway id="split"/>"#,
                    flow("g1", "split", "side"),
                    flow("g2", "split", "fail"),
                    flow("f1", "s", "sub"),
                    flow("f2", "sub", "e"),
                ),
            ),
            ERRORS,
        )
    };
    h.deploy("se.bpmn", &process(true)).unwrap();
    let pi = h.create("sub_error", "");
    assert!(h.is_completed(pi));
    assert_eq!(
        h.element_intents(pi, "side").last(),
        Some(&"ELEMENT_TERMINATED")
    );
    assert_eq!(h.element_intents(pi, "handled").len(), 4);
    assert_eq!(h.count(ValueType::Job, Intent::Canceled), 1);

    h.deploy("se.bpmn", &process(false)).unwrap();
    let pi = h.create("sub_error", "");
    let incidents = h.incidents();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].1.error_type, ErrorType::UnhandledErrorEvent);
    assert_eq!(&*incidents[0].1.element_id, "fail");
    assert!(!h.is_completed(pi));
    h.cancel(pi).unwrap();
    assert!(h.incidents().is_empty());
}

#[test]
fn escalation_caught_non_interrupting_lets_both_paths_run() {
    let mut h = Harness::new();
    let xml = defs(
        &bpmn(
            "esc",
            &format!(
                r#"<bpmn:startEvent id="s"/><bpmn:subProcess id="sub"><bpmn:startEvent id="ss"/><bpmn:intermediateThrowEvent id="raise"><bpmn:escalationEventDefinition escalationRef="up"/></bpmn:intermediateThrowEvent>{}{}{}</bpmn:subProcess><bpmn:boundaryEvent id="noticed" attachedToRef="sub" cancelActivity="false"><bpmn:escalationEventDefinition escalationRef="up"/></bpmn:boundaryEvent>{}<bpmn:endEvent id="e"/><bpmn:endEvent id="e2"/>{}{}{}{}"#,
                service_task("inner", "inner", ""),
                flow("g1", "ss", "raise"),
                flow("g2", "raise", "inner"),
                service_task("manager", "manager", ""),
                flow("f1", "s", "sub"),
                flow("f2", "sub", "e"),
                flow("f3", "noticed", "manager"),
                flow("f4", "manager", "e2"),
            ),
        ),
        r#"<bpmn:escalation id="up" escalationCode="LATE"/>"#,
    );
    h.deploy("esc.bpmn", &xml).unwrap();
    let pi = h.create("esc", "");
    let inner = h.activate("inner", 1);
    let manager = h.activate("manager", 1);
    assert_eq!((inner.len(), manager.len()), (1, 1), "both paths run");
    h.complete(inner[0].key, "{}").unwrap();
    assert!(!h.is_completed(pi));
    h.complete(manager[0].key, "{}").unwrap();
    assert!(h.is_completed(pi));
}

#[test]
fn signals_reach_catch_events_boundaries_and_start_events_on_every_partition() {
    let mut c = Cluster::new(2);
    let xml = defs(
        &bpmn(
            "sig",
            &format!(
                r#"<bpmn:startEvent id="s"/><bpmn:intermediateCatchEvent id="wait"><bpmn:signalEventDefinition signalRef="go"/></bpmn:intermediateCatchEvent><bpmn:endEvent id="e"/>{}{}"#,
                flow("f1", "s", "wait"),
                flow("f2", "wait", "e"),
            ),
        ),
        r#"<bpmn:signal id="go" name="go-signal"/>"#,
    );
    c.deploy("sig.bpmn", &xml);
    let starter = defs(
        &bpmn(
            "started_by_signal",
            &format!(
                r#"<bpmn:startEvent id="s"><bpmn:signalEventDefinition signalRef="go"/></bpmn:startEvent><bpmn:intermediateThrowEvent id="throw"><bpmn:signalEventDefinition signalRef="done"/></bpmn:intermediateThrowEvent><bpmn:endEvent id="e"/>{}{}"#,
                flow("f1", "s", "throw"),
                flow("f2", "throw", "e"),
            ),
        ),
        r#"<bpmn:signal id="go" name="go-signal"/><bpmn:signal id="done" name="done-signal"/>"#,
    );
    c.deploy("starter.bpmn", &starter);
    let waiter = defs(
        &bpmn(
            "boundary_sig",
            &format!(
                r#"<bpmn:startEvent id="s"/>{}<bpmn:boundaryEvent id="b" attachedToRef="task"><bpmn:signalEventDefinition signalRef="done"/></bpmn:boundaryEvent><bpmn:endEvent id="e"/><bpmn:endEvent id="stopped"/>{}{}{}"#,
                service_task("task", "work", ""),
                flow("f1", "s", "task"),
                flow("f2", "task", "e"),
                flow("f3", "b", "stopped"),
            ),
        ),
        r#"<bpmn:signal id="done" name="done-signal"/>"#,
    );
    c.deploy("waiter.bpmn", &waiter);
    let on1 = c.partition(1).create("sig", "");
    let on2 = c.partition(2).create("sig", "");
    let stopped = c.partition(2).create("boundary_sig", "");
    let Ok(ResponseValue::SignalBroadcasted { .. }) =
        c.partition(2).broadcast("go-signal", r#"{"s": 1}"#)
    else {
        panic!("broadcast failed");
    };
    c.deliver();
    assert!(c.partition(1).is_completed(on1));
    assert!(c.partition(2).is_completed(on2));
    // the signal start event started one instance (on partition 1), whose
    // throw event broadcast "done-signal", which stopped the task on partition 2
    assert_eq!(c.partition(1).instances_of("started_by_signal").len(), 1);
    assert_eq!(c.partition(2).instances_of("started_by_signal").len(), 0);
    assert!(c.partition(2).is_completed(stopped));
    assert_eq!(c.partition(2).element_intents(stopped, "stopped").len(), 4);
}

fn esp_process(start: &str, interrupting: bool) -> String {
    bpmn(
        "esp",
        &format!(
            r#"<bpmn:startEvent id="s"/>{}<bpmn:endEvent id="e"/>{}{}<bpmn:subProcess id="handler" triggeredByEvent="true"><bpmn:startEvent id="hs" isInterrupting="{interrupting}">{start}</bpmn:startEvent>{}<bpmn:endEvent id="he"/>{}{}</bpmn:subProcess>"#,
            service_task("task", "work", ""),
            flow("f1", "s", "task"),
            flow("f2", "task", "e"),
            service_task("handle", "handle", ""),
            flow("h1", "hs", "handle"),
            flow("h2", "handle", "he"),
        ),
    )
}

#[test]
fn interrupting_timer_event_sub_process_replaces_the_running_flow() {
    let mut h = Harness::new();
    let xml = esp_process(
        "<bpmn:timerEventDefinition><bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition>",
        true,
    );
    h.deploy("esp.bpmn", &xml).unwrap();
    let pi = h.create("esp", "");
    h.advance(3_600_000);
    assert_eq!(
        h.element_intents(pi, "task").last(),
        Some(&"ELEMENT_TERMINATED")
    );
    assert!(h.activate("work", 1).is_empty());
    let handle = h.activate("handle", 1);
    assert_eq!(handle.len(), 1);
    assert!(!h.is_completed(pi));
    h.complete(handle[0].key, "{}").unwrap();
    assert!(h.is_completed(pi));
    assert!(h.element_intents(pi, "e").is_empty());
}

#[test]
fn non_interrupting_message_event_sub_process_runs_beside_the_flow() {
    let mut h = Harness::new();
    let xml = esp_process(r#"<bpmn:messageEventDefinition messageRef="m"/>"#, false).replace(
        "</bpmn:definitions>",
        r#"<bpmn:message id="m" name="update"><bpmn:extensionElements><zeebe:subscription correlationKey="=id"/></bpmn:extensionElements></bpmn:message></bpmn:definitions>"#,
    );
    h.deploy("esp.bpmn", &xml).unwrap();
    let pi = h.create("esp", r#"{"id": "x"}"#);
    h.publish("update", "x", 0, "", r#"{"note": "hi"}"#)
        .unwrap();
    h.publish("update", "x", 0, "", r#"{"note": "again"}"#)
        .unwrap();
    let handles = h.activate("handle", 5);
    assert_eq!(handles.len(), 2, "one handler per message");
    let work = h.activate("work", 1);
    assert_eq!(work.len(), 1, "the task still runs");
    h.complete(work[0].key, "{}").unwrap();
    assert!(!h.is_completed(pi), "handlers still active");
    for job in handles {
        h.complete(job.key, "{}").unwrap();
    }
    assert!(h.is_completed(pi));
}

#[test]
fn error_event_sub_process_catches_a_job_error() {
    let mut h = Harness::new();
    let xml = defs(
        &esp_process(r#"<bpmn:errorEventDefinition errorRef="err_a"/>"#, true),
        ERRORS,
    );
    h.deploy("esp.bpmn", &xml).unwrap();
    let pi = h.create("esp", "");
    let job = h.activate("work", 1).remove(0);
    h.job(Intent::ThrowError, job.key, |j| j.error_code = "A".into())
        .unwrap();
    let handle = h.activate("handle", 1);
    assert_eq!(handle.len(), 1);
    h.complete(handle[0].key, "{}").unwrap();
    assert!(h.is_completed(pi));
}

fn call_processes() -> (String, String) {
    let parent = bpmn(
        "parent",
        &format!(
            r#"<bpmn:startEvent id="s"/><bpmn:callActivity id="call"><bpmn:extensionElements><zeebe:calledElement processId="=childId"/></bpmn:extensionElements></bpmn:callActivity><bpmn:boundaryEvent id="failed" attachedToRef="call"><bpmn:errorEventDefinition errorRef="err_a"/></bpmn:boundaryEvent><bpmn:endEvent id="e"/><bpmn:endEvent id="fe"/>{}{}{}"#,
            flow("f1", "s", "call"),
            flow("f2", "call", "e"),
            flow("f3", "failed", "fe"),
        ),
    );
    let child = bpmn(
        "child",
        &format!(
            r#"<bpmn:startEvent id="cs"/>{}<bpmn:endEvent id="ce"/>{}{}"#,
            service_task("child_task", "child-work", ""),
            flow("c1", "cs", "child_task"),
            flow("c2", "child_task", "ce"),
        ),
    );
    (defs(&parent, ERRORS), child)
}

#[test]
fn call_activity_runs_the_child_and_propagates_variables() {
    let mut h = Harness::new();
    let (parent, child) = call_processes();
    h.deploy("child.bpmn", &child).unwrap();
    h.deploy("parent.bpmn", &parent).unwrap();
    let pi = h.create("parent", r#"{"childId": "child", "input": 1}"#);
    let job = h.activate("child-work", 1).remove(0);
    let child_pi = job.job.process_instance_key;
    assert_ne!(child_pi, pi);
    assert_eq!(job.job.variables, r#"{"childId":"child","input":1}"#);
    let record = h
        .log
        .iter()
        .find_map(|r| match &r.value {
            RecordValue::ProcessInstance(v) if r.key == child_pi => Some(v.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(record.parent_process_instance_key, pi);
    assert_eq!(h.engine.state().root_process_instance(child_pi), pi);
    h.complete(job.key, r#"{"result": "done"}"#).unwrap();
    assert!(h.is_completed(child_pi));
    assert!(h.is_completed(pi));
    assert!(h.log.iter().any(|r| matches!(&r.value,
        RecordValue::Variable(v) if v.name == "result" && v.scope_key == pi)));
}

#[test]
fn cancelling_the_parent_terminates_the_child_and_child_incidents_are_visible() {
    let mut h = Harness::new();
    let (parent, child) = call_processes();
    h.deploy("child.bpmn", &child).unwrap();
    h.deploy("parent.bpmn", &parent).unwrap();
    let pi = h.create("parent", r#"{"childId": "child"}"#);
    let job = h.activate("child-work", 1).remove(0);
    h.job(Intent::Fail, job.key, |j| j.retries = 0).unwrap();
    let incidents = h.incidents();
    assert_eq!(incidents.len(), 1);
    assert_eq!(
        h.engine
            .state()
            .root_process_instance(incidents[0].1.process_instance_key),
        pi,
        "the child's incident belongs to the parent's tree"
    );
    let child_pi = job.job.process_instance_key;
    assert_eq!(
        h.cancel(child_pi).unwrap_err().rejection_type,
        RejectionType::InvalidState
    );
    h.cancel(pi).unwrap();
    assert!(h.is_terminated(child_pi));
    assert!(h.is_terminated(pi));
    assert!(h.engine.state().instances.is_empty());
    assert!(h.incidents().is_empty());
}

#[test]
fn error_in_the_child_is_caught_on_the_call_activity_and_unknown_process_is_an_incident() {
    let mut h = Harness::new();
    let (parent, child) = call_processes();
    h.deploy("child.bpmn", &child).unwrap();
    h.deploy("parent.bpmn", &parent).unwrap();
    let pi = h.create("parent", r#"{"childId": "child"}"#);
    let job = h.activate("child-work", 1).remove(0);
    h.job(Intent::ThrowError, job.key, |j| j.error_code = "A".into())
        .unwrap();
    assert!(h.is_terminated(job.job.process_instance_key));
    assert!(h.is_completed(pi));
    assert_eq!(h.element_intents(pi, "fe").len(), 4);

    let pi = h.create("parent", r#"{"childId": "missing"}"#);
    let incidents = h.incidents();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].1.error_type, ErrorType::CalledElementError);
    h.set_variables(pi, r#"{"childId": "child"}"#, false)
        .unwrap();
    h.resolve(incidents[0].0).unwrap();
    assert_eq!(h.activate("child-work", 1).len(), 1);
}

fn multi_instance(sequential: bool, condition: &str) -> String {
    bpmn(
        "mi",
        &format!(
            r#"<bpmn:startEvent id="s"/><bpmn:serviceTask id="each"><bpmn:extensionElements><zeebe:taskDefinition type="item"/></bpmn:extensionElements><bpmn:multiInstanceLoopCharacteristics isSequential="{sequential}"><bpmn:extensionElements><zeebe:loopCharacteristics inputCollection="=items" inputElement="item" outputCollection="results" outputElement="=item * 10"/></bpmn:extensionElements>{condition}</bpmn:multiInstanceLoopCharacteristics></bpmn:serviceTask><bpmn:endEvent id="e"/>{}{}"#,
            flow("f1", "s", "each"),
            flow("f2", "each", "e"),
        ),
    )
}

#[test]
fn parallel_multi_instance_collects_the_outputs_in_order() {
    let mut h = Harness::new();
    h.deploy("mi.bpmn", &multi_instance(false, "")).unwrap();
    let pi = h.create("mi", r#"{"items": [1, 2, 3]}"#);
    let mut jobs = h.activate("item", 10);
    assert_eq!(jobs.len(), 3, "all at once");
    let vars: Vec<serde_json::Value> = jobs
        .iter()
        .map(|j| serde_json::from_str(&j.job.variables).unwrap())
        .collect();
    assert_eq!(vars[1]["item"], 2);
    assert_eq!(vars[1]["loopCounter"], 2);
    jobs.reverse();
    for job in jobs {
        h.complete(job.key, "{}").unwrap();
    }
    assert!(h.is_completed(pi));
    let results = h
        .log
        .iter()
        .rev()
        .find_map(|r| match &r.value {
            RecordValue::Variable(v) if v.name == "results" && v.scope_key == pi => {
                Some(v.value.clone())
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(results, "[10,20,30]");
    let body_types: Vec<_> = h
        .log
        .iter()
        .filter_map(|r| match &r.value {
            RecordValue::ProcessInstance(v)
                if &*v.element_id == "each" && r.intent == Intent::ElementActivating =>
            {
                Some(v.bpmn_element_type)
            }
            _ => None,
        })
        .collect();
    assert_eq!(body_types[0], BpmnElementType::MultiInstanceBody);
    assert_eq!(body_types.len(), 4);
}

#[test]
fn sequential_multi_instance_runs_one_at_a_time_until_the_completion_condition() {
    let mut h = Harness::new();
    let condition = r#"<bpmn:completionCondition>=item &gt;= 2</bpmn:completionCondition>"#;
    h.deploy("mi.bpmn", &multi_instance(true, condition))
        .unwrap();
    let pi = h.create("mi", r#"{"items": [1, 2, 3]}"#);
    for expected in 1..=2 {
        let jobs = h.activate("item", 10);
        assert_eq!(jobs.len(), 1, "one at a time");
        let vars: serde_json::Value = serde_json::from_str(&jobs[0].job.variables).unwrap();
        assert_eq!(vars["item"], expected);
        h.complete(jobs[0].key, "{}").unwrap();
    }
    assert!(
        h.is_completed(pi),
        "the condition ended it after the second item"
    );
    assert!(h.activate("item", 10).is_empty());
    // an empty collection completes at once; a non-list is an incident
    let empty = h.create("mi", r#"{"items": []}"#);
    assert!(h.is_completed(empty));
    h.create("mi", r#"{"items": 5}"#);
    assert_eq!(h.incidents()[0].1.error_type, ErrorType::ExtractValueError);
}

fn compensation_process(throw: &str) -> String {
    bpmn(
        "comp",
        &format!(
            r#"<bpmn:startEvent id="s"/>{}<bpmn:boundaryEvent id="undo_b" attachedToRef="book"><bpmn:compensateEventDefinition/></bpmn:boundaryEvent><bpmn:serviceTask id="undo" isForCompensation="true"><bpmn:extensionElements><zeebe:taskDefinition type="cancel-booking"/></bpmn:extensionElements></bpmn:serviceTask><bpmn:association id="a1" sourceRef="undo_b" targetRef="undo"/>{}{throw}<bpmn:endEvent id="e"/>{}{}{}{}"#,
            service_task("book", "book", ""),
            service_task("pay", "pay", ""),
            flow("f1", "s", "book"),
            flow("f2", "book", "pay"),
            flow("f3", "pay", "compensate"),
            flow("f4", "compensate", "e"),
        ),
    )
}

#[test]
fn compensation_throw_runs_the_handlers_of_completed_activities_and_waits() {
    let mut h = Harness::new();
    let throw = r#"<bpmn:intermediateThrowEvent id="compensate"><bpmn:compensateEventDefinition/></bpmn:intermediateThrowEvent>"#;
    h.deploy("comp.bpmn", &compensation_process(throw)).unwrap();
    let pi = h.create("comp", "");
    let book = h.activate("book", 1).remove(0);
    h.complete(book.key, "{}").unwrap();
    assert_eq!(h.engine.state().compensations.len(), 1);
    assert!(
        h.activate("cancel-booking", 1).is_empty(),
        "nothing to compensate yet"
    );
    let pay = h.activate("pay", 1).remove(0);
    h.complete(pay.key, "{}").unwrap();
    assert_eq!(
        h.element_intents(pi, "compensate"),
        ["ELEMENT_ACTIVATING", "ELEMENT_ACTIVATED"],
        "waits for the handler"
    );
    let undo = h.activate("cancel-booking", 5);
    assert_eq!(undo.len(), 1, "one handler for one completed booking");
    h.complete(undo[0].key, "{}").unwrap();
    assert!(h.is_completed(pi));
    assert!(h.engine.state().compensations.is_empty());
}

#[test]
fn compensation_subscriptions_end_with_the_instance_and_bad_handlers_are_rejected() {
    let mut h = Harness::new();
    let throw = r#"<bpmn:intermediateThrowEvent id="compensate"/>"#;
    h.deploy("comp.bpmn", &compensation_process(throw)).unwrap();
    let pi = h.create("comp", "");
    let book = h.activate("book", 1).remove(0);
    h.complete(book.key, "{}").unwrap();
    assert_eq!(h.engine.state().compensations.len(), 1);
    let pay = h.activate("pay", 1).remove(0);
    h.complete(pay.key, "{}").unwrap();
    assert!(h.is_completed(pi));
    assert!(
        h.engine.state().compensations.is_empty(),
        "deleted with the instance"
    );
    assert!(h.activate("cancel-booking", 1).is_empty());

    let no_handler = compensation_process(throw).replace(r#"isForCompensation="true""#, "");
    let err = h.deploy("bad.bpmn", &no_handler).unwrap_err();
    assert!(err.reason.contains("'undo'"), "{}", err.reason);
    assert!(err.reason.contains("isForCompensation"), "{}", err.reason);
}

#[test]
fn cancelling_cancels_timers_subscriptions_and_every_inner_instance() {
    let mut h = Harness::new();
    h.deploy("mi.bpmn", &multi_instance(false, "")).unwrap();
    let pi = h.create("mi", r#"{"items": [1, 2, 3]}"#);
    let timer = bpmn(
        "timer_wait",
        &format!(
            r#"<bpmn:startEvent id="s"/><bpmn:intermediateCatchEvent id="t"><bpmn:timerEventDefinition><bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent><bpmn:intermediateCatchEvent id="sig"><bpmn:signalEventDefinition signalRef="x"/></bpmn:intermediateCatchEvent><bpmn:endEvent id="e"/><bpmn:parallelGateway id="fork"/>{}{}{}{}{}"#,
            flow("f1", "s", "fork"),
            flow("f2", "fork", "t"),
            flow("f3", "fork", "sig"),
            flow("f4", "t", "e"),
            flow("f5", "sig", "e"),
        ),
    )
    .replace("</bpmn:definitions>", r#"<bpmn:signal id="x" name="x"/></bpmn:definitions>"#);
    h.deploy("t.bpmn", &timer).unwrap();
    let waiting = h.create("timer_wait", "");
    assert_eq!(h.engine.state().timers.len(), 1);
    assert_eq!(h.engine.state().signal_subscriptions.len(), 1);
    h.cancel(pi).unwrap();
    h.cancel(waiting).unwrap();
    assert_eq!(
        h.log
            .iter()
            .filter(|r| r.intent == Intent::ElementTerminated
                && matches!(&r.value, RecordValue::ProcessInstance(v) if &*v.element_id == "each"))
            .count(),
        4,
        "three inner instances and the body"
    );
    assert_eq!(h.count(ValueType::Job, Intent::Canceled), 3);
    assert_eq!(h.count(ValueType::Timer, Intent::Canceled), 1);
    assert_eq!(h.count(ValueType::SignalSubscription, Intent::Deleted), 1);
    assert!(h.engine.state().instances.is_empty());
    assert!(h.engine.state().timers.is_empty());
    h.advance(3_600_000);
    assert_eq!(h.count(ValueType::Timer, Intent::Triggered), 0);
}

#[test]
fn escalation_and_signal_event_sub_processes() {
    let mut h = Harness::new();
    let xml = defs(
        &esp_process(r#"<bpmn:signalEventDefinition signalRef="stop"/>"#, true),
        r#"<bpmn:signal id="stop" name="stop"/>"#,
    );
    h.deploy("esp.bpmn", &xml).unwrap();
    let pi = h.create("esp", "");
    h.broadcast("stop", "{}").unwrap();
    assert_eq!(
        h.element_intents(pi, "task").last(),
        Some(&"ELEMENT_TERMINATED")
    );
    let handle = h.activate("handle", 1).remove(0);
    h.complete(handle.key, "{}").unwrap();
    assert!(h.is_completed(pi));

    // an escalation thrown by an end event inside a sub-process starts a
    // non-interrupting escalation event sub-process of the process
    let xml = defs(
        &bpmn(
            "esc_esp",
            &format!(
                r#"<bpmn:startEvent id="s"/><bpmn:subProcess id="sub"><bpmn:startEvent id="ss"/><bpmn:endEvent id="raise"><bpmn:escalationEventDefinition escalationRef="up"/></bpmn:endEvent>{}</bpmn:subProcess>{}<bpmn:endEvent id="e"/>{}{}{}<bpmn:subProcess id="handler" triggeredByEvent="true"><bpmn:startEvent id="hs" isInterrupting="false"><bpmn:escalationEventDefinition/></bpmn:startEvent>{}<bpmn:endEvent id="he"/>{}{}</bpmn:subProcess>"#,
                flow("g1", "ss", "raise"),
                service_task("after", "after", ""),
                flow("f1", "s", "sub"),
                flow("f2", "sub", "after"),
                flow("f3", "after", "e"),
                service_task("handle", "handle", ""),
                flow("h1", "hs", "handle"),
                flow("h2", "handle", "he"),
            ),
        ),
        r#"<bpmn:escalation id="up" escalationCode="UP"/>"#,
    );
    h.deploy("esc_esp.bpmn", &xml).unwrap();
    let pi = h.create("esc_esp", "");
    let handle = h.activate("handle", 1);
    let after = h.activate("after", 1);
    assert_eq!(
        (handle.len(), after.len()),
        (1, 1),
        "the sub-process went on"
    );
    h.complete(handle[0].key, "{}").unwrap();
    h.complete(after[0].key, "{}").unwrap();
    assert!(h.is_completed(pi));
}

#[test]
fn call_activity_with_output_mappings_and_without_child_propagation() {
    let mut h = Harness::new();
    let (_, child) = call_processes();
    h.deploy("child.bpmn", &child).unwrap();
    let parent = bpmn(
        "mapped",
        &format!(
            r#"<bpmn:startEvent id="s"/><bpmn:callActivity id="call"><bpmn:extensionElements><zeebe:calledElement processId="child" propagateAllChildVariables="false" propagateAllParentVariables="false"/><zeebe:ioMapping><zeebe:input source="=secret + 1" target="given"/><zeebe:output source="=result" target="outcome"/></zeebe:ioMapping></bpmn:extensionElements></bpmn:callActivity><bpmn:endEvent id="e"/>{}{}"#,
            flow("f1", "s", "call"),
            flow("f2", "call", "e"),
        ),
    );
    h.deploy("mapped.bpmn", &parent).unwrap();
    let pi = h.create("mapped", r#"{"secret": 41}"#);
    let job = h.activate("child-work", 1).remove(0);
    assert_eq!(
        job.job.variables, r#"{"given":42}"#,
        "only the input mappings are copied"
    );
    h.complete(job.key, r#"{"result": "r", "noise": 1}"#)
        .unwrap();
    assert!(h.is_completed(pi));
    let set_on_parent: Vec<String> = h
        .log
        .iter()
        .filter_map(|r| match &r.value {
            RecordValue::Variable(v) if v.scope_key == pi => Some(v.name.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(set_on_parent, ["secret", "outcome"]);
}

fn multi_instance_sub_process(sequential: bool, condition: &str) -> String {
    bpmn(
        "misub",
        &format!(
            r#"<bpmn:startEvent id="s"/><bpmn:subProcess id="each"><bpmn:multiInstanceLoopCharacteristics isSequential="{sequential}"><bpmn:extensionElements><zeebe:loopCharacteristics inputCollection="=items" inputElement="item" outputCollection="results" outputElement="=result"/></bpmn:extensionElements>{condition}</bpmn:multiInstanceLoopCharacteristics><bpmn:startEvent id="inner_s"/>{}{}<bpmn:endEvent id="inner_e"/>{}{}{}</bpmn:subProcess><bpmn:endEvent id="e"/>{}{}"#,
            service_task("first", "first", ""),
            service_task("second", "second", ""),
            flow("i1", "inner_s", "first"),
            flow("i2", "first", "second"),
            flow("i3", "second", "inner_e"),
            flow("f1", "s", "each"),
            flow("f2", "each", "e"),
        ),
    )
}

/// The values variable `name` was given in scope `scope`, in log order.
fn written(h: &Harness, scope: i64, name: &str) -> Vec<String> {
    h.log
        .iter()
        .filter_map(|r| match &r.value {
            RecordValue::Variable(v) if &*v.name == name && v.scope_key == scope => {
                Some(v.value.to_string())
            }
            _ => None,
        })
        .collect()
}

/// Completes every job of `job_type`, setting `result` from the item.
fn complete_with_results(h: &mut Harness, job_type: &str) -> usize {
    let jobs = h.activate(job_type, 10);
    for job in &jobs {
        let vars: serde_json::Value = serde_json::from_str(&job.job.variables).unwrap();
        let item = vars["item"].as_i64().unwrap();
        h.complete(job.key, &format!(r#"{{"result": {}}}"#, item * 100))
            .unwrap();
    }
    jobs.len()
}

#[test]
fn multi_instance_sub_process_runs_each_item_through_its_inner_flow() {
    for sequential in [false, true] {
        let mut h = Harness::new();
        h.deploy("misub.bpmn", &multi_instance_sub_process(sequential, ""))
            .unwrap();
        let pi = h.create("misub", r#"{"items": [1, 2, 3]}"#);
        let mut done = 0;
        for _ in 0..6 {
            done += complete_with_results(&mut h, "first");
            complete_with_results(&mut h, "second");
        }
        assert_eq!(done, 3, "sequential: {sequential}");
        assert!(h.is_completed(pi), "{:?}", h.incidents());
        assert_eq!(
            written(&h, pi, "results").last().map(String::as_str),
            Some("[100,200,300]")
        );
        // The output element stayed in each inner instance.
        assert!(
            written(&h, pi, "result").is_empty(),
            "sequential: {sequential}"
        );
        assert!(written(&h, pi, "item").is_empty());
    }
}

#[test]
fn multi_instance_sub_process_stops_at_its_completion_condition() {
    let mut h = Harness::new();
    let condition = r#"<bpmn:completionCondition>=count(results[item != null]) &gt;= 2</bpmn:completionCondition>"#;
    h.deploy("misub.bpmn", &multi_instance_sub_process(false, condition))
        .unwrap();
    let pi = h.create("misub", r#"{"items": [1, 2, 3]}"#);
    let firsts = h.activate("first", 10);
    assert_eq!(firsts.len(), 3, "parallel: all three started");
    for job in &firsts[..2] {
        h.complete(job.key, r#"{"result": 7}"#).unwrap();
    }
    for job in h.activate("second", 10) {
        h.complete(job.key, "{}").unwrap();
    }
    assert!(h.is_completed(pi), "{:?}", h.incidents());
    assert!(
        h.activate("second", 10).is_empty(),
        "the third was terminated"
    );
}
