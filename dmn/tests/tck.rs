//! Runs the DMN TCK (compliance levels 2 and 3): every model, every test
//! file, every expected result. Prints the pass count per level and
//! overall, and fails when a case outside `tck-known-failures.txt` fails or
//! when a listed case passes (so the list stays true). A list line is
//! `<case id> # <reason>`; `TCK_PRINT_FAILURES=1` prints every failure.
//!
//! The TCK is read from `$DMN_TCK_DIR`, else `../shared/dmn-tck` beside the
//! repository (where CI puts it); a missing TCK fails the test.

use bigdecimal::BigDecimal;
use dmn::Drg;
use feel::{Entries, Value};
use roxmltree::Node;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

/// A fixed instant for `now()`/`today()`: 2026-03-01T12:00:00Z.
const NOW_MS: i64 = 1_772_366_400_000;
const LEVELS: [&str; 2] = ["compliance-level-2", "compliance-level-3"];
const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

fn tck_dir() -> PathBuf {
    std::env::var_os("DMN_TCK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/dmn-tck"))
}

fn elements<'a, 'i>(n: Node<'a, 'i>, tag: &'a str) -> impl Iterator<Item = Node<'a, 'i>> {
    n.children()
        .filter(move |c| c.is_element() && c.tag_name().name() == tag)
}

fn feel_call(function: &str, text: &str) -> Value {
    let f = Value::Function(Arc::new(feel::Function::Builtin(match function {
        "date" => "date",
        "time" => "time",
        "date and time" => "date and time",
        _ => "duration",
    })));
    let ctx = feel::Context::new(&feel::NoVariables, NOW_MS);
    feel::invoke(&f, vec![Value::string(text)], &ctx).value
}

/// A TCK `valueType` element as a FEEL value.
fn tck_value(n: Node) -> Value {
    if let Some(v) = elements(n, "value").next() {
        if v.attribute((XSI, "nil")) == Some("true") {
            return Value::Null;
        }
        let text = v.text().unwrap_or("");
        let ty = v.attribute((XSI, "type")).unwrap_or("xsd:string");
        let ty = ty.rsplit(':').next().unwrap_or(ty);
        return match ty {
            "decimal" | "double" | "integer" | "int" | "long" | "float" => {
                BigDecimal::from_str(text.trim()).map_or(Value::Null, Value::Number)
            }
            "boolean" => Value::Bool(text.trim() == "true"),
            "date" => feel_call("date", text.trim()),
            "time" => feel_call("time", text.trim()),
            "dateTime" => feel_call("date and time", text.trim()),
            "duration" => feel_call("duration", text.trim()),
            _ => Value::string(text),
        };
    }
    if let Some(l) = elements(n, "list").next() {
        if l.attribute((XSI, "nil")) == Some("true") {
            return Value::Null;
        }
        return Value::list(elements(l, "item").map(tck_value).collect());
    }
    let components: Vec<Node> = elements(n, "component").collect();
    if !components.is_empty() {
        let mut e = Entries::new();
        for c in components {
            let v = if c.attribute((XSI, "nil")) == Some("true") {
                Value::Null
            } else {
                tck_value(c)
            };
            e.put(Arc::from(c.attribute("name").unwrap_or("")), v);
        }
        return Value::Context(Arc::new(e));
    }
    Value::Null
}

/// Expected against actual: numbers as decimals, temporals by their text.
fn same(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Null, Value::Null) => true,
        (Value::Number(a), Value::Number(b)) => a == b || close(a, b),
        (Value::List(a), Value::List(b)) => {
            a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| same(x, y))
        }
        (Value::Context(a), Value::Context(b)) => {
            a.len() == b.len() && a.iter().all(|(k, x)| b.get(k).is_some_and(|y| same(x, y)))
        }
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (
            Value::Date(_)
            | Value::Time(_)
            | Value::DateTime(_)
            | Value::YearMonth(_)
            | Value::DayTime(_),
            _,
        ) => expected.to_string() == actual.to_string(),
        _ => false,
    }
}

/// Expected numbers were often computed in binary floating point by the
/// TCK's authors (e.g. `2778.69354943277` for a 34-digit decimal result):
/// equal within a relative 1e-9.
fn close(a: &BigDecimal, b: &BigDecimal) -> bool {
    let diff = (a - b).abs();
    let scale = a.abs().max(b.abs());
    diff <= scale * BigDecimal::from_str("1e-9").expect("constant")
}

struct Outcome {
    level: usize,
    id: String,
    passed: bool,
    detail: String,
}

