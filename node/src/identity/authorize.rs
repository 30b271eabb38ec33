//! What each operation needs: the resource type and the permission a
//! caller must hold on every resource of that type (a `*` authorization of
//! its own or of one of its roles). Operations absent from the tables need
//! authentication only (topology, status, who am I).
//!
//! Authorizations on one resource id (a process id, say) let through the
//! operations that name their resource, which then check it (see
//! `scope`), and the operations on instances, jobs, incidents, variables
//! and user tasks by key, which the engine checks against the process of
//! the entity (see `caller`); every other operation needs a `*` grant, so
//! a caller is never allowed more than its grants say.

use axum::http::Method;

/// (resource type, permission) an operation needs.
pub type Need = (&'static str, &'static str);

/// The resource type of processes; grants on some of them are checked by
/// the engine on the commands of their instances (see `caller`).
pub const PROCESS_DEFINITION: &str = "PROCESS_DEFINITION";

const CREATE_INSTANCE: Need = ("PROCESS_DEFINITION", "CREATE_PROCESS_INSTANCE");
const UPDATE_INSTANCE: Need = ("PROCESS_DEFINITION", "UPDATE_PROCESS_INSTANCE");
const CANCEL_INSTANCE: Need = ("PROCESS_DEFINITION", "CANCEL_PROCESS_INSTANCE");
const MODIFY_INSTANCE: Need = ("PROCESS_DEFINITION", "MODIFY_PROCESS_INSTANCE");
const READ_INSTANCE: Need = ("PROCESS_DEFINITION", "READ_PROCESS_INSTANCE");
const READ_DEFINITION: Need = ("PROCESS_DEFINITION", "READ_PROCESS_DEFINITION");
const READ_USER_TASK: Need = ("PROCESS_DEFINITION", "READ_USER_TASK");
const UPDATE_USER_TASK: Need = ("PROCESS_DEFINITION", "UPDATE_USER_TASK");
const DEPLOY: Need = ("RESOURCE", "CREATE");
const DELETE_RESOURCE: Need = ("RESOURCE", "DELETE_RESOURCE");
const EVALUATE: Need = ("DECISION_DEFINITION", "CREATE_DECISION_INSTANCE");
const PUBLISH: Need = ("MESSAGE", "CREATE");

/// Whether the gRPC method at `path` checks grants on single resources:
/// itself (see `scope`), or in the engine for the process of what it
/// touches (see `caller`).
pub fn grpc_by_resource(path: &str) -> bool {
    let method = path.rsplit('/').next().unwrap_or_default();
    matches!(
        method,
        "CreateProcessInstance"
            | "CreateProcessInstanceWithResult"
            | "EvaluateDecision"
            | "CancelProcessInstance"
            | "ModifyProcessInstance"
            | "MigrateProcessInstance"
            | "SetVariables"
            | "ResolveIncident"
            | "ActivateJobs"
            | "StreamActivatedJobs"
            | "CompleteJob"
            | "FailJob"
            | "ThrowError"
            | "UpdateJobRetries"
            | "UpdateJobTimeout"
    )
}

/// Whether the REST operation `method` on `template` checks grants on
/// single resources: creating an instance, evaluating a decision, and the
/// searches of process and decision data (narrowed to the granted ids)
/// check them themselves; the engine checks the operations on instances,
/// jobs, incidents, variables and user tasks by key (see `caller`).
pub fn rest_by_resource(method: &Method, template: &str) -> bool {
    let path = template.trim_start_matches("/v2");
    let by_key =
        matches!(
        (method.as_str(), path),
        ("POST", "/process-instances/{process_instance_key}/cancellation")
            | ("POST", "/process-instances/{process_instance_key}/modification")
            | ("POST", "/process-instances/{process_instance_key}/migration")
            | ("PUT", "/element-instances/{element_instance_key}/variables")
            | (
                "POST",
                "/element-instances/ad-hoc-activities/{ad_hoc_sub_process_instance_key}/activation"
            )
            | ("POST", "/jobs/activation")
            | ("POST", "/jobs/{job_key}/completion")
            | ("POST", "/jobs/{job_key}/failure")
            | ("POST", "/jobs/{job_key}/error")
            | ("PATCH", "/jobs/{job_key}")
            | ("POST", "/incidents/{incident_key}/resolution")
            | ("POST", "/user-tasks/{user_task_key}/assignment")
            | ("DELETE", "/user-tasks/{user_task_key}/assignee")
            | ("PATCH", "/user-tasks/{user_task_key}")
            | ("POST", "/user-tasks/{user_task_key}/completion")
    );
    by_key
        || *method == Method::POST
            && matches!(
                path,
                "/process-instances"
                    | "/decision-definitions/evaluation"
                    | "/process-definitions/search"
                    | "/process-instances/search"
                    | "/element-instances/search"
                    | "/jobs/search"
                    | "/incidents/search"
                    | "/user-tasks/search"
                    | "/decision-definitions/search"
            )
}

