//! Ad-hoc sub-processes: activeElementsCollection, the completion condition
//! with and without cancelRemainingInstances, activation commands with their
//! rejections, incidents, deployment rejections, and replay.

mod common;
use ::engine::*;
use common::*;

/// start → ad-hoc { A (job a), B (job b), C → D (job d) } → end.
fn ad_hoc_process(attributes: &str, extension: &str, condition: &str) -> String {
    let condition = if condition.is_empty() {
        String::new()
    } else {
        format!(
            r#"<bpmn:completionCondition xsi:type="bpmn:tFormalExpression">{condition}</bpmn:completionCondition>"#
        )
    };
    bpmn(
        "adhoc",
        &format!(
            r#"<bpmn:startEvent id="start"/><bpmn:adHocSubProcess id="ah" {attributes}><bpmn:extensionElements>{extension}</bpmn:extensionElements>{}{}<bpmn:task id="C"/>{}{}{condition}</bpmn:adHocSubProcess><bpmn:endEvent id="end"/>{}{}"#,
            service_task("A", "a", ""),
            service_task("B", "b", ""),
            service_task("D", "d", ""),
            flow("cd", "C", "D"),
            flow("f1", "start", "ah"),
            flow("f2", "ah", "end"),
        ),
    )
    .replace(
        "<bpmn:definitions ",
        r#"<bpmn:definitions xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" "#,
    )
}

const ACTIVE: &str = r#"<zeebe:adHoc activeElementsCollection="=active"/>"#;

fn ad_hoc_key(h: &Harness, pi: i64) -> i64 {
    h.log
        .iter()
        .find(|r| {
            r.intent == Intent::ElementActivated
                && matches!(&r.value, RecordValue::ProcessInstance(p)
                    if p.process_instance_key == pi && p.bpmn_element_type == BpmnElementType::AdHocSubProcess)
        })
        .expect("the ad-hoc sub-process is active")
        .key
}

fn activate(
    h: &mut Harness,
    key: i64,
    elements: &[(&str, &str)],
) -> Result<ResponseValue, Rejection> {
    h.request(Record::command(
        NO_KEY,
        Intent::Activate,
        RecordValue::AdHocSubProcessInstruction(AdHocSubProcessInstructionRecord {
            ad_hoc_sub_process_instance_key: key,
            activate_elements: elements
                .iter()
                .map(|(id, vars)| AdHocActivateElement {
                    element_id: id.to_string(),
                    variables: vars.to_string(),
                })
                .collect(),
        }),
        None,
    ))
}

fn job_keys(h: &mut Harness, job_type: &str) -> Vec<i64> {
    h.activate(job_type, 10).iter().map(|j| j.key).collect()
}

