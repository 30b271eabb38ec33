//! Boxed expressions from XML: literal expressions, decision tables,
//! contexts, invocations, lists, relations, function definitions,
//! conditionals, iterators and filters. FEEL text is compiled here, once;
//! a failure names the owning element id and the text. Recursion follows
//! the XML nesting, which the depth check has bounded.

use crate::error::ParseError;
use crate::model::{Boxed, BoxedKind, ContextEntry, FunctionDef, TypeRef};
use crate::table::{Aggregation, HitPolicy, Input, Output, Rule, Table};
use roxmltree::Node;
use std::sync::Arc;

/// Element names of boxed expressions.
const EXPRESSIONS: [&str; 12] = [
    "literalExpression",
    "decisionTable",
    "context",
    "invocation",
    "list",
    "relation",
    "functionDefinition",
    "conditional",
    "for",
    "every",
    "some",
    "filter",
];

/// DMN element children of `n` (in the model's namespace).
pub fn dmn_children<'a, 'i>(n: Node<'a, 'i>, ns: &'a str) -> impl Iterator<Item = Node<'a, 'i>> {
    n.children()
        .filter(move |c| c.is_element() && c.tag_name().namespace().unwrap_or("") == ns)
}

/// DMN element children named `tag`.
pub fn children<'a, 'i>(
    n: Node<'a, 'i>,
    ns: &'a str,
    tag: &'a str,
) -> impl Iterator<Item = Node<'a, 'i>> {
    dmn_children(n, ns).filter(move |c| c.tag_name().name() == tag)
}

/// The first DMN element child named `tag`.
pub fn child<'a, 'i>(n: Node<'a, 'i>, ns: &'a str, tag: &'a str) -> Option<Node<'a, 'i>> {
    children(n, ns, tag).next()
}

/// The first child that is a boxed expression.
pub fn expression_child<'a, 'i>(n: Node<'a, 'i>, ns: &'a str) -> Option<Node<'a, 'i>> {
    dmn_children(n, ns).find(|c| EXPRESSIONS.contains(&c.tag_name().name()))
}

/// The `typeRef` attribute, if present and not empty.
pub fn type_ref(n: Node) -> TypeRef {
    n.attribute("typeRef")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(Arc::from)
}

/// Parsing context: the model's namespace and the names it declares.
pub struct Cx<'a> {
    /// The DMN namespace of the document.
    pub ns: &'a str,
    /// Every `name` declared in the model (for names with spaces in FEEL).
    pub names: feel::KnownNames,
}

fn text_of<'a>(n: Node<'a, '_>, ns: &'a str) -> &'a str {
    children(n, ns, "text")
        .next()
        .and_then(|t| t.text())
        .unwrap_or("")
}

fn feel_error(owner: &str, text: &str, e: feel::ParseError) -> ParseError {
    ParseError::Feel {
        element: owner.to_string(),
        expression: text.to_string(),
        message: e.to_string(),
    }
}

