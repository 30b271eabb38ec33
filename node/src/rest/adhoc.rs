//! Ad-hoc sub-processes:
//! `POST /v2/element-instances/ad-hoc-activities/{adHocSubProcessInstanceKey}/activation`
//! with `{elements: [{elementId, variables}]}`, an
//! `AD_HOC_SUB_PROCESS_INSTRUCTION ACTIVATE` on the partition of the
//! sub-process instance key, answered 204.
//!
//! An empty list or an element without id is a 400 before anything is
//! sent; the engine answers 404 for an unknown sub-process instance or
//! elements it does not contain, 409 when it is not active, 400 for
//! duplicate elements.

use axum::extract::Path;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use super::body::{self, Body};
use super::instances::on_key;
use super::keys;
use super::problem::Problem;
use super::Shared;
use crate::command::PartitionCommand;
use engine::{AdHocActivateElement, AdHocSubProcessInstructionRecord};

/// Body of an activation.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Activation {
    elements: Option<Vec<Element>>,
}

/// One element to activate.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Element {
    element_id: Option<String>,
    variables: Option<Value>,
}

/// `POST /v2/element-instances/ad-hoc-activities/{key}/activation`.
pub async fn activate(
    rest: Shared,
    Path(key): Path<String>,
    Body(a): Body<Activation>,
) -> Result<StatusCode, Problem> {
    let field = "adHocSubProcessInstanceKey";
    let key = keys::parse(field, &key)?;
    let elements = a.elements.unwrap_or_default();
    if elements.is_empty() {
        return Err(Problem::bad_request("No elements provided."));
    }
    if elements.len() > engine::adhoc::MAX_ACTIVATE_ELEMENTS {
        return Err(Problem::bad_request(format!(
            "At most {} elements can be activated at once, but {} were given.",
            engine::adhoc::MAX_ACTIVATE_ELEMENTS,
            elements.len()
        )));
    }
    let mut activate_elements = Vec::with_capacity(elements.len());
    for (i, e) in elements.into_iter().enumerate() {
        let element_id = e.element_id.unwrap_or_default();
        if element_id.trim().is_empty() {
            return Err(Problem::bad_request(format!(
                "No elementId provided for elements[{i}]."
            )));
        }
        let variables = body::variables(&format!("elements[{i}].variables"), e.variables.as_ref())?;
        activate_elements.push(AdHocActivateElement {
            element_id,
            variables,
        });
    }
    let command = PartitionCommand::ActivateAdHocElements {
        value: Box::new(AdHocSubProcessInstructionRecord {
            ad_hoc_sub_process_instance_key: key,
            activate_elements,
        }),
    };
    on_key(&rest, field, key, command).await?;
    Ok(StatusCode::NO_CONTENT)
}
