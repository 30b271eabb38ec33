//! Fuzzing (proptest): expressions built from a soup of FEEL tokens, and
//! arbitrary text, never panic the compiler or the evaluator, and the same
//! expression evaluated twice gives the same value (no hidden state).
//!
//! `PROPTEST_CASES` sets the number of cases: the default (256) in the test
//! suite, many more in `perf/fuzz.sh`.

use feel::{compile, compile_unary_tests, Context, Value};
use proptest::prelude::*;

/// Pieces of FEEL, glued with spaces: literals, names, operators, keywords,
/// built-in calls and unbalanced brackets.
const TOKENS: &[&str] = &[
    "1",
    "0",
    "-1",
    "2.5",
    "1e3",
    "\"s\"",
    "\"\"",
    "null",
    "true",
    "false",
    "x",
    "y",
    "xs",
    "ctx",
    "ctx.a",
    "item",
    "?",
    "+",
    "-",
    "*",
    "/",
    "**",
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "and",
    "or",
    "not(",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ":",
    ",",
    "..",
    ".",
    "if",
    "then",
    "else",
    "for",
    "in",
    "return",
    "some",
    "every",
    "satisfies",
    "between",
    "instance of",
    "function(a)",
    "a",
    "number",
    "string",
    "date(\"2024-02-29\")",
    "time(\"10:00:00\")",
    "date and time(\"2024-01-01T00:00:00@Europe/Berlin\")",
    "duration(\"P1DT2H\")",
    "@\"P1Y\"",
    "now()",
    "today()",
    "sum(",
    "count(",
    "substring(",
    "string length(",
    "upper case(",
    "matches(",
    "replace(",
    "split(",
    "sort(",
    "append(",
    "flatten(",
    "get value(",
    "context put(",
    "list contains(",
    "abs(",
    "floor(",
    "decimal(",
    "round half up(",
    "number(",
    "is defined(",
    "distinct values(",
    "index of(",
    "min(",
    "max(",
    "mean(",
    "extract(",
    "day of week(",
    "week of year(",
    "years and months duration(",
    "range(",
    "ctx[a > 1]",
    "xs[1]",
    "xs[-1]",
    "xs[item > 1]",
    "\"a\\\\u0041\"",
    "\"\\\"\"",
    ">= 3",
    "[1..5]",
    "(1..5)",
    "-",
    "not(3)",
    "\"x\" in xs",
];

fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 1..24).prop_map(|t| t.join(" "))
}

/// Well-formed expressions: literals and names combined by operators,
/// calls of built-in functions, conditionals, loops, quantifiers, filters,
/// ranges, lists and contexts, so that most cases reach the evaluator.
fn expression() -> impl Strategy<Value = String> {
    let leaf = prop::sample::select(
        &[
            "1",
            "-2.5",
            "1e2",
            "0",
            "\"ab\"",
            "null",
            "true",
            "x",
            "y",
            "xs",
            "ctx",
            "ctx.a",
            "date(\"2024-02-29\")",
            "duration(\"PT1H\")",
            "@\"P1M\"",
            "date and time(\"2024-03-31T02:30:00@Europe/Berlin\")",
            "[]",
            "{}",
        ][..],
    )
    .prop_map(str::to_string);
    leaf.prop_recursive(4, 48, 4, |inner| {
        let builtin = prop::sample::select(
            &[
                "abs",
                "floor",
                "ceiling",
                "sum",
                "count",
                "min",
                "max",
                "mean",
                "string",
                "number",
                "string length",
                "upper case",
                "substring",
                "contains",
                "starts with",
                "split",
                "sort",
                "reverse",
                "append",
                "concatenate",
                "flatten",
                "distinct values",
                "list contains",
                "index of",
                "is defined",
                "get value",
                "get entries",
                "context put",
                "context merge",
                "decimal",
                "round up",
                "modulo",
                "sqrt",
                "log",
                "exp",
                "odd",
                "even",
                "date",
                "time",
                "date and time",
                "duration",
                "years and months duration",
                "day of week",
                "month of year",
                "is empty",
                "string join",
                "replace",
                "matches",
                "now",
                "today",
                "last day of month",
            ][..],
        );
        let op = prop::sample::select(
            &[
                "+", "-", "*", "/", "**", "=", "!=", "<", "<=", ">", ">=", "and", "or", "in",
            ][..],
        );
        prop_oneof![
            (inner.clone(), op, inner.clone()).prop_map(|(a, o, b)| format!("({a}) {o} ({b})")),
            (builtin, prop::collection::vec(inner.clone(), 0..3))
                .prop_map(|(f, args)| format!("{f}({})", args.join(", "))),
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(c, t, e)| format!("if {c} then {t} else {e}")),
            (inner.clone(), inner.clone()).prop_map(|(l, b)| format!("for item in {l} return {b}")),
            (inner.clone(), inner.clone())
                .prop_map(|(l, b)| format!("some item in {l} satisfies {b}")),
            (inner.clone(), inner.clone()).prop_map(|(l, f)| format!("({l})[{f}]")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("[{a}..{b}]")),
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            (inner.clone(), inner).prop_map(|(a, b)| format!("{{a: {a}, b: {b}}}.b")),
        ]
    })
}

fn variables() -> serde_json::Map<String, serde_json::Value> {
    serde_json::json!({
        "x": 3, "y": "text", "xs": [1, 2, 3], "ctx": {"a": 1, "b": [true, null]}
    })
    .as_object()
    .expect("an object")
    .clone()
}

fn evaluate_twice(text: &str) {
    let vars = variables();
    let ctx = Context::new(&vars, 1_700_000_000_000);
    if let Ok(expression) = compile(text) {
        let first: Value = expression.evaluate(&ctx);
        let second: Value = expression.evaluate(&ctx);
        assert_eq!(format!("{first:?}"), format!("{second:?}"), "{text}");
    }
    if let Ok(tests) = compile_unary_tests(text) {
        for input in [Value::Null, Value::Bool(true)] {
            let _ = tests.matches(&input, &ctx);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn token_soup_never_panics(text in soup()) {
        evaluate_twice(&text);
    }

    #[test]
    fn well_formed_expressions_never_panic(text in expression()) {
        evaluate_twice(&text);
    }

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        evaluate_twice(&text);
    }
}

/// The well-formed generator is worth its name: most of its expressions
/// compile, so the fuzzing reaches the evaluator.
#[test]
fn most_well_formed_expressions_compile() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = expression();
    let total = 500;
    let compiled = (0..total)
        .filter(|_| {
            let text = strategy.new_tree(&mut runner).expect("a case").current();
            compile(&text).is_ok()
        })
        .count();
    assert!(compiled * 10 >= total * 9, "{compiled} of {total} compile");
}
