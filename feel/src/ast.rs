//! The abstract syntax tree. Its height is bounded by
//! [`crate::parser::MAX_NESTING_DEPTH`], so recursive evaluation and the
//! default recursive `Drop` stay within a small, known stack.

use crate::value::Value;
use std::sync::Arc;

/// A binary operator.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `**`
    Pow,
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// An expression node.
#[derive(Debug)]
pub enum Expr {
    /// A constant (numbers, strings, booleans, null, temporal literals).
    Literal(Value),
    /// A variable or built-in function name.
    Name(Arc<str>),
    /// `?`: the input value of a unary test.
    Input,
    /// `-x`
    Neg(Box<Expr>),
    /// Arithmetic or comparison.
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// A left-associative chain of operators of one precedence
    /// (`a + b - c`), kept flat so that long chains cost no tree height.
    Chain(Box<Expr>, Vec<(BinOp, Expr)>),
    /// Three-valued `and` over two or more operands.
    And(Vec<Expr>),
    /// Three-valued `or` over two or more operands.
    Or(Vec<Expr>),
    /// `x between a and b`
    Between(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `x in tests`
    In(Box<Expr>, Vec<Test>),
    /// `x instance of T`
    InstanceOf(Box<Expr>, Type),
    /// `if c then a else b`
    If(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `for x in l, y in a..b return e`
    For {
        /// Iteration variables and what they range over.
        iterations: Vec<(Arc<str>, Iteration)>,
        /// The body.
        body: Box<Expr>,
        /// Whether the body refers to `partial`.
        uses_partial: bool,
    },
    /// `some`/`every x in l satisfies c`
    Quantified {
        /// `every` (else `some`).
        every: bool,
        /// Iteration variables and lists.
        iterations: Vec<(Arc<str>, Iteration)>,
        /// The condition.
        condition: Box<Expr>,
    },
    /// `[a, b]`
    List(Vec<Expr>),
    /// `{a: 1, "b": 2}`
    Context(Vec<(Arc<str>, Expr)>),
    /// `[a..b]` and friends; a missing bound is unbounded (`< 10`).
    Range {
        /// Lower bound.
        start: Option<Box<Expr>>,
        /// Whether it is included.
        start_included: bool,
        /// Upper bound.
        end: Option<Box<Expr>>,
        /// Whether it is included.
        end_included: bool,
    },
    /// `a.b`
    Path(Box<Expr>, Arc<str>),
    /// `list[filter]`
    Filter(Box<Expr>, Box<Expr>),
    /// `f(args)`
    Call(Box<Expr>, Args),
    /// `function(a, b) body`
    Function(Vec<Arc<str>>, Arc<Expr>),
}

/// What an iteration variable ranges over.
#[derive(Debug)]
pub enum Iteration {
    /// A list (or a single value, as a one-element list).
    In(Expr),
    /// An integer range `a..b`, either direction.
    Span(Expr, Expr),
}

/// Call arguments.
#[derive(Debug)]
pub enum Args {
    /// `f(1, 2)`
    Positional(Vec<Expr>),
    /// `f(a: 1, b: 2)`
    Named(Vec<(Arc<str>, Expr)>),
}

/// A unary test (decision table cell, right side of `in`).
#[derive(Debug)]
pub enum Test {
    /// `-`: matches anything.
    Any,
    /// `< 10`, `= "a"`, `!= x`
    Compare(BinOp, Expr),
    /// An expression: a value to equal, a range or list to fall in, or a
    /// boolean condition when it mentions `?`.
    Expr {
        /// The expression.
        expr: Expr,
        /// Whether it refers to `?`.
        uses_input: bool,
    },
    /// `not(tests)`
    Not(Vec<Test>),
}

/// A type in `instance of`.
#[derive(Clone, Debug, PartialEq)]
pub enum Type {
    /// `Any`
    Any,
    /// A simple type by name (`number`, `date and time`, `Null`, ...).
    Named(String),
    /// `list<T>`
    List(Box<Type>),
    /// `context<a: T, ...>`
    Context(Vec<(String, Type)>),
    /// `range<T>`
    Range(Box<Type>),
    /// `function<T, ...> -> T`
    Function(Vec<Type>, Box<Type>),
}

impl Expr {
    /// Every name the expression reads (bound inside it or not), for a
    /// function value to capture what its body may need from the
    /// environment where it is defined. Recursion follows the tree, whose
    /// height the parser bounds.
    pub fn referenced_names(&self, out: &mut Vec<Arc<str>>) {
        let all = |es: &[&Expr], out: &mut Vec<Arc<str>>| {
            for e in es {
                e.referenced_names(out);
            }
        };
        match self {
            Expr::Literal(_) | Expr::Input => {}
            Expr::Name(n) => {
                if !out.contains(n) {
                    out.push(n.clone());
                }
            }
            Expr::Neg(x) | Expr::InstanceOf(x, _) | Expr::Path(x, _) => x.referenced_names(out),
            Expr::Binary(_, a, b) | Expr::Filter(a, b) => all(&[a, b], out),
            Expr::Chain(first, rest) => {
                first.referenced_names(out);
                for (_, e) in rest {
                    e.referenced_names(out);
                }
            }
            Expr::And(v) | Expr::Or(v) | Expr::List(v) => {
                for e in v {
                    e.referenced_names(out);
                }
            }
            Expr::Between(a, b, c) | Expr::If(a, b, c) => all(&[a, b, c], out),
            Expr::In(x, tests) => {
                x.referenced_names(out);
                Test::referenced_names(tests, out);
            }
            Expr::For {
                iterations, body, ..
            }
            | Expr::Quantified {
                iterations,
                condition: body,
                ..
            } => {
                for (_, it) in iterations {
                    match it {
                        Iteration::In(e) => e.referenced_names(out),
                        Iteration::Span(a, b) => all(&[a, b], out),
                    }
                }
                body.referenced_names(out);
            }
            Expr::Context(entries) => {
                for (_, e) in entries {
                    e.referenced_names(out);
                }
            }
            Expr::Range { start, end, .. } => {
                for e in [start, end].into_iter().flatten() {
                    e.referenced_names(out);
                }
            }
            Expr::Call(callee, args) => {
                callee.referenced_names(out);
                match args {
                    Args::Positional(v) => {
                        for e in v {
                            e.referenced_names(out);
                        }
                    }
                    Args::Named(v) => {
                        for (_, e) in v {
                            e.referenced_names(out);
                        }
                    }
                }
            }
            Expr::Function(_, body) => body.referenced_names(out),
        }
    }
}

impl Test {
    /// Names read by unary tests (see [`Expr::referenced_names`]).
    pub fn referenced_names(tests: &[Test], out: &mut Vec<Arc<str>>) {
        for t in tests {
            match t {
                Test::Any => {}
                Test::Compare(_, e) | Test::Expr { expr: e, .. } => e.referenced_names(out),
                Test::Not(inner) => Test::referenced_names(inner, out),
            }
        }
    }
}
