//! Recursive-descent parser with precedence climbing. Every level of
//! recursion and every link of a left-associative chain counts towards
//! [`MAX_NESTING_DEPTH`], which bounds the height of the tree it builds: deep
//! input fails with a [`ParseError`] instead of exhausting the stack.

use crate::ast::{Args, BinOp, Expr, Iteration, Test, Type};
use crate::error::ParseError;
use crate::lexer::{lex, Tok, Token};
use crate::temporal;
use crate::value::Value;
use std::sync::Arc;

/// Deepest nesting (and longest operator chain) accepted in an expression.
pub const MAX_NESTING_DEPTH: usize = 128;

const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "then",
    "else",
    "return",
    "satisfies",
    "in",
    "between",
    "instance",
    "of",
    "if",
    "for",
    "some",
    "every",
    "function",
    "true",
    "false",
    "null",
];

/// Parses a whole expression.
pub fn parse_expression(src: &str, known: &[String]) -> Result<Expr, ParseError> {
    let mut p = Parser::new(src, known)?;
    let e = p.expression()?;
    p.expect_end()?;
    Ok(e)
}

/// Parses unary tests (`-`, `not(...)`, or comma-separated tests).
pub fn parse_unary_tests(src: &str, known: &[String]) -> Result<Vec<Test>, ParseError> {
    let mut p = Parser::new(src, known)?;
    let tests = if p.sym("-") && matches!(p.peek_at(1), Tok::End) {
        p.next();
        vec![Test::Any]
    } else if p.name_is("not") && matches!(p.peek_at(1), Tok::Sym("(")) {
        p.next();
        p.next();
        let inner = p.tests(true)?;
        p.expect_sym(")")?;
        vec![Test::Not(inner)]
    } else {
        p.tests(true)?
    };
    p.expect_end()?;
    Ok(tests)
}

struct Parser {
    toks: Vec<Token>,
    at: usize,
    depth: usize,
    saw_partial: bool,
    saw_input: bool,
}

const PREC_OR: u8 = 1;
const PREC_AND: u8 = 2;
const PREC_CMP: u8 = 3;
const PREC_ADD: u8 = 4;
const PREC_MUL: u8 = 5;
const PREC_POW: u8 = 6;

/// An infix operator.
#[derive(Clone, Copy)]
enum Infix {
    Op(BinOp),
    And,
    Or,
    Between,
    In,
    InstanceOf,
}

fn bin(op: BinOp, a: Expr, b: Expr) -> Expr {
    Expr::Binary(op, Box::new(a), Box::new(b))
}

impl Parser {
    fn new(src: &str, known: &[String]) -> Result<Parser, ParseError> {
        Ok(Parser {
            toks: lex(src, known)?,
            at: 0,
            depth: 0,
            saw_partial: false,
            saw_input: false,
        })
    }

    fn peek(&self) -> &Tok {
        &self.toks[self.at].tok
    }

    fn peek_at(&self, n: usize) -> &Tok {
        &self.toks[(self.at + n).min(self.toks.len() - 1)].tok
    }

    fn pos(&self) -> usize {
        self.toks[self.at].pos
    }

    fn next(&mut self) -> Tok {
        let t = self.toks[self.at].tok.clone();
        if self.at + 1 < self.toks.len() {
            self.at += 1;
        }
        t
    }

    fn sym(&self, s: &str) -> bool {
        matches!(self.peek(), Tok::Sym(x) if *x == s)
    }

    fn name_is(&self, s: &str) -> bool {
        matches!(self.peek(), Tok::Name(x) if x == s)
    }

    fn eat_sym(&mut self, s: &str) -> bool {
        let hit = self.sym(s);
        if hit {
            self.next();
        }
        hit
    }

    fn eat_name(&mut self, s: &str) -> bool {
        let hit = self.name_is(s);
        if hit {
            self.next();
        }
        hit
    }

