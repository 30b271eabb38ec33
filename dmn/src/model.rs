//! The decision requirements graph as parsed: decisions, input data,
//! business knowledge models, decision services and item definitions, with
//! their decision logic as boxed expressions whose FEEL is already compiled.
//! Requirements are resolved to indices into the graph's vectors, so
//! evaluation never looks an element up by text.

use feel::{Expression, UnaryTests};
use std::sync::Arc;

/// A type reference (`typeRef`), resolved at evaluation against the item
/// definitions (FEEL built-in types or an item definition's name).
pub type TypeRef = Option<Arc<str>>;

/// An item definition: a named type, possibly a collection, restricted by
/// allowed values, or a structure of components.
#[derive(Debug)]
pub struct ItemDefinition {
    /// Name (for components: the entry name).
    pub name: Arc<str>,
    /// Base type when not a structure.
    pub type_ref: TypeRef,
    /// Allowed values (unary tests), if restricted.
    pub allowed_values: Option<UnaryTests>,
    /// Whether values are lists of the type.
    pub collection: bool,
    /// Components of a structure.
    pub components: Vec<ItemDefinition>,
    /// Whether the type is a function type (`functionItem`).
    pub function: bool,
}

/// A decision.
#[derive(Debug)]
pub struct Decision {
    /// `id` attribute.
    pub id: Arc<str>,
    /// `name` attribute (the variable its result is known by).
    pub name: Arc<str>,
    /// The result's type (`variable typeRef`).
    pub type_ref: TypeRef,
    /// Required decisions (indices into [`crate::Drg::decisions`]).
    pub required_decisions: Vec<usize>,
    /// Required input data (indices into `inputs`).
    pub required_inputs: Vec<usize>,
    /// Required knowledge (business knowledge models or decision services).
    pub required_knowledge: Vec<Invocable>,
    /// The decision logic; `None` for a decision without one.
    pub logic: Option<Boxed>,
}

/// An input data element.
#[derive(Debug)]
pub struct InputData {
    /// `id` attribute.
    pub id: Arc<str>,
    /// `name` attribute (the variable it is read from).
    pub name: Arc<str>,
    /// The value's type.
    pub type_ref: TypeRef,
}

/// A business knowledge model: a named function.
#[derive(Debug)]
pub struct Bkm {
    /// `id` attribute.
    pub id: Arc<str>,
    /// `name` attribute.
    pub name: Arc<str>,
    /// Result type.
    pub type_ref: TypeRef,
    /// Required knowledge (other models or services it calls).
    pub required_knowledge: Vec<Invocable>,
    /// The encapsulated logic (a function definition); `None` when empty.
    pub logic: Option<FunctionDef>,
}

/// A decision service: output decisions computed from input decisions and
/// input data, callable as a function of those inputs.
#[derive(Debug)]
pub struct DecisionService {
    /// `id` attribute.
    pub id: Arc<str>,
    /// `name` attribute.
    pub name: Arc<str>,
    /// Output type.
    pub type_ref: TypeRef,
    /// Output decisions (indices into `decisions`).
    pub outputs: Vec<usize>,
    /// Input decisions: parameters that replace those decisions' results.
    pub input_decisions: Vec<usize>,
    /// Input data parameters.
    pub input_data: Vec<usize>,
}

/// Something a decision or model can call by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invocable {
    /// A business knowledge model (index into `bkms`).
    Bkm(usize),
    /// A decision service (index into `services`).
    Service(usize),
}

/// A boxed expression with its element id and declared type.
#[derive(Debug)]
pub struct Boxed {
    /// `id` attribute of the expression element (may be empty).
    pub id: Arc<str>,
    /// `typeRef` of the expression element.
    pub type_ref: TypeRef,
    /// What kind of expression.
    pub kind: BoxedKind,
}

/// The boxed expression kinds of DMN 1.5.
#[derive(Debug)]
pub enum BoxedKind {
    /// FEEL text, compiled; `None` when the text is empty.
    Literal(Option<Expression>, Arc<str>),
    /// A decision table.
    Table(Box<crate::table::Table>),
    /// Context entries; an entry without a variable is the result.
    Context(Vec<ContextEntry>),
    /// Invocation of a named function with bindings.
    Invocation {
        /// Expression yielding the function (usually its name).
        callee: Expression,
        /// Parameter name and bound expression (`None`: null).
        bindings: Vec<(Arc<str>, Option<Boxed>)>,
    },
    /// A list of expressions.
    List(Vec<Boxed>),
    /// A relation: a list of contexts with the given columns.
    Relation {
        /// Column names.
        columns: Vec<Arc<str>>,
        /// Rows of cells, one per column.
        rows: Vec<Vec<Boxed>>,
    },
    /// A function definition.
    Function(Arc<FunctionDef>),
    /// `if`/`then`/`else`.
    Conditional(Box<[Boxed; 3]>),
    /// `for var in collection return body`.
    For {
        /// Iteration variable.
        var: Arc<str>,
        /// The collection.
        collection: Box<Boxed>,
        /// The body.
        body: Box<Boxed>,
    },
    /// `some`/`every var in collection satisfies condition`.
    Quantified {
        /// `every` (else `some`).
        every: bool,
        /// Iteration variable.
        var: Arc<str>,
        /// The collection.
        collection: Box<Boxed>,
        /// The condition.
        condition: Box<Boxed>,
    },
    /// Logic that failed to parse (lenient parsing only): evaluating it
    /// fails with the parse error.
    Invalid(String),
    /// `collection[match]`.
    Filter {
        /// The list.
        collection: Box<Boxed>,
        /// The condition, with `item` and the item's entries in scope.
        condition: Box<Boxed>,
    },
}

/// A context entry.
#[derive(Debug)]
pub struct ContextEntry {
    /// Entry name and type; `None` for the final result entry.
    pub variable: Option<(Arc<str>, TypeRef)>,
    /// The entry's value.
    pub value: Option<Boxed>,
}

/// A function definition (boxed or a model's encapsulated logic).
#[derive(Debug)]
pub struct FunctionDef {
    /// Parameters with their types.
    pub params: Vec<(Arc<str>, TypeRef)>,
    /// The body; `None` when empty.
    pub body: Option<Boxed>,
    /// Whether the kind is FEEL (others are refused at evaluation).
    pub feel: bool,
}

impl BoxedKind {
    /// The decision type name as Zeebe's evaluated decision records spell it.
    pub fn type_name(&self) -> &'static str {
        match self {
            BoxedKind::Literal(..) => "LITERAL_EXPRESSION",
            BoxedKind::Table(_) => "DECISION_TABLE",
            BoxedKind::Context(_) => "CONTEXT",
            BoxedKind::Invocation { .. } => "INVOCATION",
            BoxedKind::List(_) => "LIST",
            BoxedKind::Relation { .. } => "RELATION",
            BoxedKind::Function(_) => "FUNCTION_DEFINITION",
            BoxedKind::Conditional(_) => "CONDITIONAL",
            BoxedKind::For { .. } => "FOR",
            BoxedKind::Quantified { every: true, .. } => "EVERY",
            BoxedKind::Quantified { every: false, .. } => "SOME",
            BoxedKind::Filter { .. } => "FILTER",
            BoxedKind::Invalid(_) => "UNKNOWN",
        }
    }
}