/// What the gRPC method at `path` (`/gateway_protocol.Gateway/Name`) needs.
pub fn grpc(path: &str) -> Option<Need> {
    let method = path.rsplit('/').next().unwrap_or_default();
    Some(match method {
        "Topology" => return None,
        "DeployProcess" | "DeployResource" => DEPLOY,
        "DeleteResource" => DELETE_RESOURCE,
        "CreateProcessInstance" | "CreateProcessInstanceWithResult" => CREATE_INSTANCE,
        "CancelProcessInstance" => CANCEL_INSTANCE,
        "ModifyProcessInstance" => MODIFY_INSTANCE,
        "EvaluateDecision" => EVALUATE,
        "PublishMessage" => PUBLISH,
        // Raw appends fill the log: benchmarks only, and admins only.
        "RawAppend" => ("SYSTEM", "UPDATE"),
        // Jobs, variables, incidents, migrations and signals act on
        // running instances (a signal may also start some).
        _ => UPDATE_INSTANCE,
    })
}

/// What the REST operation `method` on the route `template` (as
/// registered, under `/v2`) needs.
pub fn rest(method: &Method, template: &str) -> Option<Need> {
    let path = template.trim_start_matches("/v2");
    let read = *method == Method::GET || path.ends_with("/search");
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    // Reads and member searches need READ; adding and removing members
    // UPDATE.
    let identity_entity = |resource: &'static str| -> Need {
        match (method.clone(), segments.len()) {
            _ if read => (resource, "READ"),
            (Method::POST, 1) => (resource, "CREATE"),
            (Method::DELETE, 2) => (resource, "DELETE"),
            _ => (resource, "UPDATE"),
        }
    };
    Some(match segments[0] {
        "topology" | "status" | "authentication" => return None,
        "users" => identity_entity("USER"),
        "roles" => identity_entity("ROLE"),
        "groups" => identity_entity("GROUP"),
        "tenants" => identity_entity("TENANT"),
        "mapping-rules" => identity_entity("MAPPING_RULE"),
        "authorizations" => identity_entity("AUTHORIZATION"),
        "deployments" => DEPLOY,
        "resources" => DELETE_RESOURCE,
        "decision-definitions" if !read => EVALUATE,
        "decision-definitions" => ("DECISION_DEFINITION", "READ_DECISION_DEFINITION"),
        "decision-requirements" => ("DECISION_REQUIREMENTS_DEFINITION", "READ"),
        "decision-instances" => ("DECISION_DEFINITION", "READ_DECISION_INSTANCE"),
        "process-definitions" => READ_DEFINITION,
        "user-tasks" if read => READ_USER_TASK,
        "user-tasks" => UPDATE_USER_TASK,
        "process-instances" if read => READ_INSTANCE,
        "process-instances" if segments.len() == 1 => CREATE_INSTANCE,
        "process-instances" if path.ends_with("/cancellation") => CANCEL_INSTANCE,
        "process-instances" if path.ends_with("/modification") => MODIFY_INSTANCE,
        "messages" => PUBLISH,
        "element-instances" | "variables" | "incidents" | "jobs" | "message-subscriptions"
            if read =>
        {
            READ_INSTANCE
        }
        _ => UPDATE_INSTANCE,
    })
}

