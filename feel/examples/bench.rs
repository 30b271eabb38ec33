//! Compile-once evaluation with `feel` against the engine's current path
//! (dsntk: parse and evaluate per call, variables converted from JSON text
//! each time). Prints ns per evaluation for both and their ratio.
//!
//! `cargo run --release -p feel --features bench-dsntk --example bench`

use dsntk_feel::context::FeelContext;
use dsntk_feel::values::Value as DValue;
use dsntk_feel::{FeelNumber, FeelScope, Name};
use serde_json::Value as Json;
use std::hint::black_box;
use std::str::FromStr;
use std::time::Instant;

/// Evaluations per measured path.
const ROUNDS: u32 = 20_000;

const EXPRESSION: &str = r#"amount > 100 and customer.tier = "gold""#;

/// The five variables, as the engine holds them: name and JSON text.
const VARIABLES: [(&str, &str); 5] = [
    ("amount", "150"),
    (
        "customer",
        r#"{"tier": "gold", "name": "Ada", "since": 2019}"#,
    ),
    ("orderId", r#""o-1234""#),
    (
        "items",
        r#"[{"sku": "a", "qty": 2}, {"sku": "b", "qty": 1}]"#,
    ),
    ("express", "true"),
];

fn dsntk_value(j: &Json) -> DValue {
    match j {
        Json::Null => DValue::Null(None),
        Json::Bool(b) => DValue::Boolean(*b),
        Json::Number(n) => DValue::Number(match n.as_i64() {
            Some(i) => FeelNumber::from(i),
            None => FeelNumber::from_str(&n.to_string()).expect("JSON number"),
        }),
        Json::String(s) => DValue::String(s.clone()),
        Json::Array(a) => DValue::List(a.iter().map(dsntk_value).collect()),
        Json::Object(o) => {
            let mut c = FeelContext::default();
            for (k, v) in o {
                c.set_entry(&Name::from(k.as_str()), dsntk_value(v));
            }
            DValue::Context(c)
        }
    }
}

/// The engine's current path (engine/src/expression.rs), per evaluation.
fn dsntk_eval() -> bool {
    let mut ctx = FeelContext::default();
    for (name, text) in VARIABLES {
        let json: Json = serde_json::from_str(text).expect("JSON");
        ctx.set_entry(&Name::from(name), dsntk_value(&json));
    }
    let scope = FeelScope::from(ctx);
    let ast = dsntk_feel_parser::parse_expression(&scope, EXPRESSION, false).expect("valid FEEL");
    matches!(
        dsntk_feel_evaluator::evaluate(&scope, &ast),
        DValue::Boolean(true)
    )
}

/// `feel`, compiled once; every variable parsed from the same JSON text per call.
fn feel_eval_from_text(e: &feel::Expression) -> bool {
    let mut vars = serde_json::Map::new();
    for (name, text) in VARIABLES {
        vars.insert(name.to_string(), serde_json::from_str(text).expect("JSON"));
    }
    let ctx = feel::Context::new(&vars, 0);
    matches!(feel::to_json(&e.evaluate(&ctx)), Json::Bool(true))
}

/// `feel`, compiled once; only the variables the expression names are parsed.
fn feel_eval_lazy_text(e: &feel::Expression) -> bool {
    let vars = feel::JsonTextVariables(&VARIABLES);
    let ctx = feel::Context::new(&vars, 0);
    matches!(feel::to_json(&e.evaluate(&ctx)), Json::Bool(true))
}

/// `feel`, compiled once; variables already parsed (lazy conversion on lookup).
fn feel_eval(e: &feel::Expression, vars: &serde_json::Map<String, Json>) -> bool {
    let ctx = feel::Context::new(vars, 0);
    matches!(e.evaluate(&ctx), feel::Value::Bool(true))
}

fn ns_per_eval(mut f: impl FnMut() -> bool) -> f64 {
    assert!(f(), "the expression must evaluate to true");
    let start = Instant::now();
    for _ in 0..ROUNDS {
        black_box(f());
    }
    start.elapsed().as_nanos() as f64 / f64::from(ROUNDS)
}

fn main() {
    let compiled = feel::compile(EXPRESSION).expect("valid FEEL");
    let mut parsed = serde_json::Map::new();
    for (name, text) in VARIABLES {
        parsed.insert(name.to_string(), serde_json::from_str(text).expect("JSON"));
    }
    let baseline = ns_per_eval(dsntk_eval);
    let from_text = ns_per_eval(|| feel_eval_from_text(&compiled));
    let lazy = ns_per_eval(|| feel_eval_lazy_text(&compiled));
    let ready = ns_per_eval(|| feel_eval(&compiled, &parsed));
    let compile = ns_per_eval(|| feel::compile(EXPRESSION).is_ok());
    println!("expression: {EXPRESSION} (5 variables)");
    println!("dsntk parse + evaluate per call (engine today): {baseline:>9.0} ns/eval");
    println!(
        "feel compiled once, variables from JSON text:   {from_text:>9.0} ns/eval  ({:.1}x faster)",
        baseline / from_text
    );
    println!(
        "feel compiled once, variables already parsed:   {ready:>9.0} ns/eval  ({:.1}x faster)",
        baseline / ready
    );
    println!(
        "feel compiled once, named variables from text:  {lazy:>9.0} ns/eval  ({:.1}x faster)",
        baseline / lazy
    );
    println!("feel compile alone:                             {compile:>9.0} ns");
}
