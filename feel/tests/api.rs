//! The public surface: determinism of `now()`/`today()`, suppressed
//! failures and strict evaluation, lazy variables, and the JSON bridge.

use feel::{compile, compile_unary_tests, from_json, to_json, Context, NoVariables, Value};
use serde_json::json;

const NOW_MS: i64 = 1_700_000_000_000; // 2023-11-14T22:13:20Z

fn eval_in(src: &str, now_ms: i64, zone: &str) -> serde_json::Value {
    let ctx = Context::new(&NoVariables, now_ms)
        .with_zone(zone)
        .expect("known zone");
    to_json(&compile(src).expect("valid FEEL").evaluate(&ctx))
}

#[test]
fn now_and_today_come_from_the_environment_only() {
    assert_eq!(
        eval_in("now()", NOW_MS, "UTC"),
        json!("2023-11-14T22:13:20Z[UTC]")
    );
    assert_eq!(
        eval_in("now()", NOW_MS, "Europe/Berlin"),
        json!("2023-11-14T23:13:20+01:00[Europe/Berlin]")
    );
    assert_eq!(eval_in("today()", NOW_MS, "UTC"), json!("2023-11-14"));
    assert_eq!(
        eval_in("today()", NOW_MS, "Asia/Tokyo"),
        json!("2023-11-15")
    );
    assert_eq!(
        eval_in("now()", NOW_MS, "+05:30"),
        json!("2023-11-15T03:43:20+05:30")
    );
    assert_eq!(
        eval_in("now()", NOW_MS + 1_500, "UTC"),
        json!("2023-11-14T22:13:21.500Z[UTC]")
    );
    // The host's TZ variable changes nothing.
    for tz in ["America/New_York", "Asia/Kolkata", "UTC"] {
        std::env::set_var("TZ", tz);
        assert_eq!(
            eval_in("now()", NOW_MS, "UTC"),
            json!("2023-11-14T22:13:20Z[UTC]")
        );
        assert_eq!(
            eval_in("today()", NOW_MS, "Asia/Tokyo"),
            json!("2023-11-15")
        );
        assert_eq!(
            eval_in(
                r#"date and time("2024-01-01T10:00:00@Europe/Paris") - date and time("2024-01-01T10:00:00Z")"#,
                0,
                "UTC"
            ),
            json!("-PT1H")
        );
    }
}

#[test]
fn unknown_zone_is_rejected_with_the_name() {
    let err = Context::new(&NoVariables, 0)
        .with_zone("Mars/Olympus")
        .err()
        .expect("unknown zone");
    assert!(err.to_string().contains("Mars/Olympus"));
}

#[test]
fn invalid_operations_are_null_with_suppressed_failures() {
    let vars = json!({"a": "text"});
    let ctx = Context::new(vars.as_object().expect("object"), 0);
    let out = compile("a + 1").expect("valid").evaluate_detailed(&ctx);
    assert!(out.value.is_null());
    assert!(out.failure.is_none());
    assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
    let out = compile("missing > 1")
        .expect("valid")
        .evaluate_detailed(&ctx);
    assert!(out.value.is_null());
    assert!(
        out.warnings[0].contains("No variable found with name 'missing'"),
        "{:?}",
        out.warnings
    );
    // `is defined` looks without complaining.
    let out = compile("is defined(missing.x)")
        .expect("valid")
        .evaluate_detailed(&ctx);
    assert_eq!(to_json(&out.value), json!(false));
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
}

