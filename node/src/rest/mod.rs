//! The Orchestration Cluster REST API (v2) on `rest.port` (8080): the
//! commands of the Zeebe gateway over HTTP/JSON, routed to partition leaders
//! by the same [`Dispatcher`] as gRPC, so both surfaces have the same
//! semantics, backpressure and timeouts. See `README.md` beside this file.
//!
//! Request bodies are read as Camunda's gateway reads them: unknown
//! properties are ignored (fields of later API versions included), keys come
//! as strings or numbers, and responses carry every property the current
//! specification requires (absent features as `null` or empty lists).
//!
//! Runs on the tokio threads for the life of the broker; handlers hold no
//! state of their own beyond the round-robin position for new instances.
//!
//! The same port serves Operate and Tasklist (`/operate/`, `/tasklist/`;
//! the `ui` crate), which use these routes only.

mod access;
mod adhoc;
mod body;
mod cluster;
mod collectives;
mod decisions;
mod deployments;
mod entity_search;
mod forms;
mod hierarchy;
mod instances;
mod jobs;
mod keys;
mod messages;
mod modify;
pub mod problem;
mod search;
mod user_tasks;
mod users;

use std::sync::Arc;

use axum::routing::{delete, get, patch, post, put};
use axum::Router;

use crate::context::BrokerContext;
use crate::gateway::dispatch::Dispatcher;
use crate::routing::RoundRobin;

/// What the handlers share.
#[derive(Debug)]
pub struct Rest {
    dispatcher: Dispatcher,
    round_robin: RoundRobin,
    /// Secondary storage, when configured: the searches read it.
    search: Option<store::Store>,
}

/// Shared handle the handlers get.
type Shared = axum::extract::State<Arc<Rest>>;

