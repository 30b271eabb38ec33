//! DMN functions as FEEL function values: business knowledge models,
//! decision services and boxed function definitions. Each holds the graph
//! (`Arc`) and evaluates its body in a scope of its parameters (conformed
//! to their types) and the knowledge it requires, one call level deeper
//! than its caller, so recursion is bounded by FEEL's depth budget.

use crate::eval::{eval_boxed, Run, Scope};
use crate::model::{FunctionDef, Invocable, TypeRef};
use crate::typing::check_type;
use crate::Graph;
use feel::{Context, Entries, Function, NativeFunction, NoVariables, Value, Variables};
use std::sync::Arc;

/// A business knowledge model as a function.
#[derive(Debug)]
struct BkmFunction {
    graph: Arc<Graph>,
    index: usize,
    params: Vec<Arc<str>>,
}

/// A decision service as a function of its input decisions and input data.
#[derive(Debug)]
struct ServiceFunction {
    graph: Arc<Graph>,
    index: usize,
    params: Vec<Arc<str>>,
}

/// A boxed function definition with the names visible where it was defined.
#[derive(Debug)]
struct Closure {
    graph: Arc<Graph>,
    def: Arc<FunctionDef>,
    captured: Vec<(Arc<str>, Value)>,
    params: Vec<Arc<str>>,
}

/// The name and function value of a required business knowledge model or service.
pub fn invocable_value(graph: &Arc<Graph>, k: Invocable) -> (Arc<str>, Value) {
    match k {
        Invocable::Bkm(index) => {
            let b = &graph.bkms[index];
            let params = b
                .logic
                .as_ref()
                .map(|l| l.params.iter().map(|(n, _)| n.clone()).collect())
                .unwrap_or_default();
            let f = BkmFunction {
                graph: graph.clone(),
                index,
                params,
            };
            (b.name.clone(), native(f))
        }
        Invocable::Service(index) => {
            let s = &graph.services[index];
            // Input data first, then input decisions (as the TCK calls them).
            let params = s
                .input_data
                .iter()
                .map(|&i| graph.inputs[i].name.clone())
                .chain(
                    s.input_decisions
                        .iter()
                        .map(|&d| graph.decisions[d].name.clone()),
                )
                .collect();
            let f = ServiceFunction {
                graph: graph.clone(),
                index,
                params,
            };
            (s.name.clone(), native(f))
        }
    }
}

fn native(f: impl NativeFunction + 'static) -> Value {
    Value::Function(Arc::new(Function::Native(Arc::new(f))))
}

/// A boxed function definition as a value capturing `scope`'s local names.
pub fn closure(graph: &Arc<Graph>, def: &Arc<FunctionDef>, scope: &Scope) -> Value {
    native(Closure {
        graph: graph.clone(),
        def: def.clone(),
        captured: scope.locals.clone(),
        params: def.params.iter().map(|(n, _)| n.clone()).collect(),
    })
}

/// Calls `def` with `args` over `locals` (knowledge, captured names).
fn call(
    graph: &Arc<Graph>,
    def: &FunctionDef,
    mut locals: Vec<(Arc<str>, Value)>,
    args: Vec<Value>,
    result_type: &TypeRef,
    ctx: &Context,
) -> Result<Value, String> {
    if !def.feel {
        return Err("external (Java/PMML) functions are not supported".to_string());
    }
    let mut args = args.into_iter();
    for (name, t) in &def.params {
        let v = args.next().unwrap_or(Value::Null);
        let c = check_type(graph, t, v.clone());
        if c.is_null() && !v.is_null() {
            return Err(format!(
                "argument '{v}' of parameter '{name}' does not conform to type '{}'",
                t.as_deref().unwrap_or("Any")
            ));
        }
        locals.push((name.clone(), c));
    }
    let scope = Scope {
        locals,
        outer: &NoVariables,
    };
    let ctx = ctx.nested(&scope);
    let v = match &def.body {
        Some(b) => eval_boxed(graph, b, &scope, &ctx)?,
        None => Value::Null,
    };
    Ok(check_type(graph, result_type, v))
}

fn knowledge(graph: &Arc<Graph>, ks: &[Invocable]) -> Vec<(Arc<str>, Value)> {
    ks.iter().map(|k| invocable_value(graph, *k)).collect()
}

impl NativeFunction for BkmFunction {
    fn params(&self) -> &[Arc<str>] {
        &self.params
    }

