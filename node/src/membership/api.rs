//! Zeebe's cluster management API on the management port:
//! `GET /actuator/cluster` shows the cluster configuration (brokers, their
//! partitions with state and priority, the last change, the routing of
//! requests and messages) as Zeebe's `GetTopologyResponse`.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{ClusterConfiguration, CompletedChange, MemberState};
use crate::context::BrokerContext;

/// The cluster API routes.
pub fn routes() -> Router<Arc<BrokerContext>> {
    Router::new().route("/actuator/cluster", get(topology))
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

/// `config` as Zeebe's `GetTopologyResponse`; brokers that left are not
/// listed.
pub fn render(config: &ClusterConfiguration) -> Value {
    let brokers: Vec<Value> = config
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
        .collect();
    let mut out = json!({
        "version": config.version,
        "brokers": brokers,
        "routing": {
            "version": 1,
            "requestHandling": {
                "strategy": "AllPartitions",
                "partitionCount": config.partition_count,
            },
            "messageCorrelation": {
                "strategy": "HashMod",
                "partitionCount": config.partition_count,
            },
        },
        "partitionDistribution": { "type": "ROUND_ROBIN" },
    });
    if let Some(last) = &config.last_change {
        out["lastChange"] = change(last);
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
