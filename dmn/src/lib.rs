//! DMN 1.5 decisions as Camunda 8 (Zeebe) evaluates them, as a sans-IO,
//! deterministic core: a `.dmn` resource is parsed once into a [`Drg`]
//! (decision requirements graph) with all FEEL compiled, then evaluated many
//! times against caller-supplied variables, instant and zone. No clock, no
//! host time zone, no I/O, no threads.

mod boxed_parse;
mod error;
mod eval;
mod functions;
pub mod model;
mod parse;
mod record;
pub mod table;
mod typing;
pub mod xml_depth;

pub use error::ParseError;
pub use parse::DMN_NAMESPACES;
pub use record::{
    EvaluatedDecision, EvaluatedInput, EvaluatedOutput, EvaluationFailure, EvaluationResult,
    MatchedRule,
};

use feel::{Value, Variables};
use model::{Bkm, Decision, DecisionService, InputData, ItemDefinition};
use std::sync::Arc;

/// Longest chain of decision requirements (or of knowledge requirements)
/// accepted; evaluation recurses along such chains.
pub const MAX_REQUIREMENT_DEPTH: usize = 64;

/// The parsed graph. Shared (`Arc`) by the functions it hands to FEEL.
#[derive(Debug)]
pub struct Graph {
    /// `definitions id`.
    pub id: Arc<str>,
    /// `definitions name`.
    pub name: Arc<str>,
    /// `definitions namespace`.
    pub namespace: Arc<str>,
    /// Decisions in document order.
    pub decisions: Vec<Decision>,
    /// Input data in document order.
    pub inputs: Vec<InputData>,
    /// Business knowledge models in document order.
    pub bkms: Vec<Bkm>,
    /// Decision services in document order.
    pub services: Vec<DecisionService>,
    /// Item definitions (types).
    pub item_definitions: Vec<ItemDefinition>,
}

/// A decision requirements graph, parsed and compiled. Immutable; cheap to
/// clone and safe to share between threads.
#[derive(Clone, Debug)]
pub struct Drg {
    graph: Arc<Graph>,
}

const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<Drg>();
};

impl Drg {
    /// Parses a DMN 1.1–1.5 resource.
    pub fn parse(xml: &str) -> Result<Drg, ParseError> {
        let (graph, _) = parse::parse(xml, false)?;
        Ok(Drg {
            graph: Arc::new(graph),
        })
    }

    /// Parses a resource whose decisions may hold FEEL that does not
    /// compile: such a decision (or knowledge model) fails when evaluated,
    /// with the parse error; the others work. The errors are returned too.
    /// Structural errors (XML, depth, references, cycles) still refuse it.
    pub fn parse_lenient(xml: &str) -> Result<(Drg, Vec<ParseError>), ParseError> {
        let (graph, errors) = parse::parse(xml, true)?;
        Ok((
            Drg {
                graph: Arc::new(graph),
            },
            errors,
        ))
    }

    /// The parsed model.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The DRG's id (`definitions id`).
    pub fn id(&self) -> &str {
        &self.graph.id
    }

    /// The DRG's name.
    pub fn name(&self) -> &str {
        &self.graph.name
    }

    /// The DRG's namespace.
    pub fn namespace(&self) -> &str {
        &self.graph.namespace
    }

    /// Decisions as (id, name), in document order.
    pub fn decisions(&self) -> impl Iterator<Item = (&str, &str)> {
        self.graph.decisions.iter().map(|d| (&*d.id, &*d.name))
    }

    /// Evaluates the decision with id `decision_id` (its required decisions
    /// first) against `variables`, at instant `now_ms` (epoch ms) in `zone`
    /// (IANA name or offset; for `now()` and `today()`).
    pub fn evaluate(
        &self,
        decision_id: &str,
        variables: &dyn Variables,
        now_ms: i64,
        zone: &str,
    ) -> Result<EvaluationResult, EvaluationFailure> {
        let index = self
            .graph
            .decisions
            .iter()
            .position(|d| &*d.id == decision_id)
            .ok_or_else(|| EvaluationFailure {
                decision_id: Arc::from(decision_id),
                message: format!(
                    "Expected to evaluate decision '{decision_id}', but no decision found for id '{decision_id}'"
                ),
            })?;
        eval::evaluate(&self.graph, index, variables, now_ms, zone)
    }

    /// Evaluates the decision named `name` (as [`Drg::evaluate`]).
    pub fn evaluate_by_name(
        &self,
        name: &str,
        variables: &dyn Variables,
        now_ms: i64,
        zone: &str,
    ) -> Result<EvaluationResult, EvaluationFailure> {
        match self.graph.decisions.iter().position(|d| &*d.name == name) {
            Some(index) => eval::evaluate(&self.graph, index, variables, now_ms, zone),
            None => self.evaluate(name, variables, now_ms, zone),
        }
    }

    /// Invokes the business knowledge model or decision service named
    /// `name` with arguments by parameter name (read from `variables`).
    pub fn invoke(
        &self,
        name: &str,
        variables: &dyn Variables,
        now_ms: i64,
        zone: &str,
    ) -> Result<Value, String> {
        functions::invoke_by_name(&self.graph, name, variables, now_ms, zone)
    }
}