    #[inline(never)]
    fn err<T>(&self, what: &str) -> Result<T, ParseError> {
        let found = match self.peek() {
            Tok::End => "end of input".to_string(),
            Tok::Name(n) | Tok::Quoted(n) => format!("'{n}'"),
            Tok::Number(n) => format!("number {n}"),
            Tok::Str(s) => format!("string \"{s}\""),
            Tok::At(s) => format!("@\"{s}\""),
            Tok::Sym(s) => format!("'{s}'"),
        };
        Err(ParseError::new(
            self.pos(),
            format!("expected {what}, found {found}"),
        ))
    }

    fn expect_sym(&mut self, s: &str) -> Result<(), ParseError> {
        if self.eat_sym(s) {
            Ok(())
        } else {
            self.err(&format!("'{s}'"))
        }
    }

    fn expect_name(&mut self, s: &str) -> Result<(), ParseError> {
        if self.eat_name(s) {
            Ok(())
        } else {
            self.err(&format!("'{s}'"))
        }
    }

    fn expect_end(&self) -> Result<(), ParseError> {
        if matches!(self.peek(), Tok::End) {
            Ok(())
        } else {
            self.err("an operator or the end of the expression")
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_NESTING_DEPTH {
            return Err(ParseError::new(
                self.pos(),
                format!("expression nests deeper than {MAX_NESTING_DEPTH} levels (parentheses, lists, operator chains); split it up"),
            ));
        }
        Ok(())
    }

    /// A variable name: a plain name (not a keyword) or a backtick name.
    fn ident(&mut self, what: &str) -> Result<Arc<str>, ParseError> {
        match self.peek().clone() {
            Tok::Name(n) if !KEYWORDS.contains(&n.as_str()) => {
                self.next();
                Ok(Arc::from(n))
            }
            Tok::Quoted(n) => {
                self.next();
                Ok(Arc::from(n))
            }
            _ => self.err(what),
        }
    }

    fn expression(&mut self) -> Result<Expr, ParseError> {
        let saved = self.depth;
        self.enter()?;
        let e = match self.peek() {
            Tok::Name(n) if n == "if" => self.if_expr()?,
            Tok::Name(n) if n == "for" => self.for_expr()?,
            Tok::Name(n)
                if (n == "some" || n == "every")
                    && matches!(self.peek_at(1), Tok::Name(_) | Tok::Quoted(_)) =>
            {
                self.quantified()?
            }
            _ => self.disjunction()?,
        };
        self.depth = saved;
        Ok(e)
    }

    #[inline(never)]
    fn if_expr(&mut self) -> Result<Expr, ParseError> {
        self.expect_name("if")?;
        let c = self.expression()?;
        self.expect_name("then")?;
        let a = self.expression()?;
        self.expect_name("else")?;
        let b = self.expression()?;
        Ok(Expr::If(Box::new(c), Box::new(a), Box::new(b)))
    }

    fn iterations(&mut self, spans: bool) -> Result<Vec<(Arc<str>, Iteration)>, ParseError> {
        let mut out = Vec::new();
        loop {
            let name = self.ident("an iteration variable name")?;
            self.expect_name("in")?;
            let source = self.expression()?;
            let it = if spans && self.eat_sym("..") {
                Iteration::Span(source, self.expression()?)
            } else {
                Iteration::In(source)
            };
            out.push((name, it));
            if !self.eat_sym(",") {
                return Ok(out);
            }
        }
    }

    #[inline(never)]
    fn for_expr(&mut self) -> Result<Expr, ParseError> {
        self.expect_name("for")?;
        let iterations = self.iterations(true)?;
        self.expect_name("return")?;
        let outer = std::mem::replace(&mut self.saw_partial, false);
        let body = self.expression()?;
        let uses_partial = self.saw_partial;
        self.saw_partial = outer;
        Ok(Expr::For {
            iterations,
            body: Box::new(body),
            uses_partial,
        })
    }

    #[inline(never)]
    fn quantified(&mut self) -> Result<Expr, ParseError> {
        let every = matches!(self.next(), Tok::Name(n) if n == "every");
        let iterations = self.iterations(true)?;
        self.expect_name("satisfies")?;
        let condition = self.expression()?;
        Ok(Expr::Quantified {
            every,
            iterations,
            condition: Box::new(condition),
        })
    }

    fn disjunction(&mut self) -> Result<Expr, ParseError> {
        self.binary(PREC_OR)
    }

    fn additive(&mut self) -> Result<Expr, ParseError> {
        self.binary(PREC_ADD)
    }

    fn cmp_op(&self) -> Option<BinOp> {
        Some(match self.peek() {
            Tok::Sym("=") => BinOp::Eq,
            Tok::Sym("!=") => BinOp::Ne,
            Tok::Sym("<") => BinOp::Lt,
            Tok::Sym("<=") => BinOp::Le,
            Tok::Sym(">") => BinOp::Gt,
            Tok::Sym(">=") => BinOp::Ge,
            _ => return None,
        })
    }

    /// The infix operator ahead and its precedence.
    fn infix(&self) -> Option<(Infix, u8)> {
        if let Some(op) = self.cmp_op() {
            return Some((Infix::Op(op), PREC_CMP));
        }
        Some(match self.peek() {
            Tok::Sym("+") => (Infix::Op(BinOp::Add), PREC_ADD),
            Tok::Sym("-") => (Infix::Op(BinOp::Sub), PREC_ADD),
            Tok::Sym("*") => (Infix::Op(BinOp::Mul), PREC_MUL),
            Tok::Sym("/") => (Infix::Op(BinOp::Div), PREC_MUL),
            Tok::Sym("**") => (Infix::Op(BinOp::Pow), PREC_POW),
            Tok::Name(n) => match n.as_str() {
                "or" => (Infix::Or, PREC_OR),
                "and" => (Infix::And, PREC_AND),
                "between" => (Infix::Between, PREC_CMP),
                "in" => (Infix::In, PREC_CMP),
                "instance" if matches!(self.peek_at(1), Tok::Name(o) if o == "of") => {
                    (Infix::InstanceOf, PREC_CMP)
                }
                _ => return None,
            },
            _ => return None,
        })
    }

    /// Precedence climbing: operators binding at least `min` (one stack
    /// frame per precedence step, not per grammar level).
    fn binary(&mut self, min: u8) -> Result<Expr, ParseError> {
        let saved = self.depth;
        let mut e = self.unary()?;
        while let Some((op, prec)) = self.infix() {
            if prec < min {
                break;
            }
            self.next();
            e = self.infix_rest(e, op, prec)?;
        }
        self.depth = saved;
        Ok(e)
    }

    /// The rest of an infix expression after its operator (kept out of
    /// line so the recursive `binary` frame stays small).
    #[inline(never)]
    fn infix_rest(&mut self, e: Expr, op: Infix, prec: u8) -> Result<Expr, ParseError> {
        Ok(match op {
            Infix::Op(op) if prec >= PREC_ADD => {
                // Left-associative chain: flat, so its length costs no depth.
                let mut rest = vec![(op, self.binary(prec + 1)?)];
                while let Some((Infix::Op(next), p)) = self.infix() {
                    if p != prec {
                        break;
                    }
                    self.next();
                    rest.push((next, self.binary(prec + 1)?));
                }
                Expr::Chain(Box::new(e), rest)
            }
            Infix::And | Infix::Or => {
                let mut operands = vec![e, self.binary(prec + 1)?];
                while matches!(self.infix(), Some((o, _)) if std::mem::discriminant(&o) == std::mem::discriminant(&op))
                {
                    self.next();
                    operands.push(self.binary(prec + 1)?);
                }
                if matches!(op, Infix::And) {
                    Expr::And(operands)
                } else {
                    Expr::Or(operands)
                }
            }
            Infix::Op(op) => {
                self.enter()?;
                let r = self.binary(prec + 1)?;
                bin(op, e, r)
            }
            Infix::Between => {
                self.enter()?;
                let lo = self.binary(PREC_ADD)?;
                self.expect_name("and")?;
                let hi = self.binary(PREC_ADD)?;
                Expr::Between(Box::new(e), Box::new(lo), Box::new(hi))
            }
            Infix::In => {
                self.enter()?;
                Expr::In(Box::new(e), self.in_tests()?)
            }
            Infix::InstanceOf => {
                self.next();
                Expr::InstanceOf(Box::new(e), self.type_ref()?)
            }
        })
    }

    /// Right side of `in`: one test, or `(t1, t2, ...)`.
    #[inline(never)]
    fn in_tests(&mut self) -> Result<Vec<Test>, ParseError> {
        if !self.sym("(") {
            return Ok(vec![self.test(false)?]);
        }
        let open_pos = self.pos();
        self.next();
        if self.cmp_op().is_some() {
            let tests = self.tests_rest(None)?;
            return Ok(tests);
        }
        let first = self.expression()?;
        if self.eat_sym("..") {
            let end = self.expression()?;
            let end_included = if self.eat_sym("]") {
                true
            } else if self.eat_sym(")") || self.eat_sym("[") {
                false
            } else {
                return self.err("')' , '[' or ']' to close the range");
            };
            let range = Expr::Range {
                start: Some(Box::new(first)),
                start_included: false,
                end: Some(Box::new(end)),
                end_included,
            };
            return Ok(vec![Test::Expr {
                expr: range,
                uses_input: false,
            }]);
        }
        let _ = open_pos;
        self.tests_rest(Some(first))
    }

    fn tests_rest(&mut self, first: Option<Expr>) -> Result<Vec<Test>, ParseError> {
        let mut tests = Vec::new();
        match first {
            Some(expr) => tests.push(Test::Expr {
                expr,
                uses_input: false,
            }),
            None => tests.push(self.test(true)?),
        }
        while self.eat_sym(",") {
            tests.push(self.test(true)?);
        }
        self.expect_sym(")")?;
        Ok(tests)
    }

    fn tests(&mut self, full: bool) -> Result<Vec<Test>, ParseError> {
        let mut tests = vec![self.test(full)?];
        while self.eat_sym(",") {
            tests.push(self.test(full)?);
        }
        Ok(tests)
    }

    /// One positive unary test; `full` parses a whole expression, else an operand.
    fn test(&mut self, full: bool) -> Result<Test, ParseError> {
        if let Some(op) = self.cmp_op() {
            self.next();
            let e = self.additive()?;
            return Ok(Test::Compare(op, e));
        }
        let outer = std::mem::replace(&mut self.saw_input, false);
        let expr = if full {
            self.expression()?
        } else {
            self.binary(PREC_CMP)?
        };
        let uses_input = self.saw_input;
        self.saw_input = outer || uses_input;
        Ok(Test::Expr { expr, uses_input })
    }

    #[inline(never)]
    fn type_ref(&mut self) -> Result<Type, ParseError> {
        let first = match self.next() {
            Tok::Name(n) | Tok::Quoted(n) => n,
            _ => {
                self.at -= 1;
                return self.err("a type name");
            }
        };
        let generic = |p: &mut Parser| p.sym("<");
        match first.as_str() {
            "Any" => Ok(Type::Any),
            "list" | "range" if generic(self) => {
                self.next();
                let inner = self.type_ref()?;
                self.expect_sym(">")?;
                Ok(if first == "list" {
                    Type::List(Box::new(inner))
                } else {
                    Type::Range(Box::new(inner))
                })
            }
            "context" if generic(self) => {
                self.next();
                let mut fields = Vec::new();
                loop {
                    let name = self.ident("a context entry name")?;
                    self.expect_sym(":")?;
                    fields.push((name.to_string(), self.type_ref()?));
                    if !self.eat_sym(",") {
                        break;
                    }
                }
                self.expect_sym(">")?;
                Ok(Type::Context(fields))
            }
            "function" if generic(self) => {
                self.next();
                let mut params = Vec::new();
                if !self.sym(">") {
                    loop {
                        params.push(self.type_ref()?);
                        if !self.eat_sym(",") {
                            break;
                        }
                    }
                }
                self.expect_sym(">")?;
                self.expect_sym("-")?;
                self.expect_sym(">")?;
                Ok(Type::Function(params, Box::new(self.type_ref()?)))
            }
            "date" | "days" | "years" if self.name_is("and") => {
                let rest: &[&str] = match first.as_str() {
                    "date" => &["and", "time"],
                    "days" => &["and", "time", "duration"],
                    _ => &["and", "months", "duration"],
                };
                for w in rest {
                    self.expect_name(w)?;
                }
                Ok(Type::Named(format!("{first} {}", rest.join(" "))))
            }
            _ => Ok(Type::Named(first)),
        }
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.eat_sym("-") {
            let saved = self.depth;
            self.enter()?;
            let inner = self.unary()?;
            self.depth = saved;
            return Ok(match inner {
                Expr::Literal(Value::Number(n)) => Expr::Literal(Value::Number(-n)),
                other => Expr::Neg(Box::new(other)),
            });
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr, ParseError> {
        let saved = self.depth;
        let mut e = self.primary()?;
        loop {
            if self.eat_sym(".") {
                self.enter()?;
                let key = self.property_name()?;
                e = Expr::Path(Box::new(e), key);
            } else if self.sym("[")
                && !matches!(self.peek_at(1), Tok::End | Tok::Sym(")" | "," | "]"))
            {
                self.next();
                self.enter()?;
                let f = self.expression()?;
                self.expect_sym("]")?;
                e = Expr::Filter(Box::new(e), Box::new(f));
            } else if self.sym("(") {
                self.enter()?;
                let args = self.args()?;
                e = Expr::Call(Box::new(e), args);
            } else {
                break;
            }
        }
        self.depth = saved;
        Ok(e)
    }

    #[inline(never)]
    fn property_name(&mut self) -> Result<Arc<str>, ParseError> {
        let first = match self.next() {
            Tok::Name(n) | Tok::Quoted(n) | Tok::Str(n) => n,
            _ => {
                self.at -= 1;
                return self.err("a name after '.'");
            }
        };
        let second = match (first.as_str(), self.peek()) {
            ("time", Tok::Name(n)) if n == "offset" => Some("offset"),
            ("start" | "end", Tok::Name(n)) if n == "included" => Some("included"),
            _ => None,
        };
        match second {
            Some(s) => {
                self.next();
                Ok(Arc::from(format!("{first} {s}")))
            }
            None => Ok(Arc::from(first)),
        }
    }

    #[inline(never)]
    fn args(&mut self) -> Result<Args, ParseError> {
        self.expect_sym("(")?;
        if self.eat_sym(")") {
            return Ok(Args::Positional(Vec::new()));
        }
        if self.named_arg_ahead() {
            let mut named = Vec::new();
            loop {
                let mut words = Vec::new();
                while let Tok::Name(n) | Tok::Quoted(n) = self.peek().clone() {
                    self.next();
                    words.push(n);
                }
                if words.is_empty() {
                    return self.err("a parameter name");
                }
                self.expect_sym(":")?;
                named.push((Arc::from(words.join(" ")), self.expression()?));
                if !self.eat_sym(",") {
                    break;
                }
            }
            self.expect_sym(")")?;
            return Ok(Args::Named(named));
        }
        let mut pos = vec![self.expression()?];
        while self.eat_sym(",") {
            pos.push(self.expression()?);
        }
        self.expect_sym(")")?;
        Ok(Args::Positional(pos))
    }

    fn named_arg_ahead(&self) -> bool {
        let mut n = 0;
        while matches!(self.peek_at(n), Tok::Name(_) | Tok::Quoted(_)) {
            n += 1;
        }
        n > 0 && matches!(self.peek_at(n), Tok::Sym(":"))
    }

    /// Dispatches on the first token; arms that recurse live in their own
    /// small functions so this frame stays small on the recursive path.
    #[inline(never)]
    fn primary(&mut self) -> Result<Expr, ParseError> {
        match self.peek() {
            Tok::Sym("(") => self.paren(),
            Tok::Sym("[") => self.list_or_range(),
            Tok::Sym("]") => self.open_range(),
            Tok::Sym("{") => self.context(),
            Tok::Sym("<" | "<=" | ">" | ">=") => self.comparison_range(),
            Tok::Name(n) if matches!(n.as_str(), "if" | "for" | "some" | "every") => {
                self.expression()
            }
            Tok::Name(n) if n == "function" => self.function(),
            _ => self.leaf(),
        }
    }

    #[inline(never)]
    fn paren(&mut self) -> Result<Expr, ParseError> {
        self.expect_sym("(")?;
        let e = self.expression()?;
        if self.eat_sym("..") {
            return self.range_rest(e, false);
        }
        self.expect_sym(")")?;
        Ok(e)
    }

    #[inline(never)]
    fn list_or_range(&mut self) -> Result<Expr, ParseError> {
        self.expect_sym("[")?;
        if self.eat_sym("]") {
            return Ok(Expr::List(Vec::new()));
        }
        let first = self.expression()?;
        if self.eat_sym("..") {
            return self.range_rest(first, true);
        }
        let mut items = vec![first];
        while self.eat_sym(",") {
            items.push(self.expression()?);
        }
        self.expect_sym("]")?;
        Ok(Expr::List(items))
    }

    #[inline(never)]
    fn open_range(&mut self) -> Result<Expr, ParseError> {
        self.expect_sym("]")?;
        let first = self.expression()?;
        self.expect_sym("..")?;
        self.range_rest(first, false)
    }

    /// `< 10`, `>= x`: a range with one bound.
    #[inline(never)]
    fn comparison_range(&mut self) -> Result<Expr, ParseError> {
        let op = self.cmp_op().expect("matched a comparison symbol");
        self.next();
        let bound = Some(Box::new(self.additive()?));
        Ok(match op {
            BinOp::Lt | BinOp::Le => Expr::Range {
                start: None,
                start_included: false,
                end: bound,
                end_included: op == BinOp::Le,
            },
            _ => Expr::Range {
                start: bound,
                start_included: op == BinOp::Ge,
                end: None,
                end_included: false,
            },
        })
    }

    /// Literals and names: no recursion.
    #[inline(never)]
    fn leaf(&mut self) -> Result<Expr, ParseError> {
        let pos = self.pos();
        match self.peek().clone() {
            Tok::Number(t) => {
                self.next();
                crate::number::parse(&t)
                    .map(|n| Expr::Literal(Value::Number(n)))
                    .ok_or_else(|| ParseError::new(pos, format!("number {t} is out of range")))
            }
            Tok::Str(s) => {
                self.next();
                Ok(Expr::Literal(Value::string(s)))
            }
            Tok::At(s) => {
                self.next();
                Ok(match temporal_literal(&s) {
                    Some(v) => Expr::Literal(v),
                    // Invalid calendar values (`@"2023-02-29"`) are null at
                    // evaluation, with the conversion's failure, as in feel-scala.
                    None => invalid_temporal_literal(s),
                })
            }
            Tok::Sym("?") => {
                self.next();
                self.saw_input = true;
                Ok(Expr::Input)
            }
            Tok::Name(n) => match n.as_str() {
                "true" | "false" => {
                    self.next();
                    Ok(Expr::Literal(Value::Bool(n == "true")))
                }
                "null" => {
                    self.next();
                    Ok(Expr::Literal(Value::Null))
                }
                "and" | "or" if matches!(self.peek_at(1), Tok::Sym("(")) => {
                    self.next();
                    Ok(Expr::Name(Arc::from(n)))
                }
                _ => {
                    let name = self.ident("a value")?;
                    if &*name == "partial" {
                        self.saw_partial = true;
                    }
                    Ok(Expr::Name(name))
                }
            },
            Tok::Quoted(_) => Ok(Expr::Name(self.ident("a name")?)),
            _ => self.err("a value"),
        }
    }

    #[inline(never)]
    fn range_rest(&mut self, start: Expr, start_included: bool) -> Result<Expr, ParseError> {
        let end = self.expression()?;
        let end_included = if self.eat_sym("]") {
            true
        } else if self.eat_sym(")") || self.eat_sym("[") {
            false
        } else {
            return self.err("']', ')' or '[' to close the range");
        };
        Ok(Expr::Range {
            start: Some(Box::new(start)),
            start_included,
            end: Some(Box::new(end)),
            end_included,
        })
    }

    #[inline(never)]
    fn context(&mut self) -> Result<Expr, ParseError> {
        self.expect_sym("{")?;
        let mut entries: Vec<(Arc<str>, Expr)> = Vec::new();
        if self.eat_sym("}") {
            return Ok(Expr::Context(entries));
        }
        loop {
            let key_pos = self.pos();
            let key: Arc<str> = match self.peek().clone() {
                Tok::Str(s) | Tok::Quoted(s) => {
                    self.next();
                    Arc::from(s)
                }
                Tok::Name(_) => {
                    let mut words = Vec::new();
                    while let Tok::Name(w) = self.peek().clone() {
                        self.next();
                        words.push(w);
                    }
                    Arc::from(words.join(" "))
                }
                _ => return self.err("a context key (name or string)"),
            };
            if entries.iter().any(|(k, _)| *k == key) {
                return Err(ParseError::new(
                    key_pos,
                    format!("duplicate context key '{key}'"),
                ));
            }
            self.expect_sym(":")?;
            let v = self.expression()?;
            entries.push((key, v));
            if !self.eat_sym(",") {
                break;
            }
        }
        self.expect_sym("}")?;
        Ok(Expr::Context(entries))
    }

    #[inline(never)]
    fn function(&mut self) -> Result<Expr, ParseError> {
        self.expect_name("function")?;
        self.expect_sym("(")?;
        let mut params = Vec::new();
        if !self.eat_sym(")") {
            loop {
                params.push(self.ident("a parameter name")?);
                if self.eat_sym(":") {
                    self.type_ref()?;
                }
                if !self.eat_sym(",") {
                    break;
                }
            }
            self.expect_sym(")")?;
        }
        if self.name_is("external") {
            return self.err("a FEEL function body (external functions are not supported)");
        }
        let body = self.expression()?;
        Ok(Expr::Function(params, Arc::new(body)))
    }
}

fn invalid_temporal_literal(s: String) -> Expr {
    let function = if s.starts_with('P') || s.starts_with("-P") {
        "duration"
    } else if s.contains('T') {
        "date and time"
    } else if s.len() >= 10 && s.as_bytes()[4] == b'-' {
        "date"
    } else {
        "time"
    };
    Expr::Call(
        Box::new(Expr::Name(Arc::from(function))),
        Args::Positional(vec![Expr::Literal(Value::string(s))]),
    )
}

/// The value of `@"..."` text.
pub fn temporal_literal(s: &str) -> Option<Value> {
    if s.starts_with('P') || s.starts_with("-P") {
        return Some(match temporal::parse_duration(s)? {
            temporal::Duration::YearMonth(m) => Value::YearMonth(m),
            temporal::Duration::DayTime(d) => Value::DayTime(d),
        });
    }
    if s.contains('T') {
        return temporal::DateTime::parse(s).map(Value::DateTime);
    }
    if let Some(d) = temporal::parse_date(s) {
        return Some(Value::Date(d));
    }
    temporal::Time::parse(s).map(Value::Time)
}