impl Cx<'_> {
    fn compile(&self, owner: &str, text: &str) -> Result<feel::Expression, ParseError> {
        feel::compile_with_names(text, &self.names).map_err(|e| feel_error(owner, text, e))
    }

    fn compile_opt(&self, owner: &str, text: &str) -> Result<Option<feel::Expression>, ParseError> {
        if text.trim().is_empty() {
            return Ok(None);
        }
        self.compile(owner, text).map(Some)
    }

    fn tests(&self, owner: &str, text: &str) -> Result<feel::UnaryTests, ParseError> {
        let text = if text.trim().is_empty() { "-" } else { text };
        feel::compile_unary_tests_with_names(text, &self.names)
            .map_err(|e| feel_error(owner, text, e))
    }

    /// The boxed expression inside wrapper `n` (`<in>`, `<then>`, a binding...).
    fn inner(&self, n: Node, owner: &str) -> Result<Option<Boxed>, ParseError> {
        match expression_child(n, self.ns) {
            Some(e) => self.boxed(e, owner).map(Some),
            None => Ok(None),
        }
    }

    fn required_inner(&self, n: Node, tag: &str, owner: &str) -> Result<Boxed, ParseError> {
        let missing = || ParseError::Missing {
            element: owner.to_string(),
            what: tag.to_string(),
        };
        let w = child(n, self.ns, tag).ok_or_else(missing)?;
        self.inner(w, owner)?.ok_or_else(missing)
    }

    /// Parses a boxed expression element; `owner` is the nearest id for errors.
    pub fn boxed(&self, n: Node, owner: &str) -> Result<Boxed, ParseError> {
        let ns = self.ns;
        let id: Arc<str> = Arc::from(n.attribute("id").unwrap_or(""));
        let here: &str = if id.is_empty() { owner } else { &id };
        let kind = match n.tag_name().name() {
            "literalExpression" => {
                let text = text_of(n, ns);
                BoxedKind::Literal(self.compile_opt(here, text)?, Arc::from(text.trim()))
            }
            "decisionTable" => BoxedKind::Table(Box::new(self.table(n, here)?)),
            "context" => {
                let mut entries = Vec::new();
                for e in children(n, ns, "contextEntry") {
                    let variable = child(e, ns, "variable").map(|v| {
                        (
                            Arc::<str>::from(v.attribute("name").unwrap_or("")),
                            type_ref(v),
                        )
                    });
                    entries.push(ContextEntry {
                        variable,
                        value: self.inner(e, here)?,
                    });
                }
                BoxedKind::Context(entries)
            }
            "invocation" => {
                let callee_text = expression_child(n, ns)
                    .filter(|c| c.tag_name().name() == "literalExpression")
                    .map(|c| text_of(c, ns))
                    .unwrap_or("");
                let callee = self.compile(here, &quote_name(callee_text))?;
                let mut bindings = Vec::new();
                for b in children(n, ns, "binding") {
                    let name = child(b, ns, "parameter")
                        .and_then(|p| p.attribute("name"))
                        .unwrap_or("");
                    bindings.push((Arc::from(name), self.inner(b, here)?));
                }
                BoxedKind::Invocation { callee, bindings }
            }
            "list" => {
                let mut items = Vec::new();
                for c in dmn_children(n, ns).filter(|c| EXPRESSIONS.contains(&c.tag_name().name()))
                {
                    items.push(self.boxed(c, here)?);
                }
                BoxedKind::List(items)
            }
            "relation" => {
                let columns = children(n, ns, "column")
                    .map(|c| Arc::from(c.attribute("name").unwrap_or("")))
                    .collect();
                let mut rows = Vec::new();
                for r in children(n, ns, "row") {
                    let mut cells = Vec::new();
                    for c in
                        dmn_children(r, ns).filter(|c| EXPRESSIONS.contains(&c.tag_name().name()))
                    {
                        cells.push(self.boxed(c, here)?);
                    }
                    rows.push(cells);
                }
                BoxedKind::Relation { columns, rows }
            }
            "functionDefinition" => BoxedKind::Function(Arc::new(self.function(n, here)?)),
            "conditional" => BoxedKind::Conditional(Box::new([
                self.required_inner(n, "if", here)?,
                self.required_inner(n, "then", here)?,
                self.required_inner(n, "else", here)?,
            ])),
            "for" => BoxedKind::For {
                var: Arc::from(n.attribute("iteratorVariable").unwrap_or("")),
                collection: Box::new(self.required_inner(n, "in", here)?),
                body: Box::new(self.required_inner(n, "return", here)?),
            },
            tag @ ("every" | "some") => BoxedKind::Quantified {
                every: tag == "every",
                var: Arc::from(n.attribute("iteratorVariable").unwrap_or("")),
                collection: Box::new(self.required_inner(n, "in", here)?),
                condition: Box::new(self.required_inner(n, "satisfies", here)?),
            },
            "filter" => BoxedKind::Filter {
                collection: Box::new(self.required_inner(n, "in", here)?),
                condition: Box::new(self.required_inner(n, "match", here)?),
            },
            other => {
                return Err(ParseError::Missing {
                    element: owner.to_string(),
                    what: format!("a boxed expression (found '{other}')"),
                })
            }
        };
        Ok(Boxed {
            id,
            type_ref: type_ref(n),
            kind,
        })
    }

    /// A function definition (`functionDefinition` or `encapsulatedLogic`).
    pub fn function(&self, n: Node, owner: &str) -> Result<FunctionDef, ParseError> {
        let params = children(n, self.ns, "formalParameter")
            .map(|p| {
                (
                    Arc::<str>::from(p.attribute("name").unwrap_or("")),
                    type_ref(p),
                )
            })
            .collect();
        let feel = matches!(n.attribute("kind"), None | Some("FEEL"));
        let body = if feel { self.inner(n, owner)? } else { None };
        Ok(FunctionDef { params, body, feel })
    }

    fn table(&self, n: Node, owner: &str) -> Result<Table, ParseError> {
        let ns = self.ns;
        let hit_policy = match (n.attribute("hitPolicy"), n.attribute("aggregation")) {
            (None | Some("UNIQUE"), _) => HitPolicy::Unique,
            (Some("ANY"), _) => HitPolicy::Any,
            (Some("PRIORITY"), _) => HitPolicy::Priority,
            (Some("FIRST"), _) => HitPolicy::First,
            (Some("RULE ORDER"), _) => HitPolicy::RuleOrder,
            (Some("OUTPUT ORDER"), _) => HitPolicy::OutputOrder,
            (Some("COLLECT"), a) => HitPolicy::Collect(match a {
                None => None,
                Some("SUM") => Some(Aggregation::Sum),
                Some("MIN") => Some(Aggregation::Min),
                Some("MAX") => Some(Aggregation::Max),
                Some("COUNT") => Some(Aggregation::Count),
                Some(other) => {
                    return Err(ParseError::Invalid {
                        element: owner.to_string(),
                        message: format!(
                            "unknown aggregation '{other}': expected SUM, MIN, MAX or COUNT"
                        ),
                    })
                }
            }),
            (Some(other), _) => {
                return Err(ParseError::Invalid {
                    element: owner.to_string(),
                    message: format!("unknown hit policy '{other}'"),
                })
            }
        };
        let mut inputs = Vec::new();
        for i in children(n, ns, "input") {
            let id: Arc<str> = Arc::from(i.attribute("id").unwrap_or(""));
            let here: &str = if id.is_empty() { owner } else { &id };
            let ie = child(i, ns, "inputExpression");
            let text = ie.map(|e| text_of(e, ns)).unwrap_or("");
            let values = match child(i, ns, "inputValues") {
                Some(v) => Some(self.tests(here, text_of(v, ns))?),
                None => None,
            };
            inputs.push(Input {
                name: Arc::from(i.attribute("label").unwrap_or(text.trim())),
                expression: self.compile(here, text)?,
                type_ref: ie.and_then(type_ref),
                values,
                id,
            });
        }
        let mut outputs = Vec::new();
        let table_name = n.attribute("outputLabel").unwrap_or("");
        let count = children(n, ns, "output").count();
        for o in children(n, ns, "output") {
            let id: Arc<str> = Arc::from(o.attribute("id").unwrap_or(""));
            let here: &str = if id.is_empty() { owner } else { &id };
            let (values, priority) = match child(o, ns, "outputValues") {
                Some(v) => {
                    let text = text_of(v, ns);
                    let list = format!("[{text}]");
                    (
                        Some(self.tests(here, text)?),
                        feel::compile_with_names(&list, &self.names).ok(),
                    )
                }
                None => (None, None),
            };
            let default = match child(o, ns, "defaultOutputEntry") {
                Some(d) => self.compile_opt(here, text_of(d, ns))?,
                None => None,
            };
            let name = o
                .attribute("name")
                .or(if count == 1 { Some(table_name) } else { None })
                .or(o.attribute("label"))
                .unwrap_or("");
            outputs.push(Output {
                name: Arc::from(name),
                type_ref: type_ref(o),
                values,
                priority,
                default,
                id,
            });
        }
        let mut rules = Vec::new();
        for r in children(n, ns, "rule") {
            let id: Arc<str> = Arc::from(r.attribute("id").unwrap_or(""));
            let here: &str = if id.is_empty() { owner } else { &id };
            let mut input_entries = Vec::new();
            for e in children(r, ns, "inputEntry") {
                input_entries.push(self.tests(here, text_of(e, ns))?);
            }
            let mut output_entries = Vec::new();
            for e in children(r, ns, "outputEntry") {
                output_entries.push(self.compile_opt(here, text_of(e, ns))?);
            }
            if input_entries.len() != inputs.len() || output_entries.len() != outputs.len() {
                return Err(ParseError::Invalid {
                    element: here.to_string(),
                    message: format!(
                        "rule has {} input and {} output entries, the table {} inputs and {} outputs",
                        input_entries.len(),
                        output_entries.len(),
                        inputs.len(),
                        outputs.len()
                    ),
                });
            }
            rules.push(Rule {
                id,
                input_entries,
                output_entries,
            });
        }
        Ok(Table {
            hit_policy,
            inputs,
            outputs,
            rules,
        })
    }
}

/// An invocation names its function; names with spaces or operator
/// characters are quoted so that FEEL reads them as one name.
fn quote_name(text: &str) -> String {
    let t = text.trim();
    let plain = t
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_' || c == '$' || c == '.');
    if plain || t.starts_with('`') {
        t.to_string()
    } else {
        format!("`{}`", t.replace('`', ""))
    }
}