/// The `/v2` routes over the broker's shared state. Request bodies are
/// bounded by `network.max_message_size_bytes`, as gRPC requests are.
pub fn router(context: Arc<BrokerContext>) -> Router {
    let max_body = context.config.network.max_message_size_bytes as usize;
    let metrics = Arc::clone(&context.metrics);
    let auth = Arc::clone(&context.auth);
    let login = ui_login(&context.config.security);
    let rest = Arc::new(Rest {
        search: search::open(&context.config),
        dispatcher: Dispatcher::new(context),
        round_robin: RoundRobin::default(),
    });
    let v2 = Router::new()
        .route("/topology", get(cluster::topology))
        .route("/status", get(cluster::status))
        .route("/deployments", post(deployments::deploy))
        .route(
            "/resources/{resource_key}/deletion",
            post(deployments::delete),
        )
        .route(
            "/decision-definitions/evaluation",
            post(decisions::evaluate),
        )
        .route("/process-instances", post(instances::create))
        .route(
            "/process-definitions/search",
            post(search::process_definitions),
        )
        .route(
            "/process-definitions/{process_definition_key}",
            get(search::process_definition),
        )
        .route(
            "/process-definitions/{process_definition_key}/xml",
            get(search::process_definition_xml),
        )
        .route("/process-instances/search", post(search::process_instances))
        .route(
            "/process-instances/{process_instance_key}",
            get(search::process_instance),
        )
        .route(
            "/process-instances/{process_instance_key}/statistics/element-instances",
            get(search::element_statistics),
        )
        .route(
            "/process-instances/{process_instance_key}/call-hierarchy",
            get(hierarchy::call_hierarchy),
        )
        .route("/element-instances/search", post(search::element_instances))
        .route(
            "/element-instances/{element_instance_key}",
            get(search::element_instance),
        )
        .route("/variables/search", post(search::variables))
        .route("/variables/{variable_key}", get(search::variable))
        .route("/jobs/search", post(search::jobs))
        .route(
            "/decision-definitions/search",
            post(search::decision_definitions),
        )
        .route(
            "/decision-definitions/{decision_definition_key}",
            get(search::decision_definition),
        )
        .route(
            "/decision-definitions/{decision_definition_key}/xml",
            get(search::decision_definition_xml),
        )
        .route(
            "/decision-requirements/search",
            post(search::decision_requirements),
        )
        .route(
            "/decision-requirements/{decision_requirements_key}",
            get(search::decision_requirements_by_key),
        )
        .route(
            "/decision-requirements/{decision_requirements_key}/xml",
            get(search::decision_requirements_xml),
        )
        .route(
            "/decision-instances/search",
            post(search::decision_instances),
        )
        .route(
            "/decision-instances/{decision_evaluation_instance_key}",
            get(search::decision_instance),
        )
        .route(
            "/message-subscriptions/search",
            post(search::message_subscriptions),
        )
        .route("/incidents/search", post(search::incidents))
        .route("/incidents/{incident_key}", get(search::incident))
        .route("/user-tasks/search", post(search::user_tasks))
        .route(
            "/process-instances/{process_instance_key}/cancellation",
            post(instances::cancel),
        )
        .route(
            "/process-instances/{process_instance_key}/modification",
            post(modify::modify),
        )
        .route(
            "/process-instances/{process_instance_key}/migration",
            post(modify::migrate),
        )
        .route(
            "/element-instances/{element_instance_key}/variables",
            put(instances::set_variables),
        )
        .route("/jobs/activation", post(jobs::activate))
        .route("/jobs/{job_key}/completion", post(jobs::complete))
        .route("/jobs/{job_key}/failure", post(jobs::fail))
        .route("/jobs/{job_key}/error", post(jobs::throw_error))
        .route("/jobs/{job_key}", patch(jobs::update))
        .route(
            "/incidents/{incident_key}/resolution",
            post(messages::resolve_incident),
        )
        .route("/messages/publication", post(messages::publish))
        .route("/signals/broadcast", post(messages::broadcast))
        .route(
            "/user-tasks/{user_task_key}/assignment",
            post(user_tasks::assign),
        )
        .route(
            "/user-tasks/{user_task_key}/assignee",
            delete(user_tasks::unassign),
        )
        .route(
            "/user-tasks/{user_task_key}",
            get(search::user_task).patch(user_tasks::update),
        )
        .route(
            "/user-tasks/{user_task_key}/form",
            get(forms::user_task_form),
        )
        .route(
            "/process-definitions/{process_definition_key}/form",
            get(forms::start_form),
        )
        .route(
            "/user-tasks/{user_task_key}/completion",
            post(user_tasks::complete),
        )
        .route(
            "/element-instances/ad-hoc-activities/{ad_hoc_sub_process_instance_key}/activation",
            post(adhoc::activate),
        )
        .route("/users", post(users::create))
        .route("/users/search", post(users::search))
        .route(
            "/users/{username}",
            get(users::get).put(users::update).delete(users::delete),
        )
        .route("/authentication/me", get(users::me))
        .route("/authorizations", post(access::create_authorization))
        .route(
            "/authorizations/search",
            post(access::search_authorizations),
        )
        .route(
            "/authorizations/{authorization_key}",
            get(access::get_authorization)
                .put(access::update_authorization)
                .delete(access::delete_authorization),
        )
        .route("/mapping-rules", post(access::create_mapping_rule))
        .route("/mapping-rules/search", post(access::search_mapping_rules))
        .route(
            "/mapping-rules/{mapping_rule_id}",
            get(access::get_mapping_rule)
                .put(access::update_mapping_rule)
                .delete(access::delete_mapping_rule),
        );
    let v2 = collectives::routes(v2)
        .route_layer(axum::middleware::from_fn_with_state(
            auth,
            crate::identity::auth::rest,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            metrics,
            crate::request_metrics::rest,
        ))
        .with_state(rest);
    Router::new()
        .nest("/v2", v2)
        // Operate and Tasklist: public assets that call the routes above.
        .merge(ui::router(login))
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        // Outermost, so that every error of the port, a path no route
        // takes included, is a problem.
        .layer(axum::middleware::from_fn(problem::fill_instance))
}

/// How Operate and Tasklist sign users in, by the `[security]` table.
fn ui_login(security: &crate::identity::config::SecurityConfig) -> ui::Login {
    use crate::identity::config::Authentication;
    match security.authentication {
        Authentication::None => ui::Login::None,
        Authentication::Basic => ui::Login::Basic,
        Authentication::Oidc => ui::Login::Oidc {
            issuer: security.oidc_issuer_uri.clone(),
            client_id: security.oidc_ui_client_id.clone(),
            scope: security.oidc_ui_scope.clone(),
        },
    }
}
