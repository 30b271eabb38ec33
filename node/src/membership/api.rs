//! Zeebe's cluster management API on the management port:
//! `GET /actuator/cluster` shows the cluster configuration (brokers, their
//! partitions with state and priority, the last and the pending change, the
//! routing of requests and messages) as Zeebe's `GetTopologyResponse`;
//! `PATCH /actuator/cluster` plans a change (`?dryRun=true`) or starts it
//! (a forced removal with `?force=true`), which [`super::run`] carries out.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::plan::{self, PatchRequest};
use super::{ClusterConfiguration, CompletedChange, MemberState};
use crate::context::BrokerContext;

/// The cluster API routes.
pub fn routes() -> Router<Arc<BrokerContext>> {
    Router::new().route("/actuator/cluster", get(topology).patch(patch))
}

/// The query of `PATCH /actuator/cluster`: `dryRun` (plan only) and
/// `force` (a forced removal), each `true` or `false`.
#[derive(Debug, Default, PartialEq, Eq)]
struct ChangeQuery {
    dry_run: bool,
    force: bool,
}

impl ChangeQuery {
    fn parse(query: Option<&str>) -> Result<ChangeQuery, String> {
        let mut out = ChangeQuery::default();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, "true"));
            let value = match value {
                "true" => true,
                "false" => false,
                other => return Err(format!("{name}={other}: true or false")),
            };
            match name {
                "dryRun" => out.dry_run = value,
                "force" => out.force = value,
                other => return Err(format!("unknown query parameter {other} (dryRun, force)")),
            }
        }
        Ok(out)
    }
}

fn refused(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "message": message }))).into_response()
}