/// What a request to the management port needs (its public paths aside):
/// reading the cluster's state, or changing it.
pub fn management(method: &Method) -> Need {
    if *method == Method::GET {
        ("SYSTEM", "READ")
    } else {
        ("SYSTEM", "UPDATE")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_methods_need_their_permission() {
        assert_eq!(grpc("/gateway_protocol.Gateway/Topology"), None);
        assert_eq!(
            grpc("/gateway_protocol.Gateway/DeployResource"),
            Some(DEPLOY)
        );
        assert_eq!(
            grpc("/gateway_protocol.Gateway/CompleteJob"),
            Some(UPDATE_INSTANCE)
        );
        assert_eq!(
            grpc("/gateway_protocol.Gateway/CreateProcessInstanceWithResult"),
            Some(CREATE_INSTANCE)
        );
    }

    #[test]
    fn rest_routes_need_their_permission() {
        assert_eq!(rest(&Method::GET, "/v2/topology"), None);
        assert_eq!(rest(&Method::POST, "/v2/deployments"), Some(DEPLOY));
        assert_eq!(
            rest(&Method::POST, "/v2/process-instances"),
            Some(CREATE_INSTANCE)
        );
        assert_eq!(
            rest(&Method::POST, "/v2/process-instances/search"),
            Some(READ_INSTANCE)
        );
        assert_eq!(
            rest(
                &Method::POST,
                "/v2/process-instances/{process_instance_key}/cancellation"
            ),
            Some(CANCEL_INSTANCE)
        );
        assert_eq!(rest(&Method::POST, "/v2/users"), Some(("USER", "CREATE")));
        assert_eq!(
            rest(&Method::POST, "/v2/users/search"),
            Some(("USER", "READ"))
        );
        assert_eq!(
            rest(&Method::PUT, "/v2/users/{username}"),
            Some(("USER", "UPDATE"))
        );
        assert_eq!(
            rest(&Method::DELETE, "/v2/users/{username}"),
            Some(("USER", "DELETE"))
        );
        assert_eq!(
            rest(&Method::PUT, "/v2/roles/{role_id}/users/{username}"),
            Some(("ROLE", "UPDATE"))
        );
        assert_eq!(
            rest(&Method::DELETE, "/v2/roles/{role_id}/users/{username}"),
            Some(("ROLE", "UPDATE"))
        );
        assert_eq!(
            rest(&Method::POST, "/v2/tenants/{id}/groups/search"),
            Some(("TENANT", "READ"))
        );
        assert_eq!(
            rest(&Method::PUT, "/v2/groups/{id}/mapping-rules/{member}"),
            Some(("GROUP", "UPDATE"))
        );
        assert_eq!(
            rest(&Method::DELETE, "/v2/mapping-rules/{mapping_rule_id}"),
            Some(("MAPPING_RULE", "DELETE"))
        );
        assert_eq!(
            rest(&Method::POST, "/v2/jobs/activation"),
            Some(UPDATE_INSTANCE)
        );
        assert_eq!(
            rest(&Method::POST, "/v2/user-tasks/search"),
            Some(READ_USER_TASK)
        );
        assert_eq!(
            rest(&Method::POST, "/v2/decision-definitions/evaluation"),
            Some(EVALUATE)
        );
        // Every permission named exists in the engine's table.
        for need in [
            CREATE_INSTANCE,
            UPDATE_INSTANCE,
            CANCEL_INSTANCE,
            MODIFY_INSTANCE,
            READ_INSTANCE,
            READ_DEFINITION,
            READ_USER_TASK,
            UPDATE_USER_TASK,
            DEPLOY,
            DELETE_RESOURCE,
            EVALUATE,
            PUBLISH,
        ] {
            let permissions = engine::access::permissions_of(need.0).expect("a resource type");
            assert!(permissions.contains(&need.1), "{need:?}");
        }
    }
}
