//! What the DMN layer relies on: host functions, known names with spaces,
//! dotted names read as paths, closures capturing the variables they read,
//! and one depth budget shared by nested evaluations.

use feel::{
    compile, compile_with_names, invoke_named, Context, Entries, Function, KnownNames,
    NativeFunction, Value,
};
use std::sync::Arc;

fn vars(pairs: &[(&str, Value)]) -> Entries {
    let mut e = Entries::new();
    for (k, v) in pairs {
        e.put(Arc::from(*k), v.clone());
    }
    e
}

/// Doubles its argument by evaluating FEEL again, one level deeper.
#[derive(Debug)]
struct Double {
    params: Vec<Arc<str>>,
    body: feel::Expression,
}

impl NativeFunction for Double {
    fn params(&self) -> &[Arc<str>] {
        &self.params
    }

    fn invoke(&self, args: Vec<Value>, ctx: &Context) -> Result<Value, String> {
        let scope = vars(&[("x", args[0].clone())]);
        let inner = ctx.nested(&scope);
        self.body.evaluate_strict(&inner).map_err(|e| e.message)
    }
}

fn double(body: &str) -> Value {
    Value::Function(Arc::new(Function::Native(Arc::new(Double {
        params: vec![Arc::from("x")],
        body: compile(body).unwrap(),
    }))))
}

#[test]
fn host_functions_take_positional_and_named_arguments_and_check_arity() {
    let v = vars(&[("twice", double("x * 2"))]);
    let ctx = Context::new(&v, 0);
    assert_eq!(
        compile("twice(21)").unwrap().evaluate(&ctx).to_string(),
        "42"
    );
    assert_eq!(
        compile("twice(x: 4)").unwrap().evaluate(&ctx).to_string(),
        "8"
    );
    let o = compile("twice(1, 2)").unwrap().evaluate_detailed(&ctx);
    assert!(o.failure.unwrap().contains("expected 1 arguments"));
    let o = invoke_named(
        &double("x + 1"),
        vec![(Arc::from("x"), Value::int(1))],
        &ctx,
    );
    assert_eq!(o.value.to_string(), "2");
}

#[test]
fn nested_evaluations_share_one_depth_budget() {
    #[derive(Debug)]
    struct Forever;
    impl NativeFunction for Forever {
        fn params(&self) -> &[Arc<str>] {
            &[]
        }
        fn invoke(&self, _: Vec<Value>, ctx: &Context) -> Result<Value, String> {
            let f = Value::Function(Arc::new(Function::Native(Arc::new(Forever))));
            let scope = vars(&[("again", f)]);
            let inner = ctx.nested(&scope);
            compile("again()")
                .unwrap()
                .evaluate_strict(&inner)
                .map_err(|e| e.message)
        }
    }
    let f = Value::Function(Arc::new(Function::Native(Arc::new(Forever))));
    let v = vars(&[("again", f)]);
    let o = compile("again()")
        .unwrap()
        .evaluate_detailed(&Context::new(&v, 0));
    assert!(o.failure.unwrap().contains("deeper than"));
}

#[test]
fn known_names_with_spaces_and_operators_read_as_one_name() {
    let names = KnownNames::new(["Monthly Salary", "Is Affordable?", "plain"]);
    let v = vars(&[
        ("Monthly Salary", Value::int(1000)),
        ("Is Affordable?", Value::Bool(true)),
    ]);
    let ctx = Context::new(&v, 0);
    let e =
        compile_with_names("if Is Affordable? then Monthly Salary * 12 else 0", &names).unwrap();
    assert_eq!(e.evaluate(&ctx).to_string(), "12000");
    // Inside strings and as part of longer names they stay text.
    let e = compile_with_names("\"Monthly Salary\"", &names).unwrap();
    assert_eq!(e.evaluate(&ctx).to_string(), "Monthly Salary");
    assert!(compile("Monthly Salary * 12").is_err());
}

#[test]
fn an_unbound_dotted_name_reads_as_a_path() {
    let names = KnownNames::new(["Person.Name"]);
    let mut person = Entries::new();
    person.put(Arc::from("Name"), Value::string("Bob"));
    let v = vars(&[("Person", Value::Context(Arc::new(person)))]);
    let e = compile_with_names("Person.Name", &names).unwrap();
    assert_eq!(e.evaluate(&Context::new(&v, 0)).to_string(), "Bob");
    let bound = vars(&[("Person.Name", Value::string("Alice"))]);
    assert_eq!(e.evaluate(&Context::new(&bound, 0)).to_string(), "Alice");
}

#[test]
fn function_values_capture_the_variables_their_body_reads() {
    let v = vars(&[("a", Value::int(10))]);
    let f = compile("function(b) a * b")
        .unwrap()
        .evaluate(&Context::new(&v, 0));
    let other = vars(&[("g", f)]);
    let e = compile("g(2)").unwrap();
    assert_eq!(e.evaluate(&Context::new(&other, 0)).to_string(), "20");
}