#[test]
fn active_elements_run_and_the_sub_process_completes_when_none_is_left() {
    let mut h = Harness::new();
    h.deploy("adhoc.bpmn", &ad_hoc_process("", ACTIVE, ""))
        .unwrap();
    let pi = h.create("adhoc", r#"{"active": ["A", "B"]}"#);
    assert_eq!(
        h.element_intents(pi, "ah"),
        ["ELEMENT_ACTIVATING", "ELEMENT_ACTIVATED"]
    );
    let a = job_keys(&mut h, "a");
    let b = job_keys(&mut h, "b");
    assert_eq!((a.len(), b.len()), (1, 1));
    assert!(h.element_intents(pi, "C").is_empty(), "not named");
    h.complete(a[0], "{}").unwrap();
    assert!(!h.is_completed(pi), "B is still active");
    h.complete(b[0], r#"{"result": 1}"#).unwrap();
    assert!(h.is_completed(pi));
    assert_eq!(
        h.element_intents(pi, "ah")[2..],
        ["ELEMENT_COMPLETING", "ELEMENT_COMPLETED"]
    );
}

#[test]
fn without_active_elements_it_waits_for_an_activation_with_variables() {
    let mut h = Harness::new();
    h.deploy("adhoc.bpmn", &ad_hoc_process("", "", "")).unwrap();
    let pi = h.create("adhoc", "{}");
    let key = ad_hoc_key(&h, pi);
    assert!(
        !h.is_completed(pi),
        "nothing active, but nothing ran either"
    );
    let Ok(ResponseValue::AdHocActivated { key: answered }) =
        activate(&mut h, key, &[("C", r#"{"x": 7}"#), ("A", "")])
    else {
        panic!("activation failed");
    };
    assert_eq!(answered, key);
    assert_eq!(
        h.count(ValueType::AdHocSubProcessInstruction, Intent::Activated),
        1
    );
    // C passes through to D, which is in the path and sees the variables
    let jobs = h.activate_fetch("d", 10, vec![]);
    assert_eq!(jobs.len(), 1);
    assert!(
        jobs[0].job.variables.contains(r#""x":7"#),
        "{}",
        jobs[0].job.variables
    );
    h.complete(jobs[0].key, "{}").unwrap();
    assert!(!h.is_completed(pi), "A still runs");
    let a = job_keys(&mut h, "a");
    h.complete(a[0], "{}").unwrap();
    assert!(h.is_completed(pi));
    // the same element twice over time is fine; once the sub-process ended, not
    let err = activate(&mut h, key, &[("A", "")]).unwrap_err();
    assert_eq!(err.rejection_type, RejectionType::NotFound);
}

#[test]
fn a_fulfilled_condition_cancels_the_remaining_elements() {
    let mut h = Harness::new();
    h.deploy("adhoc.bpmn", &ad_hoc_process("", ACTIVE, "=done = true"))
        .unwrap();
    let pi = h.create("adhoc", r#"{"active": ["A", "B"], "done": false}"#);
    let a = job_keys(&mut h, "a");
    h.complete(a[0], r#"{"done": true}"#).unwrap();
    assert!(h.is_completed(pi));
    assert_eq!(
        h.element_intents(pi, "B"),
        [
            "ELEMENT_ACTIVATING",
            "ELEMENT_ACTIVATED",
            "ELEMENT_TERMINATING",
            "ELEMENT_TERMINATED"
        ]
    );
}

#[test]
fn without_cancel_remaining_instances_a_fulfilled_condition_waits_for_the_others() {
    let mut h = Harness::new();
    h.deploy(
        "adhoc.bpmn",
        &ad_hoc_process(r#"cancelRemainingInstances="false""#, ACTIVE, "=done"),
    )
    .unwrap();
    let pi = h.create("adhoc", r#"{"active": ["A", "B"], "done": false}"#);
    let a = job_keys(&mut h, "a");
    let b = job_keys(&mut h, "b");
    h.complete(a[0], r#"{"done": true}"#).unwrap();
    assert!(!h.is_completed(pi), "B still runs");
    h.complete(b[0], "{}").unwrap();
    assert!(h.is_completed(pi));
}

#[test]
fn an_unfulfilled_condition_keeps_it_active_for_more_activations() {
    let mut h = Harness::new();
    h.deploy("adhoc.bpmn", &ad_hoc_process("", ACTIVE, "=done"))
        .unwrap();
    let pi = h.create("adhoc", r#"{"active": ["A"], "done": false}"#);
    let key = ad_hoc_key(&h, pi);
    let a = job_keys(&mut h, "a");
    h.complete(a[0], "{}").unwrap();
    assert!(!h.is_completed(pi), "done is false: it waits");
    activate(&mut h, key, &[("A", "")]).unwrap();
    let a = job_keys(&mut h, "a");
    h.complete(a[0], r#"{"done": true}"#).unwrap();
    assert!(h.is_completed(pi));
}

/// Target key, elements, expected rejection type and text.
type Case<'a> = (i64, &'a [(&'a str, &'a str)], RejectionType, &'a str);

#[test]
fn activation_rejections_name_the_problem() {
    let mut h = Harness::new();
    h.deploy("adhoc.bpmn", &ad_hoc_process("", "", "")).unwrap();
    let pi = h.create("adhoc", "{}");
    let key = ad_hoc_key(&h, pi);
    let cases: [Case; 6] = [
        (
            12345,
            &[("A", "")],
            RejectionType::NotFound,
            "no ad-hoc sub-process instance found with key '12345'",
        ),
        (
            pi,
            &[("A", "")],
            RejectionType::NotFound,
            "no ad-hoc sub-process instance found",
        ),
        (
            key,
            &[("A", ""), ("A", "")],
            RejectionType::InvalidArgument,
            "duplicate activities were given",
        ),
        (
            key,
            &[("D", ""), ("end", ""), ("nope", "")],
            RejectionType::NotFound,
            "the given elements [D, end, nope] do not exist",
        ),
        (
            key,
            &[("A", "[1]")],
            RejectionType::InvalidArgument,
            "variables of element 'A'",
        ),
        (key, &[("B", "{")], RejectionType::InvalidArgument, "'B'"),
    ];
    for (target, elements, rejection_type, text) in cases {
        let err = activate(&mut h, target, elements).unwrap_err();
        assert_eq!(err.rejection_type, rejection_type, "{}", err.reason);
        assert!(err.reason.contains(text), "{}", err.reason);
    }
    assert!(h.engine.state().jobs.is_empty(), "nothing was activated");
    h.cancel(pi).unwrap();
    let err = activate(&mut h, key, &[("A", "")]).unwrap_err();
    assert_eq!(err.rejection_type, RejectionType::NotFound);
}

#[test]
fn unknown_active_elements_raise_an_incident_and_resolving_it_activates_them() {
    let mut h = Harness::new();
    h.deploy("adhoc.bpmn", &ad_hoc_process("", ACTIVE, ""))
        .unwrap();
    let pi = h.create("adhoc", r#"{"active": ["A", "X"]}"#);
    let key = ad_hoc_key_activating(&h, pi);
    let [(incident, record)] = h.incidents().try_into().expect("one incident");
    assert_eq!(record.error_type, ErrorType::ExtractValueError);
    assert_eq!(
        record.error_message,
        format!("Expected to activate activities for ad-hoc sub-process with key '{key}', but the given elements [X] do not exist.")
    );
    assert_eq!(&*record.element_id, "ah");
    h.set_variables(key, r#"{"active": ["B"]}"#, false).unwrap();
    h.resolve(incident).unwrap();
    let b = job_keys(&mut h, "b");
    assert_eq!(b.len(), 1);
    assert!(job_keys(&mut h, "a").is_empty());
    h.complete(b[0], "{}").unwrap();
    assert!(h.is_completed(pi));
    // not a list
    let other = h.create("adhoc", r#"{"active": "A"}"#);
    let messages: Vec<String> = h
        .incidents()
        .into_iter()
        .filter(|(_, i)| i.process_instance_key == other)
        .map(|(_, i)| i.error_message)
        .collect();
    assert!(
        messages[0].starts_with("Failed to activate ad-hoc elements.")
            && messages[0].contains("'ARRAY'"),
        "{messages:?}"
    );
}

fn ad_hoc_key_activating(h: &Harness, pi: i64) -> i64 {
    h.log
        .iter()
        .find(|r| {
            r.intent == Intent::ElementActivating
                && matches!(&r.value, RecordValue::ProcessInstance(p)
                    if p.process_instance_key == pi && &*p.element_id == "ah")
        })
        .expect("the ad-hoc sub-process is activating")
        .key
}

#[test]
fn deployment_rejections_name_the_ad_hoc_sub_process() {
    let mut h = Harness::new();
    let empty = bpmn(
        "p",
        &format!(
            r#"<bpmn:startEvent id="s"/><bpmn:adHocSubProcess id="ah"/>{}"#,
            flow("f", "s", "ah")
        ),
    );
    let with_events = bpmn(
        "p",
        &format!(
            r#"<bpmn:startEvent id="s"/><bpmn:adHocSubProcess id="ah"><bpmn:startEvent id="in"/><bpmn:task id="t"/><bpmn:endEvent id="out"/>{}</bpmn:adHocSubProcess>{}"#,
            flow("g", "in", "t"),
            flow("f", "s", "ah")
        ),
    );
    let bad_feel = ad_hoc_process("", r#"<zeebe:adHoc activeElementsCollection="=[1,"/>"#, "");
    let job_worker = ad_hoc_process("", r#"<zeebe:taskDefinition type="agent"/>"#, "");
    for (xml, expected) in [
        (empty, vec!["Must have at least one activity."]),
        (
            with_events,
            vec![
                "Must not contain a start event.",
                "Must not contain an end event.",
            ],
        ),
        (bad_feel, vec!["zeebe:adHoc activeElementsCollection"]),
        (
            job_worker,
            vec!["zeebe:taskDefinition on an ad-hoc sub-process"],
        ),
    ] {
        let err = h.deploy("p.bpmn", &xml).unwrap_err();
        for text in expected {
            assert!(
                err.reason.contains("'ah'") && err.reason.contains(text),
                "{}",
                err.reason
            );
        }
    }
}

#[test]
fn replaying_the_log_gives_the_same_state() {
    let mut h = Harness::new();
    h.deploy("adhoc.bpmn", &ad_hoc_process("", ACTIVE, "=done"))
        .unwrap();
    let pi = h.create("adhoc", r#"{"active": ["A", "C"], "done": false}"#);
    let key = ad_hoc_key(&h, pi);
    activate(&mut h, key, &[("B", r#"{"v": 1}"#)]).unwrap();
    let a = job_keys(&mut h, "a");
    h.complete(a[0], "{}").unwrap();
    let mut follower = Engine::new(1, 1);
    for r in &h.log {
        follower.replay(r);
    }
    assert_eq!(follower.snapshot(), h.engine.snapshot());
    let restored = Engine::restore(&h.engine.snapshot()).expect("restores");
    assert_eq!(restored.snapshot(), h.engine.snapshot());
}
