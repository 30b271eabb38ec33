//! Multi-tenancy through the real broker (`security.multi_tenancy`, basic
//! authentication): ann is in tenant acme, bob in globex. Each deploys and
//! runs the same process id in their own tenant; neither may name the
//! other's tenant, touch the other's instance or job, activate the other's
//! jobs, or find the other's data in secondary storage.

mod common;

use std::time::{Duration, Instant};

use common::{http_request_with, runtime, Broker, ONE_TASK};
use node::gateway::proto;
use node::gateway::proto::gateway_client::GatewayClient;
use tonic::transport::Channel;

const MAX_WAIT: Duration = Duration::from_secs(30);

fn basic(name: &str) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{name}:{name}"));
    format!("Basic {encoded}")
}

fn call(port: u16, method: &str, path: &str, user: &str, body: &str) -> (u16, String) {
    let headers = format!("Authorization: {}\r\n", basic(user));
    http_request_with(port, method, path, &headers, body)
}

fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < MAX_WAIT {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what}: not within {MAX_WAIT:?}");
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
    GatewayClient::with_interceptor(channel, As(basic(user).parse().unwrap()))
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
            format!("/v2/roles/admin/users/{user}"),
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
        assert!(
            activate(&mut ann, &[]).await.unwrap().is_empty(),
            "none in <default>"
        );
        let ann_jobs = activate(&mut ann, &["acme"]).await.unwrap();
        assert_eq!(ann_jobs.len(), 1);
        let complete = |key: i64| proto::CompleteJobRequest {
            job_key: key,
            variables: "{}".into(),
            ..Default::default()
        };
        let refused = bob
            .complete_job(complete(ann_jobs[0].key))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::NotFound, "{refused:?}");
        ann.complete_job(complete(ann_jobs[0].key))
            .await
            .expect("her own job");
        bob.complete_job(complete(bob_jobs[0].key))
            .await
            .expect("his own job");

        // Searches and reads see the caller's tenants only.
        let ann_key = ann_pi.process_instance_key.to_string();
        let bob_key = bob_pi.process_instance_key.to_string();
        eventually("both instances are in secondary storage", || {
            found_instances(rest, "ann").len() == 1 && found_instances(rest, "bob").len() == 1
        });
        assert_eq!(
            found_instances(rest, "ann"),
            [(ann_key.clone(), "acme".into())]
        );
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
