//! Input built to exhaust the stack (deep XML, deep FEEL, deep JSON) is
//! rejected like any other bad input, and the engine keeps working.

mod common;
use ::engine::*;

use common::*;

const DEEP: usize = 100_000;

fn rejection_of(result: Result<ResponseValue, Rejection>) -> Rejection {
    match result {
        Err(r) => r,
        Ok(v) => panic!("expected a rejection, got {v:?}"),
    }
}

/// A process whose service task maps `expression` into a variable.
fn with_input(expression: &str) -> String {
    let mapping = format!(
        r#"<zeebe:ioMapping><zeebe:input source="={expression}" target="x"/></zeebe:ioMapping>"#
    );
    bpmn(
        "mapped",
        &format!(
            r#"<bpmn:startEvent id="start"/>{}<bpmn:endEvent id="end"/>{}{}"#,
            service_task("task", "work", &mapping),
            flow("f1", "start", "task"),
            flow("f2", "task", "end")
        ),
    )
}

fn still_serves(h: &mut Harness) {
    h.deploy("one.bpmn", &one_task("one")).unwrap();
    let pi = h.create("one", "{}");
    let jobs = h.activate("work", 1);
    h.complete(jobs[0].key, "{}").unwrap();
    assert!(h.is_completed(pi));
}

#[test]
fn deeply_nested_xml_is_rejected_naming_the_limit() {
    let mut h = Harness::new();
    let mut xml = String::from(
        r#"<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d"><bpmn:process id="deep" isExecutable="true">"#,
    );
    xml.push_str(&"<bpmn:subProcess>".repeat(DEEP / 10));
    xml.push_str(&"<a>".repeat(DEEP - DEEP / 10));
    xml.push_str(&"</a>".repeat(DEEP - DEEP / 10));
    xml.push_str(&"</bpmn:subProcess>".repeat(DEEP / 10));
    xml.push_str("</bpmn:process></bpmn:definitions>");
    let r = rejection_of(h.deploy("deep.bpmn", &xml));
    assert_eq!(r.rejection_type, RejectionType::InvalidArgument);
    assert!(r.reason.contains("'deep.bpmn'"), "{}", r.reason);
    assert!(
        r.reason
            .contains(&format!("at most {} levels", dmn::xml_depth::MAX_XML_DEPTH)),
        "{}",
        r.reason
    );
    still_serves(&mut h);
}

