//! Bounded stack: pathological nesting fails cleanly with a parse error on a
//! thread with a small stack, and the deepest accepted expression still
//! evaluates there.

use feel::{compile, Context, NoVariables, Value, MAX_NESTING_DEPTH};

/// Stack of the threads these tests run on.
const SMALL_STACK_BYTES: usize = 256 * 1024;
/// Size of the pathological inputs.
const HUGE: usize = 100_000;

fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(SMALL_STACK_BYTES)
        .spawn(f)
        .expect("spawn a test thread")
        .join()
        .expect("the test thread did not overflow its stack")
}

fn rejected(src: String) {
    let err = on_small_stack(move || compile(&src).map(|_| ()).map_err(|e| e.to_string()));
    let msg = err.expect_err("pathological input must be rejected");
    assert!(msg.contains("nests deeper than"), "unexpected error: {msg}");
}

#[test]
fn nested_parentheses_are_rejected() {
    rejected(format!("{}1{}", "(".repeat(HUGE), ")".repeat(HUGE)));
}

#[test]
fn nested_brackets_are_rejected() {
    rejected(format!("{}1{}", "[".repeat(HUGE), "]".repeat(HUGE)));
}

#[test]
fn nested_contexts_are_rejected() {
    rejected(format!("{}1{}", "{a:".repeat(HUGE), "}".repeat(HUGE)));
}

#[test]
fn long_operator_chains_are_flat_and_evaluate_on_a_small_stack() {
    let sum = vec!["1"; HUGE].join("+");
    let all = vec!["true"; HUGE].join(" and ");
    let (sum, all) = on_small_stack(move || {
        let ctx = Context::new(&NoVariables, 0);
        let s = compile(&sum).expect("a flat chain is accepted");
        let a = compile(&all).expect("a flat chain is accepted");
        (
            feel::to_json(&s.evaluate(&ctx)),
            feel::to_json(&a.evaluate(&ctx)),
        )
    });
    assert_eq!(sum, serde_json::json!(HUGE));
    assert_eq!(all, serde_json::json!(true));
}

#[test]
fn other_deep_chains_are_rejected() {
    rejected(format!("a{}", ".b".repeat(HUGE)));
    rejected(format!("a{}", "[1]".repeat(HUGE)));
    rejected(format!("{}1", "-".repeat(HUGE)));
    rejected(format!("{}1{}", "abs(".repeat(HUGE), ")".repeat(HUGE)));
    rejected(format!("{}1", "if true then 1 else ".repeat(HUGE / 4)));
    rejected(vec!["1"; HUGE].join(" = "));
}

#[test]
fn deepest_accepted_expression_evaluates_on_a_small_stack() {
    // Parentheses count one level each, the top level one more.
    let depth = MAX_NESTING_DEPTH - 1;
    let src = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
    let json = on_small_stack(move || {
        let e = compile(&src).expect("nesting within the limit is accepted");
        feel::to_json(&e.evaluate(&Context::new(&NoVariables, 0)))
    });
    let mut v = &json;
    let mut levels = 0;
    while let Some(inner) = v.as_array() {
        v = &inner[0];
        levels += 1;
    }
    assert_eq!(levels, depth);
    assert_eq!(v, &serde_json::json!(1));

    let depth = MAX_NESTING_DEPTH - 1;
    let src = format!("{}1{}", "{a:".repeat(depth), "}".repeat(depth));
    let ok = on_small_stack(move || {
        let e = compile(&src).expect("nesting within the limit is accepted");
        matches!(
            e.evaluate(&Context::new(&NoVariables, 0)),
            Value::Context(_)
        )
    });
    assert!(ok);
}

#[test]
fn parse_errors_name_the_position() {
    let e = compile("1 + * 2").expect_err("not FEEL");
    assert_eq!(e.position, 4);
    assert!(e.message.contains("expected a value"), "{}", e.message);
    let e = compile("\"open").expect_err("unterminated");
    assert_eq!(e.position, 0);
    let e = compile("[1, 2").expect_err("unclosed list");
    assert_eq!(e.position, 5);
}

#[test]
fn deep_json_is_cut_at_the_value_depth_limit() {
    let mut j = serde_json::json!(1);
    for _ in 0..feel::MAX_VALUE_DEPTH + 10 {
        j = serde_json::json!([j]);
    }
    let v = feel::from_json(&j);
    let mut depth = 0;
    let mut cur = &v;
    while let Value::List(l) = cur {
        cur = &l[0];
        depth += 1;
    }
    assert_eq!(depth, feel::MAX_VALUE_DEPTH + 1);
    assert!(cur.is_null());
}

#[test]
fn runaway_recursion_is_an_evaluation_failure() {
    // Self-application: the only way to recurse, since a function cannot name itself.
    let err = on_small_stack(|| {
        let e = compile("{f: function(g) g(g), r: f(f)}.r").expect("valid FEEL");
        e.evaluate_strict(&Context::new(&NoVariables, 0))
            .map(|_| ())
            .map_err(|e| e.message)
    });
    let msg = err.expect_err("runaway recursion must fail");
    assert!(msg.contains("nests deeper than"), "{msg}");
}
