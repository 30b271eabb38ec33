//! Counts and times every client request, gRPC and REST, by method and
//! result code (`waggle_gateway_requests_total`,
//! `waggle_gateway_request_seconds`). The time is to the response head: for
//! a unary gRPC call that is the whole call, for a stream its start.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::metrics::Metrics;

/// gRPC: the method is the last segment of the path; the code is the
/// `grpc-status` of a trailers-only response (an error), else OK.
pub async fn grpc(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let method = request
        .uri()
        .path()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let code = response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map_or(tonic::Code::Ok, tonic::Code::from);
    metrics.activity.request(
        "grpc",
        &method,
        &format!("{code:?}"),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// REST: the route pattern (`/v2/jobs/{job_key}/completion`) and the HTTP
/// status.
pub async fn rest(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_string();
    let verb = request.method().as_str().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.activity.request(
        "rest",
        &format!("{verb} {route}"),
        response.status().as_str(),
        started.elapsed().as_secs_f64(),
    );
    response
}