    fn invoke(&self, args: Vec<Value>, ctx: &Context) -> Result<Value, String> {
        let b = &self.graph.bkms[self.index];
        let Some(def) = &b.logic else {
            return Ok(Value::Null);
        };
        let mut locals = knowledge(&self.graph, &b.required_knowledge);
        // A model may call itself by name.
        locals.push(invocable_value(&self.graph, Invocable::Bkm(self.index)));
        call(&self.graph, def, locals, args, &b.type_ref, ctx).map_err(|m| {
            format!(
                "failed to invoke business knowledge model '{}': {m}",
                b.name
            )
        })
    }
}

impl NativeFunction for Closure {
    fn params(&self) -> &[Arc<str>] {
        &self.params
    }

    fn invoke(&self, args: Vec<Value>, ctx: &Context) -> Result<Value, String> {
        let result_type = self.def.body.as_ref().and_then(|b| b.type_ref.clone());
        call(
            &self.graph,
            &self.def,
            self.captured.clone(),
            args,
            &result_type,
            ctx,
        )
    }
}

impl NativeFunction for ServiceFunction {
    fn params(&self) -> &[Arc<str>] {
        &self.params
    }

    fn invoke(&self, args: Vec<Value>, ctx: &Context) -> Result<Value, String> {
        let g = &self.graph;
        let s = &g.services[self.index];
        let mut inputs = Entries::new();
        for (name, v) in self.params.iter().zip(args) {
            inputs.put(name.clone(), v);
        }
        invoke_service(g, self.index, &inputs, ctx)
            .map_err(|m| format!("failed to invoke decision service '{}': {m}", s.name))
    }
}

/// Evaluates service `index` with its parameters in `inputs`.
fn invoke_service(
    g: &Arc<Graph>,
    index: usize,
    inputs: &Entries,
    ctx: &Context,
) -> Result<Value, String> {
    let s = &g.services[index];
    let mut run = Run::new(g, inputs);
    for &d in &s.input_decisions {
        let decision = &g.decisions[d];
        let v = inputs.get(&decision.name).cloned().unwrap_or(Value::Null);
        run.results[d] = Some(check_type(g, &decision.type_ref, v));
    }
    let ctx = ctx.nested(inputs);
    let mut outs = Entries::new();
    for &d in &s.outputs {
        let v = run.decision(d, &ctx).map_err(|f| f.message)?;
        outs.put(g.decisions[d].name.clone(), v);
    }
    let v = if s.outputs.len() == 1 {
        outs.iter().next().map_or(Value::Null, |(_, v)| v.clone())
    } else {
        Value::Context(Arc::new(outs))
    };
    Ok(check_type(g, &s.type_ref, v))
}

/// Invokes the business knowledge model or decision service `name`, its
/// arguments read by parameter name from `variables`.
pub fn invoke_by_name(
    g: &Arc<Graph>,
    name: &str,
    variables: &dyn Variables,
    now_ms: i64,
    zone: &str,
) -> Result<Value, String> {
    let ctx = Context::new(variables, now_ms)
        .with_zone(zone)
        .map_err(|e| e.to_string())?;
    let k = if let Some(i) = g.bkms.iter().position(|b| &*b.name == name) {
        Invocable::Bkm(i)
    } else if let Some(i) = g
        .services
        .iter()
        .position(|s| &*s.name == name || &*s.id == name)
    {
        Invocable::Service(i)
    } else {
        return Err(format!(
            "no business knowledge model or decision service named '{name}'"
        ));
    };
    let (_, f) = invocable_value(g, k);
    let Value::Function(func) = &f else {
        return Err(format!("'{name}' is not a function"));
    };
    let Function::Native(n) = &**func else {
        return Err(format!("'{name}' is not a function"));
    };
    let types = parameter_types(g, k);
    let args = n
        .params()
        .iter()
        .zip(types)
        .map(|(p, t)| check_type(g, &t, variables.get(p).unwrap_or(Value::Null)))
        .collect();
    n.invoke(args, &ctx)
}

/// Declared parameter types of an invocable, in parameter order.
fn parameter_types(g: &Graph, k: Invocable) -> Vec<TypeRef> {
    match k {
        Invocable::Bkm(i) => g.bkms[i]
            .logic
            .as_ref()
            .map(|l| l.params.iter().map(|(_, t)| t.clone()).collect())
            .unwrap_or_default(),
        Invocable::Service(i) => {
            let s = &g.services[i];
            s.input_data
                .iter()
                .map(|&i| g.inputs[i].type_ref.clone())
                .chain(
                    s.input_decisions
                        .iter()
                        .map(|&d| g.decisions[d].type_ref.clone()),
                )
                .collect()
        }
    }
}
