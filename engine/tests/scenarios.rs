//! Scenario tests: one per element, job path and incident path.

mod common;
use ::engine::*;
use common::*;

#[test]
fn one_task_runs_to_completion() {
    let mut h = Harness::new();
    h.deploy("one.bpmn", &one_task("one")).unwrap();
    let pi = h.create("one", r#"{"a": 1, "b": {"c": "x"}}"#);
    assert_eq!(key::partition_of(pi), 1);
    let jobs = h.activate("work", 10);
    assert_eq!(jobs.len(), 1);
    let vars: serde_json::Value = serde_json::from_str(&jobs[0].job.variables).unwrap();
    assert_eq!(vars, serde_json::json!({"a": 1, "b": {"c": "x"}}));
    assert_eq!(jobs[0].job.worker, "test-worker");
    assert!(!h.is_completed(pi));
    h.complete(jobs[0].key, r#"{"result": true}"#).unwrap();
    assert!(h.is_completed(pi));
    assert_eq!(
        h.element_intents(pi, "task"),
        [
            "ELEMENT_ACTIVATING",
            "ELEMENT_ACTIVATED",
            "ELEMENT_COMPLETING",
            "ELEMENT_COMPLETED"
        ]
    );
    assert!(h.engine.state().instances.is_empty());
    assert!(h.engine.state().jobs.is_empty());
    assert_eq!(h.engine.state().variables.scope_count(), 0);
    // a completed job is gone
    let err = h.complete(jobs[0].key, "{}").unwrap_err();
    assert_eq!(err.rejection_type, RejectionType::NotFound);
}

#[test]
fn fetch_variables_restricts_the_job_variables() {
    let mut h = Harness::new();
    h.deploy("one.bpmn", &one_task("one")).unwrap();
    h.create("one", r#"{"a": 1, "b": 2, "c": 3}"#);
    let jobs = h.activate_fetch("work", 1, vec!["b".into(), "zz".into()]);
    assert_eq!(jobs[0].job.variables, r#"{"b":2}"#);
}

#[test]
fn versions_follow_content() {
    let mut h = Harness::new();
    let v1 = match h.deploy("a.bpmn", &one_task("p")).unwrap() {
        ResponseValue::Deployment { processes, .. } => processes[0].clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(v1.version, 1);
    let same = match h.deploy("a.bpmn", &one_task("p")).unwrap() {
        ResponseValue::Deployment { processes, .. } => processes[0].clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        (same.version, same.process_definition_key),
        (1, v1.process_definition_key)
    );
    assert!(same.duplicate);
    let changed = one_task("p").replace("type=\"work\"", "type=\"work2\"");
    let v2 = match h.deploy("a.bpmn", &changed).unwrap() {
        ResponseValue::Deployment { processes, .. } => processes[0].clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(v2.version, 2);
    assert_ne!(v2.process_definition_key, v1.process_definition_key);
    // latest, by version, by key
    h.create("p", "{}");
    assert_eq!(h.activate("work2", 10).len(), 1);
    h.request(create_command("p", 1, "{}", false)).unwrap();
    assert_eq!(h.activate("work", 10).len(), 1);
    let mut by_key = create_command("", -1, "{}", false);
    if let RecordValue::ProcessInstanceCreation(c) = &mut by_key.value {
        c.process_definition_key = v1.process_definition_key;
    }
    h.request(by_key).unwrap();
    assert_eq!(h.activate("work", 10).len(), 1);
    let err = h.request(create_command("p", 7, "{}", false)).unwrap_err();
    assert_eq!(err.rejection_type, RejectionType::NotFound);
    let err = h
        .request(create_command("p", -1, "[1]", false))
        .unwrap_err();
    assert_eq!(err.rejection_type, RejectionType::InvalidArgument);
}

#[test]
fn deployment_errors_name_resource_and_element() {
    let mut h = Harness::new();
    let bad = one_task("p").replace("type=\"work\"", "type=\"\"");
    let err = h.deploy("bad.bpmn", &bad).unwrap_err();
    assert_eq!(err.rejection_type, RejectionType::InvalidArgument);
    assert!(
        err.reason.contains("'bad.bpmn'") && err.reason.contains("'task'"),
        "{}",
        err.reason
    );
    let err = h.deploy("x.dmn", "<x/>").unwrap_err();
    assert!(
        err.reason.contains("'x.dmn'") && err.reason.contains("DMN"),
        "{}",
        err.reason
    );
    let err = h.deploy("x.txt", "{}").unwrap_err();
    assert!(err.reason.contains("only BPMN"), "{}", err.reason);
    let err = h.deploy("x.form", "{}").unwrap_err();
    assert!(err.reason.contains("'x.form'"), "{}", err.reason);
    assert!(h.engine.state().processes.is_empty());
}

#[test]
fn deployment_is_distributed_to_other_partitions() {
    let mut h = Harness::with_engine(Engine::new(1, 3));
    h.deploy("one.bpmn", &one_task("one")).unwrap();
    let targets: Vec<u32> = h.distributions.iter().map(|(p, _)| *p).collect();
    assert_eq!(targets, [2, 3]);
    let mut other = Harness::with_engine(Engine::new(2, 3));
    let cmd = h.distributions[0].1.clone();
    other.submit(cmd.clone(), false);
    other.submit(cmd, false); // idempotent
    let p1: Vec<_> = h.engine.state().processes.keys().copied().collect();
    let p2: Vec<_> = other.engine.state().processes.keys().copied().collect();
    assert_eq!(p1, p2);
    let pi = other.create("one", "{}");
    assert_eq!(key::partition_of(pi), 2);
}

fn gateway_process() -> String {
    bpmn(
        "gwp",
        &format!(
            r#"<bpmn:startEvent id="start"/><bpmn:exclusiveGateway id="gw" default="fDefault"/>{}{}{}<bpmn:endEvent id="end"/>
            {}{}{}{}{}{}{}"#,
            service_task("big", "big", ""),
            service_task("small", "small", ""),
            service_task("other", "other", ""),
            flow("f0", "start", "gw"),
            cond_flow("fBig", "gw", "big", "=amount &gt; 100"),
            cond_flow("fSmall", "gw", "small", "=amount &lt; 10"),
            flow("fDefault", "gw", "other"),
            flow("f1", "big", "end"),
            flow("f2", "small", "end"),
            flow("f3", "other", "end"),
        ),
    )
}

#[test]
fn exclusive_gateway_takes_the_first_true_condition_or_the_default() {
    let mut h = Harness::new();
    h.deploy("gw.bpmn", &gateway_process()).unwrap();
    h.create("gwp", r#"{"amount": 500}"#);
    h.create("gwp", r#"{"amount": 5}"#);
    h.create("gwp", r#"{"amount": 50}"#);
    assert_eq!(h.activate("big", 10).len(), 1);
    assert_eq!(h.activate("small", 10).len(), 1);
    assert_eq!(h.activate("other", 10).len(), 1);
}

#[test]
fn exclusive_gateway_without_match_raises_a_condition_incident_until_resolved() {
    let mut h = Harness::new();
    let xml = gateway_process()
        .replace(" default=\"fDefault\"", "")
        .replace(
            r#"<bpmn:sequenceFlow id="fDefault" sourceRef="gw" targetRef="other"/>"#,
            "",
        );
    h.deploy("gw.bpmn", &xml).unwrap();
    let pi = h.create("gwp", r#"{"amount": "not a number"}"#);
    let incidents = h.incidents();
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    let (incident_key, incident) = &incidents[0];
    assert_eq!(incident.error_type, ErrorType::ConditionError);
    assert_eq!(&*incident.element_id, "gw");
    assert!(!incident.error_message.is_empty());
    h.set_variables(pi, r#"{"amount": 1000}"#, false).unwrap();
    h.resolve(*incident_key).unwrap();
    assert!(h.incidents().is_empty());
    assert_eq!(h.activate("big", 10).len(), 1);
    assert_eq!(
        h.element_intents(pi, "gw").last(),
        Some(&"ELEMENT_COMPLETED")
    );
}

#[test]
fn parallel_gateway_forks_and_joins() {
    let mut h = Harness::new();
    let xml = bpmn(
        "par",
        &format!(
            r#"<bpmn:startEvent id="start"/><bpmn:parallelGateway id="fork"/><bpmn:parallelGateway id="join"/>{}{}{}<bpmn:endEvent id="end"/>
            {}{}{}{}{}{}{}"#,
            service_task("a", "a", ""),
            service_task("b", "b", ""),
            service_task("after", "after", ""),
            flow("f0", "start", "fork"),
            flow("f1", "fork", "a"),
            flow("f2", "fork", "b"),
            flow("f3", "a", "join"),
            flow("f4", "b", "join"),
            flow("f5", "join", "after"),
            flow("f6", "after", "end"),
        ),
    );
    h.deploy("par.bpmn", &xml).unwrap();
    let pi = h.create("par", "{}");
    let a = h.activate("a", 1);
    let b = h.activate("b", 1);
    h.complete(a[0].key, r#"{"fromA": 1}"#).unwrap();
    assert!(h.activate("after", 1).is_empty(), "join waits for b");
    h.complete(b[0].key, r#"{"fromB": 2}"#).unwrap();
    let after = h.activate("after", 1);
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].job.variables, r#"{"fromA":1,"fromB":2}"#);
    assert_eq!(
        h.element_intents(pi, "join")
            .iter()
            .filter(|i| **i == "ELEMENT_ACTIVATING")
            .count(),
        1
    );
    h.complete(after[0].key, "{}").unwrap();
    assert!(h.is_completed(pi));
}

#[test]
fn inclusive_gateway_forks_on_true_conditions_and_joins_them() {
    let mut h = Harness::new();
    let xml = bpmn(
        "inc",
        &format!(
            r#"<bpmn:startEvent id="start"/><bpmn:inclusiveGateway id="fork"/><bpmn:inclusiveGateway id="join"/>{}{}{}{}<bpmn:endEvent id="end"/>
            {}{}{}{}{}{}{}{}{}"#,
            service_task("a", "a", ""),
            service_task("b", "b", ""),
            service_task("c", "c", ""),
            service_task("after", "after", ""),
            flow("f0", "start", "fork"),
            cond_flow("fa", "fork", "a", "=x &gt; 0"),
            cond_flow("fb", "fork", "b", "=x &gt; 10"),
            cond_flow("fc", "fork", "c", "=x &gt; 100"),
            flow("fa2", "a", "join"),
            flow("fb2", "b", "join"),
            flow("fc2", "c", "join"),
            flow("f5", "join", "after"),
            flow("f6", "after", "end"),
        ),
    );
    h.deploy("inc.bpmn", &xml).unwrap();
    let pi = h.create("inc", r#"{"x": 50}"#);
    let a = h.activate("a", 1);
    let b = h.activate("b", 1);
    assert!(h.activate("c", 1).is_empty());
    h.complete(a[0].key, "{}").unwrap();
    assert!(
        h.activate("after", 1).is_empty(),
        "b can still reach the join"
    );
    h.complete(b[0].key, "{}").unwrap();
    let after = h.activate("after", 1);
    assert_eq!(after.len(), 1);
    h.complete(after[0].key, "{}").unwrap();
    assert!(h.is_completed(pi));
}

#[test]
fn sub_process_with_io_mappings_and_propagation() {
    let mut h = Harness::new();
    let io_in = r#"<zeebe:ioMapping><zeebe:input source="=order.total * 2" target="doubled"/><zeebe:input source="=doubled + 1" target="plusOne"/></zeebe:ioMapping>"#;
    let io_out =
        r#"<zeebe:ioMapping><zeebe:output source="=result" target="subResult"/></zeebe:ioMapping>"#;
    let xml = bpmn(
        "sub",
        &format!(
            r#"<bpmn:startEvent id="start"/>
            <bpmn:subProcess id="sp"><bpmn:extensionElements>{io_in}</bpmn:extensionElements>
              <bpmn:startEvent id="sps"/>{}<bpmn:endEvent id="spe"/>{}{}
            </bpmn:subProcess>
            <bpmn:endEvent id="end"/>{}{}"#,
            service_task("inner", "inner", io_out),
            flow("sf1", "sps", "inner"),
            flow("sf2", "inner", "spe"),
            flow("f1", "start", "sp"),
            flow("f2", "sp", "end"),
        ),
    );
    h.deploy("sub.bpmn", &xml).unwrap();
    let pi = h.create("sub", r#"{"order": {"total": 21}}"#);
    let jobs = h.activate("inner", 1);
    let vars: serde_json::Value = serde_json::from_str(&jobs[0].job.variables).unwrap();
    assert_eq!(vars["doubled"], 42);
    assert_eq!(vars["plusOne"], 43);
    let sp_key = h
        .engine
        .state()
        .instances
        .iter()
        .find(|(_, i)| {
            i.element == 2
                || i.flow_scope_key == pi
                    && i.process_instance_key == pi
                    && i.job_key == NO_KEY
                    && i.active_children > 0
        })
        .map(|(k, _)| *k)
        .unwrap();
    assert!(
        h.variable(sp_key, "doubled").is_some(),
        "input mappings are local to the sub-process"
    );
    assert!(h.variable(pi, "doubled").is_none());
    h.complete(jobs[0].key, r#"{"result": "ok", "extra": 1}"#)
        .unwrap();
    assert!(h.is_completed(pi));
    // output mapping: only subResult propagated; extra stayed local to the task
    let created: Vec<(String, String, i64)> = h
        .log
        .iter()
        .filter_map(|r| match &r.value {
            RecordValue::Variable(v) if r.record_type == RecordType::Event => {
                Some((v.name.clone(), v.value.clone(), v.scope_key))
            }
            _ => None,
        })
        .collect();
    assert!(
        created.contains(&("subResult".into(), "\"ok\"".into(), pi)),
        "{created:?}"
    );
    assert!(
        !created.iter().any(|(n, _, s)| n == "extra" && *s == pi),
        "{created:?}"
    );
}

#[test]
fn io_mapping_failure_raises_an_incident_and_resolving_retries() {
    let mut h = Harness::new();
    // A missing variable is null (no incident, as in Zeebe); a failed
    // assertion is an evaluation failure.
    let io = r#"<zeebe:ioMapping><zeebe:input source="=assert(missing.field, missing.field != null) + 1" target="x"/></zeebe:ioMapping>"#;
    let xml = bpmn(
        "io",
        &format!(
            r#"<bpmn:startEvent id="start"/>{}<bpmn:endEvent id="end"/>{}{}"#,
            service_task("task", "work", io),
            flow("f1", "start", "task"),
            flow("f2", "task", "end")
        ),
    );
    h.deploy("io.bpmn", &xml).unwrap();
    let pi = h.create("io", "{}");
    let incidents = h.incidents();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].1.error_type, ErrorType::IoMappingError);
    assert_eq!(&*incidents[0].1.element_id, "task");
    assert!(h.activate("work", 1).is_empty());
    h.set_variables(pi, r#"{"missing": {"field": 1}}"#, false)
        .unwrap();
    h.resolve(incidents[0].0).unwrap();
    let jobs = h.activate("work", 1);
    assert_eq!(jobs.len(), 1);
    assert!(
        jobs[0].job.variables.contains(r#""x":2"#),
        "{}",
        jobs[0].job.variables
    );
}

#[test]
fn script_task_sets_its_result_variable() {
    let mut h = Harness::new();
    let xml = bpmn(
        "script",
        &format!(
            r#"<bpmn:startEvent id="start"/><bpmn:scriptTask id="s"><bpmn:extensionElements><zeebe:script expression="=a + b" resultVariable="sum"/></bpmn:extensionElements></bpmn:scriptTask>{}<bpmn:endEvent id="end"/>{}{}{}"#,
            service_task("task", "work", ""),
            flow("f1", "start", "s"),
            flow("f2", "s", "task"),
            flow("f3", "task", "end")
        ),
    );
    h.deploy("s.bpmn", &xml).unwrap();
    let pi = h.create("script", r#"{"a": 2, "b": 3}"#);
    assert_eq!(h.variable(pi, "sum").as_deref(), Some("5"));
}

#[test]
fn job_type_and_retries_from_feel_and_headers() {
    let mut h = Harness::new();
    let xml = bpmn(
        "feel",
        r#"<bpmn:startEvent id="start"/><bpmn:serviceTask id="t"><bpmn:extensionElements><zeebe:taskDefinition type="=&quot;pay-&quot; + region" retries="=tries"/><zeebe:taskHeaders><zeebe:header key="k" value="v"/></zeebe:taskHeaders></bpmn:extensionElements></bpmn:serviceTask><bpmn:sequenceFlow id="f" sourceRef="start" targetRef="t"/>"#,
    );
    h.deploy("f.bpmn", &xml).unwrap();
    h.create("feel", r#"{"region": "eu", "tries": 7}"#);
    let jobs = h.activate("pay-eu", 1);
    assert_eq!(jobs[0].job.retries, 7);
    assert_eq!(&*jobs[0].job.custom_headers, r#"{"k":"v"}"#);
    // a type expression that does not give a string: extract-value incident
    h.create("feel", r#"{"region": 5, "tries": 7}"#);
    let incidents = h.incidents();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].1.error_type, ErrorType::ExtractValueError);
}

#[test]
fn job_based_user_task_has_the_reserved_type_and_assignment_headers() {
    let mut h = Harness::new();
    let xml = bpmn(
        "ut",
        r#"<bpmn:startEvent id="start"/><bpmn:userTask id="u"><bpmn:extensionElements><zeebe:assignmentDefinition assignee="=who" candidateGroups="ops, sales" candidateUsers="=users"/></bpmn:extensionElements></bpmn:userTask><bpmn:sequenceFlow id="f" sourceRef="start" targetRef="u"/>"#,
    );
    h.deploy("u.bpmn", &xml).unwrap();
    h.create("ut", r#"{"who": "alice", "users": ["bob", "carol"]}"#);
    let jobs = h.activate("io.camunda.zeebe:userTask", 1);
    let headers: serde_json::Value = serde_json::from_str(&jobs[0].job.custom_headers).unwrap();
    assert_eq!(headers["io.camunda.zeebe:assignee"], "alice");
    // As Zeebe writes them: the JSON text of a list, static or from FEEL.
    assert_eq!(
        headers["io.camunda.zeebe:candidateGroups"],
        r#"["ops","sales"]"#
    );
    assert_eq!(
        headers["io.camunda.zeebe:candidateUsers"],
        r#"["bob","carol"]"#
    );
}

#[test]
fn fail_with_backoff_then_no_retries_incident_then_resolve() {
    let mut h = Harness::new();
    h.deploy("one.bpmn", &one_task("one")).unwrap();
    let pi = h.create("one", "{}");
    let job = h.activate("work", 1)[0].key;
    h.job(Intent::Fail, job, |j| {
        j.retries = 2;
        j.retry_backoff_ms = 5_000;
        j.error_message = "boom".into();
    })
    .unwrap();
    assert!(h.activate("work", 1).is_empty(), "back-off not yet expired");
    h.now_ms += 4_999;
    h.tick();
    assert!(h.activate("work", 1).is_empty());
    h.now_ms += 1;
    h.tick();
    let again = h.activate("work", 1);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].job.retries, 2);
    h.job(Intent::Fail, job, |j| {
        j.retries = 0;
        j.error_message = "gave up".into();
    })
    .unwrap();
    let incidents = h.incidents();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].1.error_type, ErrorType::JobNoRetries);
    assert_eq!(incidents[0].1.error_message, "gave up");
    assert_eq!(incidents[0].1.job_key, job);
    // resolving without retries is refused; completing a failed job too
    assert_eq!(
        h.resolve(incidents[0].0).unwrap_err().rejection_type,
        RejectionType::InvalidState
    );
    assert_eq!(
        h.complete(job, "{}").unwrap_err().rejection_type,
        RejectionType::InvalidState
    );
    assert_eq!(
        h.job(Intent::UpdateRetries, job, |j| j.retries = 0)
            .unwrap_err()
            .rejection_type,
        RejectionType::InvalidArgument
    );
    h.job(Intent::UpdateRetries, job, |j| j.retries = 3)
        .unwrap();
    h.resolve(incidents[0].0).unwrap();
    let again = h.activate("work", 1);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].job.retries, 3);
    h.complete(job, "{}").unwrap();
    assert!(h.is_completed(pi));
}

#[test]
fn timed_out_job_becomes_activatable_and_timeout_can_be_updated() {
    let mut h = Harness::new();
    h.deploy("one.bpmn", &one_task("one")).unwrap();
    h.create("one", "{}");
    let job = h.activate("work", 1)[0].key; // 30 s timeout
    h.job(Intent::UpdateTimeout, job, |j| j.timeout_ms = 60_000)
        .unwrap();
    h.now_ms += 30_001;
    h.tick();
    assert!(
        h.activate("work", 1).is_empty(),
        "deadline was extended to 60 s"
    );
    h.now_ms += 30_000;
    h.tick();
    assert!(h
        .log
        .iter()
        .any(|r| r.intent == Intent::TimedOut && r.key == job));
    assert_eq!(h.activate("work", 1)[0].key, job);
    // a second tick does not repeat the command for the same deadline
    let before = h.log.len();
    h.tick();
    assert_eq!(h.log.len(), before);
}

#[test]
fn thrown_error_without_catch_event_raises_an_incident() {
    let mut h = Harness::new();
    h.deploy("one.bpmn", &one_task("one")).unwrap();
    h.create("one", "{}");
    let job = h.activate("work", 1)[0].key;
    h.job(Intent::ThrowError, job, |j| {
        j.error_code = "NOT_PAID".into();
        j.error_message = "card declined".into();
    })
    .unwrap();
    let incidents = h.incidents();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].1.error_type, ErrorType::UnhandledErrorEvent);
    assert!(incidents[0].1.error_message.contains("NOT_PAID"));
    assert!(h.activate("work", 1).is_empty());
    h.resolve(incidents[0].0).unwrap();
    assert_eq!(
        h.activate("work", 1).len(),
        1,
        "resolving makes the job activatable again"
    );
}

#[test]
fn cancel_terminates_every_child_and_cancels_jobs() {
    let mut h = Harness::new();
    let xml = bpmn(
        "c",
        &format!(
            r#"<bpmn:startEvent id="start"/><bpmn:parallelGateway id="fork"/>{}<bpmn:subProcess id="sp"><bpmn:startEvent id="s2"/>{}{}</bpmn:subProcess>{}{}{}"#,
            service_task("a", "a", ""),
            service_task("b", "b", ""),
            flow("fs", "s2", "b"),
            flow("f0", "start", "fork"),
            flow("f1", "fork", "a"),
            flow("f2", "fork", "sp"),
        ),
    );
    h.deploy("c.bpmn", &xml).unwrap();
    let pi = h.create("c", "{}");
    assert_eq!(h.engine.state().jobs.len(), 2);
    h.cancel(pi).unwrap();
    assert!(h.is_terminated(pi));
    assert_eq!(
        h.element_intents(pi, "b"),
        [
            "ELEMENT_ACTIVATING",
            "ELEMENT_ACTIVATED",
            "ELEMENT_TERMINATING",
            "ELEMENT_TERMINATED"
        ]
    );
    assert_eq!(
        h.log
            .iter()
            .filter(|r| r.intent == Intent::Canceled)
            .count(),
        2
    );
    assert!(h.engine.state().instances.is_empty());
    assert!(h.engine.state().jobs.is_empty());
    assert_eq!(
        h.cancel(pi).unwrap_err().rejection_type,
        RejectionType::NotFound
    );
}

#[test]
fn terminate_end_event_ends_the_other_branches() {
    let mut h = Harness::new();
    let xml = bpmn(
        "t",
        &format!(
            r#"<bpmn:startEvent id="start"/><bpmn:parallelGateway id="fork"/>{}<bpmn:endEvent id="kill"><bpmn:terminateEventDefinition/></bpmn:endEvent>{}{}{}"#,
            service_task("a", "a", ""),
            flow("f0", "start", "fork"),
            flow("f1", "fork", "a"),
            flow("f2", "fork", "kill"),
        ),
    );
    h.deploy("t.bpmn", &xml).unwrap();
    let pi = h.create("t", "{}");
    assert!(h.is_completed(pi));
    assert_eq!(
        h.element_intents(pi, "a").last(),
        Some(&"ELEMENT_TERMINATED")
    );
    assert!(h.engine.state().jobs.is_empty());
}

#[test]
fn create_with_result_answers_when_the_instance_completes() {
    let mut h = Harness::new();
    h.deploy("one.bpmn", &one_task("one")).unwrap();
    let request = h.submit(create_command("one", -1, r#"{"in": 1}"#, true), true);
    assert!(
        !h.responses.contains_key(&request),
        "no answer before completion"
    );
    let job = h.activate("work", 1)[0].key;
    h.complete(job, r#"{"out": 2}"#).unwrap();
    match h.responses.remove(&request) {
        Some(Ok(ResponseValue::ProcessInstanceResult { variables, .. })) => {
            assert_eq!(variables, r#"{"in":1,"out":2}"#)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn set_variables_local_and_propagating() {
    let mut h = Harness::new();
    h.deploy("one.bpmn", &one_task("one")).unwrap();
    let pi = h.create("one", r#"{"x": 1}"#);
    let task = h.activate("work", 1)[0].job.element_instance_key;
    h.set_variables(task, r#"{"x": 2, "y": 3}"#, false).unwrap();
    assert_eq!(h.variable(pi, "x").as_deref(), Some("2"));
    assert_eq!(h.variable(pi, "y").as_deref(), Some("3"));
    h.set_variables(task, r#"{"z": 4}"#, true).unwrap();
    assert_eq!(h.variable(task, "z").as_deref(), Some("4"));
    assert!(h.variable(pi, "z").is_none());
    assert_eq!(
        h.set_variables(task, "nope", false)
            .unwrap_err()
            .rejection_type,
        RejectionType::InvalidArgument
    );
    assert_eq!(
        h.set_variables(12345, "{}", false)
            .unwrap_err()
            .rejection_type,
        RejectionType::NotFound
    );
}

#[test]
fn jobs_are_pushed_to_streams() {
    let mut h = Harness::new();
    h.deploy("one.bpmn", &one_task("one")).unwrap();
    h.engine.add_job_stream(7, "work", "pusher", 10_000, vec![]);
    h.create("one", r#"{"v": 1}"#);
    assert_eq!(h.pushed.len(), 1);
    let push = h.pushed.remove(0);
    assert_eq!(push.stream_id, 7);
    assert_eq!(push.job.job.worker, "pusher");
    assert_eq!(push.job.job.variables, r#"{"v":1}"#);
    assert!(h.activate("work", 1).is_empty(), "pushed job is activated");
    // undeliverable: yield makes it activatable for polling
    h.job(Intent::Yield, push.job.key, |_| {}).unwrap();
    h.engine.remove_job_stream(7);
    assert_eq!(h.activate("work", 1).len(), 1);
}

#[test]
fn job_streams_are_replicated_state_kept_in_the_snapshot() {
    let mut h = Harness::new();
    h.deploy("one.bpmn", &one_task("one")).unwrap();
    let without = h.engine.fingerprint();
    h.engine.add_job_stream(7, "work", "a", 10_000, vec![]);
    h.engine.add_job_stream(9, "work", "b", 10_000, vec![]);
    assert_ne!(h.engine.fingerprint(), without, "streams are replicated");
    h.create("one", "{}");
    assert_eq!(h.pushed.last().unwrap().stream_id, 7);
    let snapshot = h.engine.snapshot();
    assert_eq!(snapshot[0], ::engine::engine::SNAPSHOT_FORMAT_STREAMS);
    let restored = Engine::restore(&snapshot).unwrap();
    assert_eq!(restored.fingerprint(), h.engine.fingerprint());
    assert_eq!(restored.job_streams(), h.engine.job_streams());
    // A replica restored from the snapshot goes on where the round-robin was.
    h.engine = restored;
    h.create("one", "{}");
    assert_eq!(h.pushed.last().unwrap().stream_id, 9);
    h.engine.remove_job_stream(7);
    h.engine.remove_job_stream(9);
    assert!(h.engine.snapshot()[0] < ::engine::engine::SNAPSHOT_FORMAT_STREAMS);
    h.create("one", "{}");
    assert_eq!(h.pushed.len(), 2, "no stream left to push to");
}

#[test]
fn unknown_keys_and_garbage_commands_are_rejected() {
    let mut h = Harness::new();
    assert_eq!(
        h.complete(99, "{}").unwrap_err().rejection_type,
        RejectionType::NotFound
    );
    assert_eq!(
        h.resolve(99).unwrap_err().rejection_type,
        RejectionType::NotFound
    );
    let err = h
        .request(Record::command(
            NO_KEY,
            Intent::Complete,
            RecordValue::Deployment(DeploymentRecord {
                resources: vec![],
                processes: vec![],
                decision_requirements: Vec::new(),
                decisions: Vec::new(),
                forms: Vec::new(),
            }),
            None,
        ))
        .unwrap_err();
    assert_eq!(err.rejection_type, RejectionType::InvalidArgument);
    let err = h.deploy_bytes("x.bpmn", vec![]).unwrap_err();
    assert_eq!(err.rejection_type, RejectionType::InvalidArgument);
}

#[test]
fn several_processes_in_one_file_with_send_rule_manual_and_undefined_tasks() {
    let mut h = Harness::new();
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="defs">
<bpmn:process id="first" isExecutable="true"><bpmn:startEvent id="s"/><bpmn:sendTask id="send"><bpmn:extensionElements><zeebe:taskDefinition type="send-mail"/></bpmn:extensionElements></bpmn:sendTask><bpmn:businessRuleTask id="rule"><bpmn:extensionElements><zeebe:taskDefinition type="decide"/></bpmn:extensionElements></bpmn:businessRuleTask><bpmn:manualTask id="manual"/><bpmn:task id="undefined"/><bpmn:endEvent id="e"/>{}{}{}{}{}</bpmn:process>
<bpmn:process id="second" isExecutable="true"><bpmn:startEvent id="s2"/><bpmn:endEvent id="e2"/>{}</bpmn:process>
<bpmn:process id="not-executable" isExecutable="false"><bpmn:startEvent id="s3"/></bpmn:process>
</bpmn:definitions>"#,
        flow("f1", "s", "send"),
        flow("f2", "send", "rule"),
        flow("f3", "rule", "manual"),
        flow("f4", "manual", "undefined"),
        flow("f5", "undefined", "e"),
        flow("g1", "s2", "e2"),
    );
    let Ok(ResponseValue::Deployment { processes, .. }) = h.deploy("two.bpmn", &xml) else {
        panic!("deployment of two processes failed");
    };
    let ids: Vec<&str> = processes.iter().map(|p| &*p.bpmn_process_id).collect();
    assert_eq!(ids, ["first", "second"]);
    let second = h.create("second", "");
    assert!(h.is_completed(second));
    let first = h.create("first", "");
    let send = h.activate("send-mail", 5);
    assert_eq!(send.len(), 1);
    assert_eq!(&*send[0].job.element_id, "send");
    assert!(
        h.activate("decide", 5).is_empty(),
        "rule task not yet reached"
    );
    h.complete(send[0].key, "{}").unwrap();
    let rule = h.activate("decide", 5);
    assert_eq!(rule.len(), 1);
    h.complete(rule[0].key, "{}").unwrap();
    assert!(h.is_completed(first));
    for (id, ty) in [("manual", "MANUAL_TASK"), ("undefined", "TASK")] {
        assert_eq!(h.element_intents(first, id).len(), 4, "{id} passes through");
        let record = h
            .log
            .iter()
            .find_map(|r| match &r.value {
                RecordValue::ProcessInstance(v) if &*v.element_id == id => Some(v.clone()),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            format!("{:?}", record.bpmn_element_type).to_uppercase(),
            ty.replace('_', "")
        );
    }
}

#[test]
fn link_events_continue_at_the_catch_event_of_the_same_name() {
    let mut h = Harness::new();
    let link = |kind: &str, id: &str, name: &str| {
        format!(r#"<bpmn:{kind} id="{id}"><bpmn:linkEventDefinition name="{name}"/></bpmn:{kind}>"#)
    };
    let xml = bpmn(
        "links",
        &format!(
            r#"<bpmn:startEvent id="s"/>{}{}{}<bpmn:endEvent id="e"/>{}{}{}"#,
            link("intermediateThrowEvent", "go", "jump"),
            link("intermediateCatchEvent", "land", "jump"),
            service_task("task", "work", ""),
            flow("f1", "s", "go"),
            flow("f2", "land", "task"),
            flow("f3", "task", "e"),
        ),
    );
    h.deploy("links.bpmn", &xml).unwrap();
    let pi = h.create("links", "");
    assert_eq!(h.element_intents(pi, "land").len(), 4);
    let job = h.activate("work", 1).remove(0);
    h.complete(job.key, "{}").unwrap();
    assert!(h.is_completed(pi));
    let broken = xml.replace(
        r#"name="jump"/></bpmn:intermediateCatchEvent>"#,
        r#"name="other"/></bpmn:intermediateCatchEvent>"#,
    );
    let err = h.deploy("broken.bpmn", &broken).unwrap_err();
    assert!(
        err.reason.contains("'go'") && err.reason.contains("no link catch event named 'jump'"),
        "{}",
        err.reason
    );
}

#[test]
fn jobs_keep_their_creation_time_for_the_activation_latency() {
    let mut h = Harness::new();
    h.deploy("one.bpmn", &one_task("one")).unwrap();
    let created_ms = h.now_ms;
    h.create("one", "{}");
    h.now_ms += 750;
    let jobs = h.activate("work", 1);
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].created_ms, created_ms);
    let key = jobs[0].key;
    // a time-out and a second activation keep the creation time
    h.advance(60_000);
    let again = h.activate("work", 1);
    assert_eq!(again[0].key, key);
    assert_eq!(again[0].created_ms, created_ms);
    // in snapshots, and for a follower that applies the log
    let restored = Engine::restore(&h.engine.snapshot()).unwrap();
    assert_eq!(restored.state().jobs[&key].created_ms, created_ms);
    let mut follower = Engine::new(1, 1);
    for r in &h.log {
        follower.replay(r);
    }
    assert_eq!(follower.state().jobs[&key].created_ms, created_ms);
    // pushed jobs carry it too
    h.engine.add_job_stream(7, "work", "pusher", 10_000, vec![]);
    let pushed_at = h.now_ms;
    h.create("one", "{}");
    assert_eq!(h.pushed.len(), 1);
    assert_eq!(h.pushed[0].job.created_ms, pushed_at);
}
