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