fn run_file(level: usize, dir: &Path, test_file: &Path, out: &mut Vec<Outcome>) {
    let folder = dir
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .to_string();
    let stem = test_file
        .file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .to_string();
    let text = std::fs::read_to_string(test_file).expect("test file is readable");
    let doc = roxmltree::Document::parse(&text).expect("test file is XML");
    let root = doc.root_element();
    let model_name = elements(root, "modelName")
        .next()
        .and_then(|n| n.text())
        .unwrap_or("")
        .to_string();
    let model_text = std::fs::read_to_string(dir.join(&model_name)).unwrap_or_default();
    let drg = Drg::parse_lenient(&model_text).map(|(d, _)| d);
    for case in elements(root, "testCase") {
        let case_id = case.attribute("id").unwrap_or("");
        let kind = case.attribute("type").unwrap_or("decision");
        let invocable = case.attribute("invocableName");
        let mut inputs = Entries::new();
        for i in elements(case, "inputNode") {
            inputs.put(Arc::from(i.attribute("name").unwrap_or("")), tck_value(i));
        }
        for r in elements(case, "resultNode") {
            let name = r.attribute("name").unwrap_or("");
            let id = format!("{}/{folder}/{stem}:{case_id}:{name}", LEVELS[level]);
            let error_expected = r.attribute("errorResult") == Some("true");
            let expected = elements(r, "expected")
                .next()
                .map_or(Value::Null, tck_value);
            let actual: Result<Value, String> = match &drg {
                Err(e) => Err(format!("parse: {e}")),
                Ok(drg) => match kind {
                    "bkm" | "decisionService" => {
                        drg.invoke(invocable.unwrap_or(name), &inputs, NOW_MS, "UTC")
                    }
                    _ => drg
                        .evaluate_by_name(name, &inputs, NOW_MS, "UTC")
                        .map(|r| r.output)
                        .map_err(|f| f.message),
                },
            };
            let (passed, detail) = match &actual {
                Ok(v) if error_expected => (v.is_null(), format!("expected an error, got {v}")),
                Err(_) if error_expected => (true, String::new()),
                Ok(v) => {
                    let ok = same(&expected, v)
                        || matches!(v, Value::Context(c) if c.get(name).is_some_and(|x| same(&expected, x)));
                    (ok, format!("expected {expected}, got {v}"))
                }
                Err(e) => (false, format!("expected {expected}, failed: {e}")),
            };
            out.push(Outcome {
                level,
                id,
                passed,
                detail,
            });
        }
    }
}

fn known_failures() -> BTreeMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tck-known-failures.txt");
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once(" # ") {
            Some((id, reason)) => (id.trim().to_string(), reason.trim().to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}

#[test]
fn tck() {
    let root = tck_dir();
    assert!(
        root.join(LEVELS[0]).is_dir(),
        "the DMN TCK is not at {} (set DMN_TCK_DIR)",
        root.display()
    );
    let mut outcomes = Vec::new();
    for (level, name) in LEVELS.iter().enumerate() {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join(name))
            .expect("level directory is readable")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        for dir in dirs {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                .expect("case directory is readable")
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    let n = p.file_name().unwrap_or_default().to_string_lossy();
                    n.contains("-test-") && n.ends_with(".xml")
                })
                .collect();
            files.sort();
            for f in files {
                run_file(level, &dir, &f, &mut outcomes);
            }
        }
    }
    for (level, name) in LEVELS.iter().enumerate() {
        let all = outcomes.iter().filter(|o| o.level == level).count();
        let ok = outcomes
            .iter()
            .filter(|o| o.level == level && o.passed)
            .count();
        println!("{name}: {ok} of {all} passed");
    }
    let ok = outcomes.iter().filter(|o| o.passed).count();
    println!("total: {ok} of {} passed", outcomes.len());

    let known = known_failures();
    let mut unexpected = Vec::new();
    let mut fixed = Vec::new();
    let mut seen = BTreeSet::new();
    for o in &outcomes {
        seen.insert(o.id.clone());
        match (o.passed, known.contains_key(&o.id)) {
            (false, false) => unexpected.push(format!("{} {}", o.id, o.detail)),
            (true, true) => fixed.push(o.id.clone()),
            _ => {}
        }
    }
    let stale: Vec<&String> = known.keys().filter(|k| !seen.contains(*k)).collect();
    if std::env::var_os("TCK_PRINT_FAILURES").is_some() {
        for o in outcomes.iter().filter(|o| !o.passed) {
            println!("FAIL {} {}", o.id, o.detail);
        }
    }
    assert!(
        unexpected.is_empty() && fixed.is_empty() && stale.is_empty(),
        "TCK cases failing but not listed in tck-known-failures.txt ({}):\n{}\n\
         listed but passing ({}):\n{}\nlisted but unknown: {stale:?}",
        unexpected.len(),
        unexpected.join("\n"),
        fixed.len(),
        fixed.join("\n")
    );
}
