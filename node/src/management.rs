//! Management HTTP on port 9600: `/startup` (start-up finished), `/ready`
//! (every local partition has joined its group and replayed, and the broker is
//! not stopping), `/health` (every shard loop is turning and no local
//! partition is degraded; a 503 names each degraded partition and why, e.g.
//! `partition 1: disk full (/var/lib/waggle): writes refused`) and `/metrics`
//! (Prometheus text format, or OpenMetrics when the scraper asks for it);
//! Zeebe's backup API (`crate::backup::api`) and cluster API
//! (`crate::membership::api`). Runs on the tokio threads for the life of the
//! broker.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::context::BrokerContext;
use crate::exposition;

/// A shard loop that has not turned for this long makes the broker unhealthy.
pub const MAX_SHARD_SILENCE_MS: u64 = 5_000;

/// The management routes over the broker's shared state.
pub fn router(context: Arc<BrokerContext>) -> Router {
    Router::new()
        .route("/startup", get(startup))
        .route("/ready", get(ready))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/incidents", get(incidents))
        .merge(crate::backup::api::routes())
        .merge(crate::membership::api::routes())
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&context.auth),
            crate::identity::auth::management,
        ))
        .with_state(context)
}

/// `GET /incidents`: the open incidents of the partitions this node leads
/// (JSON array), with the keys that `ResolveIncident` and `UpdateJobRetries`
/// take.
async fn incidents(State(context): State<Arc<BrokerContext>>) -> impl IntoResponse {
    axum::Json(context.shards.incidents().await)
}

fn verdict(ok: bool, what: &'static str) -> (StatusCode, &'static str) {
    if ok {
        (StatusCode::OK, what)
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not yet\n")
    }
}

async fn startup(State(context): State<Arc<BrokerContext>>) -> impl IntoResponse {
    verdict(context.view.started(), "started\n")
}

async fn ready(State(context): State<Arc<BrokerContext>>) -> impl IntoResponse {
    let view = &context.view;
    verdict(
        view.started() && view.all_ready() && !view.stopping(),
        "ready\n",
    )
}

async fn health(State(context): State<Arc<BrokerContext>>) -> impl IntoResponse {
    let view = &context.view;
    if !view.shards_alive(MAX_SHARD_SILENCE_MS) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("a shard loop has not turned for {MAX_SHARD_SILENCE_MS} ms\n"),
        );
    }
    let problems = view.problems();
    if problems.is_empty() {
        return (StatusCode::OK, "healthy\n".to_string());
    }
    let body: String = problems
        .iter()
        .map(|(p, why)| format!("partition {p}: {why}\n"))
        .collect();
    (StatusCode::SERVICE_UNAVAILABLE, body)
}

/// OpenMetrics when the scraper asks for it (`Accept`), else Prometheus
/// text format 0.0.4.
async fn metrics(
    State(context): State<Arc<BrokerContext>>,
    headers: axum::http::HeaderMap,
) -> impl IntoResponse {
    if let Some(forwarder) = &context.forwarder {
        context.metrics.replication.set_peers(forwarder.handle());
    }
    let text = context.metrics.render(&context.view, &context.limits);
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if exposition::wants_openmetrics(accept) {
        ([(header::CONTENT_TYPE, exposition::OPENMETRICS)], text)
    } else {
        (
            [(header::CONTENT_TYPE, exposition::PROMETHEUS)],
            exposition::to_prometheus(&text),
        )
    }
}
