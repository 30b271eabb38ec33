//! `GET /v2/topology` (the brokers and their partitions, as the gRPC
//! `Topology` answers) and `GET /v2/status` (204 while some partition has a
//! healthy leader, else 503).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::Shared;
use crate::gateway::proto;
use crate::gateway::proto::partition::{PartitionBrokerHealth, PartitionBrokerRole};
use crate::gateway::service;

fn partition(p: &proto::Partition) -> Value {
    let role = match PartitionBrokerRole::try_from(p.role) {
        Ok(PartitionBrokerRole::Leader) => "leader",
        Ok(PartitionBrokerRole::Follower) => "follower",
        _ => "inactive",
    };
    let health = match PartitionBrokerHealth::try_from(p.health) {
        Ok(PartitionBrokerHealth::Healthy) => "healthy",
        Ok(PartitionBrokerHealth::Unhealthy) => "unhealthy",
        _ => "dead",
    };
    json!({
        "partitionId": p.partition_id,
        "role": role,
        "health": health,
        "state": "active",
    })
}

/// `GET /v2/topology`.
pub async fn topology(rest: Shared) -> Json<Value> {
    let t = service::topology(rest.dispatcher.context());
    let brokers: Vec<Value> = t
        .brokers
        .iter()
        .map(|b| {
            json!({
                "nodeId": b.node_id,
                "brokerId": b.node_id.to_string(),
                "host": b.host,
                "port": b.port,
                "partitions": b.partitions.iter().map(partition).collect::<Vec<_>>(),
                "version": b.version,
            })
        })
        .collect();
    Json(json!({
        "brokers": brokers,
        "clusterId": null,
        "clusterSize": t.cluster_size,
        "partitionsCount": t.partitions_count,
        "replicationFactor": t.replication_factor,
        "gatewayVersion": t.gateway_version,
        "lastCompletedChangeId": "-1",
    }))
}

/// `GET /v2/status`.
pub async fn status(rest: Shared) -> Response {
    let t = service::topology(rest.dispatcher.context());
    let serving = t.brokers.iter().flat_map(|b| &b.partitions).any(|p| {
        p.role == PartitionBrokerRole::Leader as i32
            && p.health == PartitionBrokerHealth::Healthy as i32
    });
    if serving {
        StatusCode::NO_CONTENT.into_response()
    } else {
        StatusCode::SERVICE_UNAVAILABLE.into_response()
    }
}