#[test]
fn strict_evaluation_reports_failures() {
    let ctx = Context::new(&NoVariables, 0);
    let err = compile("nosuchfn(1)")
        .expect("valid")
        .evaluate_strict(&ctx)
        .expect_err("unknown function");
    assert!(err.message.contains("nosuchfn"), "{}", err.message);
    let err = compile(r#"assert(1, 1 > 2, "one is small")"#)
        .expect("valid")
        .evaluate_strict(&ctx)
        .expect_err("assertion");
    assert!(err.message.contains("one is small"), "{}", err.message);
    let err = compile("substring(\"a\")")
        .expect("valid")
        .evaluate_strict(&ctx)
        .expect_err("arity");
    assert!(
        err.message
            .contains("substring(string, start position, length?)"),
        "{}",
        err.message
    );
    // Non-strict: the same failures are null.
    assert!(compile("nosuchfn(1)")
        .expect("valid")
        .evaluate(&ctx)
        .is_null());
    assert_eq!(
        to_json(
            &compile("1 + 1")
                .expect("valid")
                .evaluate_strict(&ctx)
                .expect("fine")
        ),
        json!(2)
    );
}

#[test]
fn compile_once_evaluate_many() {
    let e = compile("amount > 100 and customer.tier = \"gold\"").expect("valid");
    for (amount, tier, want) in [
        (150, "gold", true),
        (50, "gold", false),
        (150, "silver", false),
    ] {
        let vars = json!({"amount": amount, "customer": {"tier": tier}});
        let ctx = Context::new(vars.as_object().expect("object"), 0);
        assert_eq!(to_json(&e.evaluate(&ctx)), json!(want));
    }
}

#[test]
fn unary_tests_match_inputs() {
    let t = compile_unary_tests("[1..10], > 100").expect("valid");
    let ctx = Context::new(&NoVariables, 0);
    assert!(t.matches(&Value::int(5), &ctx));
    assert!(t.matches(&Value::int(101), &ctx));
    assert!(!t.matches(&Value::int(50), &ctx));
    let any = compile_unary_tests("-").expect("valid");
    assert!(any.matches(&Value::Null, &ctx));
    let e = compile_unary_tests("< ").expect_err("missing operand");
    assert_eq!(e.position, 2);
}

#[test]
fn json_round_trip_is_exact() {
    let j = json!({
        "int": 9007199254740993_i64,
        "dec": 0.1,
        "neg": -12.5,
        "list": [1, "a", null, true, {"x": []}],
        "nested": {"a": {"b": {"c": 1}}}
    });
    assert_eq!(to_json(&from_json(&j)), j);
    let vars = j.as_object().expect("object");
    let ctx = Context::new(vars, 0);
    // 2^53 + 1 survives arithmetic exactly (no f64 detour).
    assert_eq!(
        to_json(&compile("int + 1").expect("valid").evaluate(&ctx)),
        json!(9007199254740994_i64)
    );
    assert_eq!(
        to_json(&compile("dec * 3").expect("valid").evaluate(&ctx)),
        json!(0.3)
    );
}

#[test]
fn temporal_values_leave_as_iso_strings() {
    let cases = [
        (r#"@"2024-02-29""#, json!("2024-02-29")),
        (r#"@"13:45:00+02:00""#, json!("13:45:00+02:00")),
        (
            r#"@"2024-02-29T13:45:00.250@Europe/Berlin""#,
            json!("2024-02-29T13:45:00.250+01:00[Europe/Berlin]"),
        ),
        (r#"duration("P1Y2M")"#, json!("P1Y2M")),
        (r#"duration("P1DT2H3M4.5S")"#, json!("P1DT2H3M4.5S")),
        (r#"duration("PT0S")"#, json!("P0D")),
        (r#"[1..5)"#, json!("[1..5)")),
    ];
    for (src, want) in cases {
        assert_eq!(eval_in(src, 0, "UTC"), want, "{src}");
    }
}

#[test]
fn every_documented_builtin_is_registered() {
    let readme = include_str!("../README.md");
    for name in feel::builtin_names() {
        assert!(
            readme.contains(&format!("`{name}(")),
            "README does not list `{name}(`"
        );
    }
}

#[test]
fn json_text_variables_are_read_innermost_first_and_lazily() {
    let pairs = [
        ("x", "1"),
        ("x", "2"),
        ("broken", "{not json"),
        ("y", r#"{"a": [1, 2]}"#),
    ];
    let vars = feel::JsonTextVariables(&pairs);
    let ctx = Context::new(&vars, 0);
    let eval = |src: &str| to_json(&compile(src).expect("valid").evaluate(&ctx));
    assert_eq!(eval("x"), json!(1));
    assert_eq!(eval("y.a[2] + x"), json!(3));
    assert_eq!(eval("broken"), json!(null));
    assert_eq!(eval("is defined(nope)"), json!(false));
}