#[test]
fn nesting_up_to_the_limit_fits_on_the_stack() {
    // Sub-processes nested as deep as the limit allows (each takes one
    // element level) parse, deploy and run in a thread with the default
    // stack; what is refused is only what is deeper.
    let mut h = Harness::new();
    let levels = dmn::xml_depth::MAX_XML_DEPTH - 8;
    let mut body = String::from(r#"<bpmn:startEvent id="start"/>"#);
    for i in 0..levels {
        body.push_str(&format!(
            r#"<bpmn:subProcess id="s{i}"><bpmn:startEvent id="st{i}"/>"#
        ));
    }
    body.push_str(&service_task("task", "work", ""));
    body.push_str(&flow("inner", &format!("st{}", levels - 1), "task"));
    for i in (0..levels).rev() {
        if i + 1 < levels {
            body.push_str(&flow(
                &format!("in{i}"),
                &format!("st{i}"),
                &format!("s{}", i + 1),
            ));
        }
        body.push_str("</bpmn:subProcess>");
    }
    body.push_str(r#"<bpmn:endEvent id="end"/>"#);
    body.push_str(&flow("f1", "start", "s0"));
    body.push_str(&flow("f2", "s0", "end"));
    h.deploy("nested.bpmn", &bpmn("nested", &body)).unwrap();
    let pi = h.create("nested", "{}");
    let jobs = h.activate("work", 1);
    assert_eq!(jobs.len(), 1, "{:?}", h.incidents());
    h.complete(jobs[0].key, "{}").unwrap();
    assert!(h.is_completed(pi));
    let deeper = bpmn(
        "deeper",
        &format!(
            "{}{}",
            "<a>".repeat(levels + 16),
            "</a>".repeat(levels + 16)
        ),
    );
    assert!(h.deploy("deeper.bpmn", &deeper).is_err());
}

#[test]
fn deeply_nested_feel_is_rejected_at_deployment() {
    let mut h = Harness::new();
    // Past the size limit.
    let huge = format!("{}1{}", "(".repeat(DEEP), ")".repeat(DEEP));
    let r = rejection_of(h.deploy("huge.bpmn", &with_input(&huge)));
    assert_eq!(r.rejection_type, RejectionType::InvalidArgument);
    assert!(r.reason.contains("exceeds the limit"), "{}", r.reason);
    // Under the size limit, nested brackets of every kind and unary minus.
    for (open, close) in [("(", ")"), ("[", "]"), ("{a:", "}"), ("-", "")] {
        let text = format!("{}1{}", open.repeat(4_000), close.repeat(4_000));
        let text = &text[..text.len().min(expression::MAX_EXPRESSION_BYTES)];
        let r = rejection_of(h.deploy("nested.bpmn", &with_input(text)));
        assert_eq!(r.rejection_type, RejectionType::InvalidArgument);
        assert!(
            r.reason.contains(&format!(
                "nests deeper than {} levels",
                feel::MAX_NESTING_DEPTH
            )),
            "{open}: {}",
            r.reason
        );
        assert!(r.reason.contains("element 'task'"), "{}", r.reason);
    }
    // As deep as the limit allows evaluates on the default stack.
    let depth = feel::MAX_NESTING_DEPTH - 8;
    let text = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
    h.deploy("deep.bpmn", &with_input(&text)).unwrap();
    h.create("mapped", "{}");
    let jobs = h.activate("work", 1);
    assert_eq!(jobs.len(), 1, "{:?}", h.incidents());
    still_serves(&mut h);
}

#[test]
fn long_feel_operator_chains_evaluate_without_recursion() {
    let mut h = Harness::new();
    let terms = 7_000;
    let chain = vec!["1"; terms].join("+");
    assert!(chain.len() <= expression::MAX_EXPRESSION_BYTES);
    h.deploy("long.bpmn", &with_input(&chain)).unwrap();
    let pi = h.create("mapped", "{}");
    let jobs = h.activate("work", 1);
    assert_eq!(jobs.len(), 1, "{:?}", h.incidents());
    let vars: serde_json::Value = serde_json::from_str(&jobs[0].job.variables).unwrap();
    assert_eq!(vars["x"], serde_json::json!(terms));
    h.complete(jobs[0].key, "{}").unwrap();
    assert!(h.is_completed(pi));
    let or_chain = vec!["a"; 3_000].join(" or ");
    h.deploy("chain.bpmn", &with_input(&or_chain)).unwrap();
    h.create("mapped", r#"{"a": false}"#);
    // A path is a chain of nested lookups: bounded as nesting.
    let path = vec!["a"; 7_000].join(".");
    let r = rejection_of(h.deploy("path.bpmn", &with_input(&path)));
    assert!(r.reason.contains("nests deeper than"), "{}", r.reason);
    assert!(h.incidents().is_empty(), "{:?}", h.incidents());
}

fn deep_json() -> String {
    format!(r#"{{"a": {}1{}}}"#, "[".repeat(DEEP), "]".repeat(DEEP))
}

#[test]
fn deeply_nested_variables_are_rejected() {
    let mut h = Harness::new();
    h.deploy("one.bpmn", &one_task("one")).unwrap();
    let deep = deep_json();
    let r = rejection_of(h.request(create_command("one", -1, &deep, false)));
    assert_eq!(r.rejection_type, RejectionType::InvalidArgument);
    assert!(r.reason.contains("at most 128 levels"), "{}", r.reason);

    let pi = h.create("one", "{}");
    let r = rejection_of(h.set_variables(pi, &deep, false));
    assert_eq!(r.rejection_type, RejectionType::InvalidArgument);
    assert!(r.reason.contains("at most 128 levels"), "{}", r.reason);

    let jobs = h.activate("work", 1);
    let r = rejection_of(h.complete(jobs[0].key, &deep));
    assert_eq!(r.rejection_type, RejectionType::InvalidArgument);
    assert!(r.reason.contains("at most 128 levels"), "{}", r.reason);
    // Nothing was half applied: the job completes with good variables.
    h.complete(jobs[0].key, r#"{"ok": [[1]]}"#).unwrap();
    assert!(h.is_completed(pi));
}

#[test]
fn context_put_with_unbounded_keys_gives_null() {
    let mut h = Harness::new();
    // Keys computed by the expression or taken from a variable: past the
    // nesting limit the result is null (a suppressed failure), as any
    // built-in given a bad argument, and nothing recurses per key.
    let computed = with_input("context put({}, for i in 1..100000 return &quot;k&quot;, 1)");
    h.deploy("computed.bpmn", &computed).unwrap();
    h.create("mapped", "{}");
    h.deploy("keys.bpmn", &with_input("context put({}, path, 1)"))
        .unwrap();
    let keys = serde_json::json!({ "path": vec!["k"; DEEP] }).to_string();
    h.create("mapped", &keys);
    for job in h.activate("work", 2) {
        let vars: serde_json::Value = serde_json::from_str(&job.job.variables).unwrap();
        assert_eq!(vars["x"], serde_json::Value::Null, "{}", job.job.variables);
        h.complete(job.key, "{}").unwrap();
    }
    // A few keys evaluate as before.
    h.create("mapped", r#"{"path": ["a", "b"]}"#);
    let jobs = h.activate("work", 1);
    assert_eq!(jobs.len(), 1, "{:?}", h.incidents());
    assert!(
        jobs[0].job.variables.contains(r#""x":{"a":{"b":1}}"#),
        "{}",
        jobs[0].job.variables
    );
    still_serves(&mut h);
}
