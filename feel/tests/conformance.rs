//! Conformance table: every line of `cases.txt` is an expression, optional
//! variables and the expected result as JSON (see the file's header).
//! Prints the pass count and fails on any mismatch.

use serde_json::Value as Json;

/// 2024-05-17T10:30:00Z, the instant `now()` sees in these cases.
const NOW_MS: i64 = 1_715_941_800_000;

enum Expect {
    Json(Json),
    Failure,
}

fn same(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(p), Some(q)) => p == q,
            _ => {
                let (p, q) = (
                    x.as_f64().unwrap_or(f64::NAN),
                    y.as_f64().unwrap_or(f64::NAN),
                );
                p == q || (p - q).abs() <= 1e-15 * p.abs().max(q.abs())
            }
        },
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn run(line: &str) -> Result<(), String> {
    let (lhs, expected) = line.rsplit_once(" => ").ok_or("no ' => ' in line")?;
    let expect = match expected.trim() {
        "!error" => Expect::Failure,
        e => Expect::Json(
            serde_json::from_str(e).map_err(|err| format!("expected value is not JSON: {err}"))?,
        ),
    };
    let (expr, vars) = match lhs.split_once(" ;; ") {
        Some((e, v)) => (
            e,
            serde_json::from_str::<Json>(v).map_err(|err| format!("variables: {err}"))?,
        ),
        None => (lhs, Json::Object(Default::default())),
    };
    let (unary, expr) = match expr.strip_prefix("T ") {
        Some(tests) => (true, tests),
        None => (false, expr),
    };
    let empty = serde_json::Map::new();
    let map = vars.as_object().unwrap_or(&empty);
    let ctx = feel::Context::new(map, NOW_MS);
    let outcome = if unary {
        let tests = feel::compile_unary_tests(expr).map_err(|e| format!("parse error {e}"))?;
        let input = map
            .get("input")
            .map(feel::from_json)
            .unwrap_or(feel::Value::Null);
        tests.evaluate(&input, &ctx)
    } else {
        let compiled = feel::compile(expr).map_err(|e| format!("parse error {e}"))?;
        compiled.evaluate_detailed(&ctx)
    };
    match (expect, outcome.failure) {
        (Expect::Failure, Some(_)) => Ok(()),
        (Expect::Failure, None) => Err(format!(
            "expected a failure, got {}",
            feel::to_json(&outcome.value)
        )),
        (Expect::Json(_), Some(f)) => Err(format!("failed: {f}")),
        (Expect::Json(want), None) => {
            let got = feel::to_json(&outcome.value);
            if same(&got, &want) {
                Ok(())
            } else {
                Err(format!("got {got}, warnings {:?}", outcome.warnings))
            }
        }
    }
}

#[test]
fn conformance_table() {
    let text = include_str!("cases.txt");
    let (mut passed, mut failed) = (0, Vec::new());
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match run(line) {
            Ok(()) => passed += 1,
            Err(e) => failed.push(format!("cases.txt:{}: {line}\n    {e}", n + 1)),
        }
    }
    println!("conformance: {passed} passed, {} failed", failed.len());
    for f in &failed {
        println!("{f}");
    }
    assert!(
        failed.is_empty(),
        "{} conformance cases failed",
        failed.len()
    );
    assert!(passed >= 300, "only {passed} cases in the table");
}