/// `PATCH /actuator/cluster`: plans the change (Zeebe's
/// `PlannedOperationsResponse`), and unless `dryRun=true` starts it (202;
/// 409 while another change is under way); 400 names what is wrong with the
/// request.
async fn patch(
    State(context): State<Arc<BrokerContext>>,
    RawQuery(query): RawQuery,
    body: axum::body::Bytes,
) -> Response {
    let query = match ChangeQuery::parse(query.as_deref()) {
        Ok(query) => query,
        Err(e) => return refused(StatusCode::BAD_REQUEST, e),
    };
    let request: PatchRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return refused(
                StatusCode::BAD_REQUEST,
                format!(
                    "the body must be {{\"brokers\": {{\"add\": [..], \"remove\": [..], \
                     \"count\": n}}, \"partitions\": {{\"replicationFactor\": n}}}}: {e}"
                ),
            )
        }
    };
    if !context.membership.known() {
        return refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "this broker does not know the cluster configuration yet (empty data directory): \
             ask another broker"
                .into(),
        );
    }
    let current = context.membership.get();
    let plan = match plan::plan(
        &current,
        &request,
        query.force,
        &context.config.cluster.layout(),
    ) {
        Ok(plan) => plan,
        Err(e) => return refused(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let mut change_id = current.last_change.as_ref().map_or(0, |c| c.id) + 1;
    let mut status = StatusCode::OK;
    if !query.dry_run {
        if let Some(why) = unreachable_broker(&context, &plan) {
            return refused(StatusCode::BAD_REQUEST, why);
        }
        let me = context.config.cluster.node_id;
        let Some(next) = super::change::start(&current, &plan, me, crate::view::unix_now_ms())
        else {
            return refused(
                StatusCode::CONFLICT,
                "another cluster change is under way: see pendingChange in GET /actuator/cluster"
                    .into(),
            );
        };
        change_id = next.pending_change.as_ref().map_or(change_id, |c| c.id);
        if let Err(e) = context.membership.adopt(next) {
            return refused(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"));
        }
        status = StatusCode::ACCEPTED;
    }
    let body = Json(json!({
        "changeId": change_id,
        "currentTopology": brokers(&current),
        "plannedChanges": plan.operations,
        "expectedTopology": brokers(&plan.expected),
    }));
    (status, body).into_response()
}

/// Why a broker the change adds cannot be reached: every broker's internal
/// address is in `cluster.contact_points`, by id.
fn unreachable_broker(context: &BrokerContext, plan: &plan::Plan) -> Option<String> {
    let known = context.config.cluster.contact_points.len().max(1) as u32;
    plan.expected
        .members
        .iter()
        .filter(|(_, m)| m.state != MemberState::Left)
        .find(|(id, _)| **id >= known)
        .map(|(id, _)| {
            format!(
                "broker {id} has no address: cluster.contact_points names brokers 0 to {}; \
                 list every broker's internal address there, in id order",
                known - 1
            )
        })
}

async fn topology(State(context): State<Arc<BrokerContext>>) -> Json<Value> {
    let config = context.membership.get();
    Json(render(&config))
}

/// RFC 3339 in UTC, to the millisecond.
fn timestamp(unix_ms: u64) -> Value {
    match chrono::DateTime::from_timestamp_millis(unix_ms as i64) {
        Some(t) => json!(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        None => Value::Null,
    }
}

fn change(c: &CompletedChange) -> Value {
    json!({
        "id": c.id,
        "status": c.status,
        "startedAt": timestamp(c.started_ms),
        "completedAt": timestamp(c.completed_ms),
    })
}

/// The brokers of `config` as Zeebe's `BrokerState` list; brokers that
/// left are not listed.
fn brokers(config: &ClusterConfiguration) -> Vec<Value> {
    config
        .members
        .iter()
        .filter(|(_, m)| m.state != MemberState::Left)
        .map(|(id, m)| {
            let partitions: Vec<Value> = m
                .partitions
                .iter()
                .map(|(p, r)| json!({ "id": p, "state": r.state, "priority": r.priority }))
                .collect();
            json!({
                "id": id,
                "state": m.state,
                "version": m.version,
                "lastUpdatedAt": timestamp(m.last_updated_ms),
                "partitions": partitions,
            })
        })
        .collect()
}

/// `config` as Zeebe's `GetTopologyResponse`.
pub fn render(config: &ClusterConfiguration) -> Value {
    let mut out = json!({
        "version": config.version,
        "brokers": brokers(config),
        "routing": {
            "version": 1,
            "requestHandling": {
                "strategy": "AllPartitions",
                "partitionCount": config.partition_count,
            },
            "messageCorrelation": {
                "strategy": "HashMod",
                "partitionCount": config.message_partitions(),
            },
        },
        "partitionDistribution": { "type": "ROUND_ROBIN" },
    });
    if let Some(last) = &config.last_change {
        out["lastChange"] = change(last);
    }
    if let Some(pending) = &config.pending_change {
        let completed: Vec<Value> = pending
            .completed
            .iter()
            .map(|(op, at)| {
                let mut op = json!(op);
                op["completedAt"] = timestamp(*at);
                op
            })
            .collect();
        out["pendingChange"] = json!({
            "id": pending.id,
            "status": "IN_PROGRESS",
            "startedAt": timestamp(pending.started_ms),
            "completed": completed,
            "pending": pending.pending,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::ClusterShape;

    #[test]
    fn rendered_as_zeebe_renders_its_topology() {
        let shape = ClusterShape {
            cluster_size: 2,
            partitions: 2,
            replication_factor: 2,
        };
        let mut config = ClusterConfiguration::initial(&shape, 1_700_000_000_000);
        config.last_change = Some(CompletedChange {
            id: 4,
            status: "COMPLETED".into(),
            started_ms: 1_700_000_000_000,
            completed_ms: 1_700_000_001_500,
        });
        let v = render(&config);
        assert_eq!(v["version"], 1);
        assert_eq!(v["brokers"][0]["id"], 0);
        assert_eq!(v["brokers"][0]["state"], "ACTIVE");
        assert_eq!(v["brokers"][0]["lastUpdatedAt"], "2023-11-14T22:13:20.000Z");
        assert_eq!(
            v["brokers"][1]["partitions"],
            json!([
                { "id": 1, "state": "ACTIVE", "priority": 1 },
                { "id": 2, "state": "ACTIVE", "priority": 2 },
            ])
        );
        assert_eq!(v["lastChange"]["completedAt"], "2023-11-14T22:13:21.500Z");
        assert_eq!(v["routing"]["messageCorrelation"]["partitionCount"], 2);
        config.members.get_mut(&1).unwrap().state = MemberState::Left;
        assert_eq!(render(&config)["brokers"].as_array().unwrap().len(), 1);
    }
}
