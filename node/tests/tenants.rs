//! Multi-tenancy through the real broker (`security.multi_tenancy`, basic
//! authentication): ann is in tenant acme, bob in globex. Each deploys and
//! runs the same process id in their own tenant; neither may name the
//! other's tenant, touch the other's instance or job, activate the other's
//! jobs, or find the other's data in secondary storage.

mod common;

use common::{basic, eventually, http_request_with, runtime, Broker, ONE_TASK};
use node::gateway::proto;
use node::gateway::proto::gateway_client::GatewayClient;
use tonic::transport::Channel;

fn call(port: u16, method: &str, path: &str, user: &str, body: &str) -> (u16, String) {
    let headers = format!("Authorization: {}\r\n", basic(user, user));
    http_request_with(port, method, path, &headers, body)
}

/// Sends a user's basic credentials with every call.
#[derive(Clone)]
struct As(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for As {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

type Client = GatewayClient<tonic::service::interceptor::InterceptedService<Channel, As>>;

async fn grpc(broker: &Broker, user: &str) -> Client {
    let channel = Channel::from_shared(broker.gateway_uri())
        .unwrap()
        .connect()
        .await
        .expect("connect");
    GatewayClient::with_interceptor(channel, As(basic(user, user).parse().unwrap()))
}

fn deploy(tenant: &str) -> proto::DeployResourceRequest {
    proto::DeployResourceRequest {
        resources: vec![proto::Resource {
            name: "one_task.bpmn".into(),
            content: ONE_TASK.as_bytes().to_vec(),
        }],
        tenant_id: tenant.into(),
    }
}

fn create(tenant: &str) -> proto::CreateProcessInstanceRequest {
    proto::CreateProcessInstanceRequest {
        bpmn_process_id: "one_task".into(),
        version: -1,
        tenant_id: tenant.into(),
        ..Default::default()
    }
}

fn activation(tenants: &[&str]) -> proto::ActivateJobsRequest {
    proto::ActivateJobsRequest {
        r#type: "work".into(),
        worker: "w".into(),
        timeout: 60_000,
        max_jobs_to_activate: 10,
        request_timeout: -1,
        tenant_ids: tenants.iter().map(|t| t.to_string()).collect(),
        ..Default::default()
    }
}

async fn activate(
    client: &mut Client,
    tenants: &[&str],
) -> Result<Vec<proto::ActivatedJob>, tonic::Status> {
    use tokio_stream::StreamExt;
    let mut stream = client
        .activate_jobs(activation(tenants))
        .await?
        .into_inner();
    let mut jobs = Vec::new();
    while let Some(batch) = stream.next().await {
        jobs.extend(batch?.jobs);
    }
    Ok(jobs)
}

/// The process instance keys and tenants `user` finds in secondary storage.
fn found_instances(rest: u16, user: &str) -> Vec<(String, String)> {
    let (status, body) = call(rest, "POST", "/v2/process-instances/search", user, "{}");
    assert_eq!(status, 200, "{body}");
    let found: serde_json::Value = serde_json::from_str(&body).unwrap();
    found["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["processInstanceKey"].as_str().unwrap().to_string(),
                i["tenantId"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Keys of ann's data in tenant acme.
struct Anns {
    instance: i64,
    definition: i64,
    job: i64,
    element_instance: i64,
    incident: i64,
}

/// Every RPC of the gateway about tenant data, by bob (globex only) on
/// ann's data (acme): the ones naming acme (or, naming none, `<default>`)
/// are `PERMISSION_DENIED`, the ones about her entities by key `NOT_FOUND`.
async fn every_rpc_of_another_tenant_is_refused(
    bob: &mut Client,
    anns: &Anns,
    bobs_definition: i64,
) {
    use tonic::Code::{NotFound, PermissionDenied};
    fn expect<T: std::fmt::Debug>(rpc: &str, result: Result<T, tonic::Status>, code: tonic::Code) {
        match result {
            Err(status) => assert_eq!(status.code(), code, "{rpc}: {status:?}"),
            Ok(answer) => panic!("{rpc}: {answer:?}, expected {code:?}"),
        }
    }
    expect(
        "DeployResource",
        bob.deploy_resource(deploy("acme")).await,
        PermissionDenied,
    );
    let deploy_process = proto::DeployProcessRequest {
        processes: vec![proto::ProcessRequestObject {
            name: "one_task.bpmn".into(),
            definition: ONE_TASK.as_bytes().to_vec(),
        }],
    };
    // Deprecated in Zeebe, still served: it deploys to `<default>`.
    #[allow(deprecated)]
    let deployed = bob.deploy_process(deploy_process).await;
    expect("DeployProcess (<default>)", deployed, PermissionDenied);
    expect(
        "CreateProcessInstance",
        bob.create_process_instance(create("acme")).await,
        PermissionDenied,
    );
    let by_key = proto::CreateProcessInstanceRequest {
        process_definition_key: anns.definition,
        ..Default::default()
    };
    expect(
        "CreateProcessInstance by key",
        bob.create_process_instance(by_key).await,
        PermissionDenied,
    );
    let with_result = proto::CreateProcessInstanceWithResultRequest {
        request: Some(create("acme")),
        ..Default::default()
    };
    expect(
        "CreateProcessInstanceWithResult",
        bob.create_process_instance_with_result(with_result).await,
        PermissionDenied,
    );
    let cancel = proto::CancelProcessInstanceRequest {
        process_instance_key: anns.instance,
        ..Default::default()
    };
    expect(
        "CancelProcessInstance",
        bob.cancel_process_instance(cancel).await,
        NotFound,
    );
    expect(
        "ActivateJobs",
        activate(bob, &["acme"]).await,
        PermissionDenied,
    );
    let stream = proto::StreamActivatedJobsRequest {
        r#type: "work".into(),
        timeout: 1_000,
        tenant_ids: vec!["acme".into()],
        ..Default::default()
    };
    expect(
        "StreamActivatedJobs",
        bob.stream_activated_jobs(stream).await.map(|_| ()),
        PermissionDenied,
    );
    let job = anns.job;
    let complete = proto::CompleteJobRequest {
        job_key: job,
        ..Default::default()
    };
    expect("CompleteJob", bob.complete_job(complete).await, NotFound);
    let fail = proto::FailJobRequest {
        job_key: job,
        retries: 1,
        ..Default::default()
    };
    expect("FailJob", bob.fail_job(fail).await, NotFound);
    let throw = proto::ThrowErrorRequest {
        job_key: job,
        error_code: "E".into(),
        ..Default::default()
    };
    expect("ThrowError", bob.throw_error(throw).await, NotFound);
    let retries = proto::UpdateJobRetriesRequest {
        job_key: job,
        retries: 5,
        ..Default::default()
    };
    expect(
        "UpdateJobRetries",
        bob.update_job_retries(retries).await,
        NotFound,
    );
    let timeout = proto::UpdateJobTimeoutRequest {
        job_key: job,
        timeout: 5_000,
        ..Default::default()
    };
    expect(
        "UpdateJobTimeout",
        bob.update_job_timeout(timeout).await,
        NotFound,
    );
    let publish = proto::PublishMessageRequest {
        name: "m".into(),
        correlation_key: "k".into(),
        tenant_id: "acme".into(),
        ..Default::default()
    };
    expect(
        "PublishMessage",
        bob.publish_message(publish).await,
        PermissionDenied,
    );
    let resolve = proto::ResolveIncidentRequest {
        incident_key: anns.incident,
        ..Default::default()
    };
    expect(
        "ResolveIncident",
        bob.resolve_incident(resolve).await,
        NotFound,
    );
    let variables = proto::SetVariablesRequest {
        element_instance_key: anns.instance,
        variables: r#"{"x": 1}"#.into(),
        ..Default::default()
    };
    expect("SetVariables", bob.set_variables(variables).await, NotFound);
    let signal = proto::BroadcastSignalRequest {
        signal_name: "s".into(),
        tenant_id: "acme".into(),
        ..Default::default()
    };
    expect(
        "BroadcastSignal",
        bob.broadcast_signal(signal).await,
        PermissionDenied,
    );
    let delete = proto::DeleteResourceRequest {
        resource_key: anns.definition,
        ..Default::default()
    };
    expect(
        "DeleteResource",
        bob.delete_resource(delete).await,
        NotFound,
    );
    let evaluate = proto::EvaluateDecisionRequest {
        decision_id: "d".into(),
        tenant_id: "acme".into(),
        ..Default::default()
    };
    expect(
        "EvaluateDecision",
        bob.evaluate_decision(evaluate).await,
        PermissionDenied,
    );
    let modify = proto::ModifyProcessInstanceRequest {
        process_instance_key: anns.instance,
        terminate_instructions: vec![
            proto::modify_process_instance_request::TerminateInstruction {
                element_instance_key: anns.element_instance,
            },
        ],
        ..Default::default()
    };
    expect(
        "ModifyProcessInstance",
        bob.modify_process_instance(modify).await,
        NotFound,
    );
    let migrate = proto::MigrateProcessInstanceRequest {
        process_instance_key: anns.instance,
        migration_plan: Some(proto::migrate_process_instance_request::MigrationPlan {
            target_process_definition_key: bobs_definition,
            mapping_instructions: vec![
                proto::migrate_process_instance_request::MappingInstruction {
                    source_element_id: "task".into(),
                    target_element_id: "task".into(),
                },
            ],
        }),
        ..Default::default()
    };
    expect(
        "MigrateProcessInstance",
        bob.migrate_process_instance(migrate).await,
        NotFound,
    );
}

#[test]
fn tenants_keep_their_data_apart() {
    let broker = Broker::start_dev_in(
        tempfile::tempdir().unwrap(),
        &[
            ("WAGGLE_SECURITY_AUTHENTICATION", "basic".into()),
            ("WAGGLE_SECURITY_INITIAL_USER", "demo:demo".into()),
            ("WAGGLE_SECURITY_MULTI_TENANCY", "true".into()),
        ],
    );
    let rest = broker.rest_port;
    eventually("the initial user demo exists", || {
        call(rest, "GET", "/v2/authentication/me", "demo", "").0 == 200
    });
    // operator: every permission of admin, but (unlike admin) in no tenant.
    let role = r#"{"roleId":"operator","name":"Operator"}"#;
    assert_eq!(call(rest, "POST", "/v2/roles", "demo", role).0, 201);
    let search = r#"{"filter":{"ownerId":"admin"}}"#;
    let (status, body) = call(rest, "POST", "/v2/authorizations/search", "demo", search);
    assert_eq!(status, 200, "{body}");
    let grants: serde_json::Value = serde_json::from_str(&body).unwrap();
    let grants = grants["items"].as_array().unwrap();
    assert!(!grants.is_empty(), "admin holds authorizations");
    for g in grants {
        let grant = serde_json::json!({
            "ownerId": "operator",
            "ownerType": "ROLE",
            "resourceType": g["resourceType"],
            "resourceId": g["resourceId"],
            "permissionTypes": g["permissionTypes"],
        });
        let (status, text) = call(
            rest,
            "POST",
            "/v2/authorizations",
            "demo",
            &grant.to_string(),
        );
        assert_eq!(status, 201, "{text}");
    }
    for (user, tenant) in [("ann", "acme"), ("bob", "globex")] {
        let body = format!(
            r#"{{"username":"{user}","password":"{user}","name":"{user}","email":"{user}@example.com"}}"#
        );
        assert_eq!(call(rest, "POST", "/v2/users", "demo", &body).0, 201);
        let body = format!(r#"{{"tenantId":"{tenant}","name":"{tenant}"}}"#);
        let (status, text) = call(rest, "POST", "/v2/tenants", "demo", &body);
        assert_eq!(status, 201, "{text}");
        for path in [
            format!("/v2/tenants/{tenant}/users/{user}"),
            format!("/v2/roles/operator/users/{user}"),
        ] {
            let (status, text) = call(rest, "PUT", &path, "demo", "");
            assert_eq!(status, 204, "{path}: {text}");
        }
    }
    eventually("ann is in acme", || {
        let (_, me) = call(rest, "GET", "/v2/authentication/me", "ann", "");
        me.contains("acme")
    });

    let rt = runtime();
    rt.block_on(async {
        let mut ann = grpc(&broker, "ann").await;
        let mut bob = grpc(&broker, "bob").await;

        // Each deploys one_task into their own tenant: version 1 twice.
        let deployed = ann
            .deploy_resource(deploy("acme"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(deployed.tenant_id, "acme");
        let bobs = bob
            .deploy_resource(deploy("globex"))
            .await
            .unwrap()
            .into_inner();
        for d in [&deployed, &bobs] {
            let Some(proto::deployment::Metadata::Process(p)) = &d.deployments[0].metadata else {
                panic!("a process: {d:?}");
            };
            assert_eq!(p.version, 1, "{d:?}");
        }
        let refused = ann.deploy_resource(deploy("globex")).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
        let refused = bob.deploy_resource(deploy("nobody")).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");

        let ann_pi = ann
            .create_process_instance(create("acme"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(ann_pi.tenant_id, "acme");
        let bob_pi = bob
            .create_process_instance(create("globex"))
            .await
            .unwrap()
            .into_inner();
        assert_ne!(ann_pi.process_definition_key, bob_pi.process_definition_key);
        let refused = bob
            .create_process_instance(create("acme"))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::PermissionDenied);

        // bob cannot touch ann's instance, nor her job.
        let cancel = proto::CancelProcessInstanceRequest {
            process_instance_key: ann_pi.process_instance_key,
            ..Default::default()
        };
        let refused = bob.cancel_process_instance(cancel).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::NotFound, "{refused:?}");
        let refused = activate(&mut bob, &["acme"]).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::PermissionDenied);
        let bob_jobs = activate(&mut bob, &["globex"]).await.unwrap();
        assert_eq!(bob_jobs.len(), 1, "only globex's job: {bob_jobs:?}");
        assert_eq!(bob_jobs[0].tenant_id, "globex");
        assert_eq!(
            bob_jobs[0].process_instance_key,
            bob_pi.process_instance_key
        );
        let refused = activate(&mut ann, &[]).await.unwrap_err();
        assert_eq!(
            refused.code(),
            tonic::Code::PermissionDenied,
            "ann is not in <default>"
        );
        // ann's second instance gets an incident.
        let ann_pi2 = ann
            .create_process_instance(create("acme"))
            .await
            .unwrap()
            .into_inner();
        let mut ann_jobs = activate(&mut ann, &["acme"]).await.unwrap();
        ann_jobs.sort_by_key(|j| j.process_instance_key != ann_pi.process_instance_key);
        assert_eq!(ann_jobs.len(), 2);
        assert_eq!(
            ann_jobs[1].process_instance_key,
            ann_pi2.process_instance_key
        );
        let fail = proto::FailJobRequest {
            job_key: ann_jobs[1].key,
            retries: 0,
            error_message: "no retries".into(),
            ..Default::default()
        };
        ann.fail_job(fail).await.expect("her job fails");
        let mut incident = 0;
        eventually("ann finds her incident", || {
            let (_, body) = call(rest, "POST", "/v2/incidents/search", "ann", "{}");
            let found: serde_json::Value = serde_json::from_str(&body).unwrap();
            let key = found["items"][0]["incidentKey"]
                .as_str()
                .map(|k| k.parse().unwrap());
            incident = key.unwrap_or(0);
            incident > 0
        });

        let anns = Anns {
            instance: ann_pi.process_instance_key,
            definition: ann_pi.process_definition_key,
            job: ann_jobs[0].key,
            element_instance: ann_jobs[0].element_instance_key,
            incident,
        };
        every_rpc_of_another_tenant_is_refused(&mut bob, &anns, bob_pi.process_definition_key)
            .await;

        // Nothing changed: ann completes her job, her incident is open.
        let complete = |key: i64| proto::CompleteJobRequest {
            job_key: key,
            variables: "{}".into(),
            ..Default::default()
        };
        ann.complete_job(complete(ann_jobs[0].key))
            .await
            .expect("her own job");
        let (_, body) = call(rest, "POST", "/v2/incidents/search", "ann", "{}");
        assert!(body.contains(r#""state":"ACTIVE""#), "{body}");
        bob.complete_job(complete(bob_jobs[0].key))
            .await
            .expect("his own job");

        // Searches and reads see the caller's tenants only.
        let ann_key = ann_pi.process_instance_key.to_string();
        let bob_key = bob_pi.process_instance_key.to_string();
        eventually("the instances are in secondary storage", || {
            found_instances(rest, "ann").len() == 2 && found_instances(rest, "bob").len() == 1
        });
        assert!(found_instances(rest, "ann").contains(&(ann_key.clone(), "acme".into())));
        assert!(found_instances(rest, "ann")
            .iter()
            .all(|(_, t)| t == "acme"));
        assert_eq!(
            found_instances(rest, "bob"),
            [(bob_key.clone(), "globex".into())]
        );
        assert!(
            found_instances(rest, "demo").is_empty(),
            "demo is in <default> only"
        );
        let path = format!("/v2/process-instances/{ann_key}");
        assert_eq!(call(rest, "GET", &path, "ann", "").0, 200);
        assert_eq!(call(rest, "GET", &path, "bob", "").0, 404);

        // REST names tenants the same way.
        let body = r#"{"processDefinitionId":"one_task","tenantId":"acme"}"#;
        assert_eq!(
            call(rest, "POST", "/v2/process-instances", "bob", body).0,
            403
        );
        let (status, text) = call(rest, "POST", "/v2/process-instances", "ann", body);
        assert_eq!(status, 200, "{text}");
        assert!(text.contains(r#""tenantId":"acme""#), "{text}");
    });
    broker.terminate();
}
