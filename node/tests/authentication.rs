//! Basic authentication (`security.authentication = "basic"`): anonymous
//! and wrong credentials are refused on every client port (REST 401, gRPC
//! UNAUTHENTICATED, management 401 beyond health and metrics) and change
//! nothing; the initial user and users created through REST log in; a
//! changed password or a deleted user stops working at once; users survive
//! a restart. `none` off loopback is a configuration error.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{
    basic, eventually, free_port, http_request_with, run_waggle, runtime, Broker, ONE_TASK,
};
use node::gateway::proto;
use node::gateway::proto::gateway_client::GatewayClient;
use tonic::transport::Channel;

/// `method path` on `port` as `auth` (an authorization header value).
fn call(port: u16, method: &str, path: &str, auth: Option<&str>, body: &str) -> (u16, String) {
    let headers = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    http_request_with(port, method, path, &headers, body)
}

fn start(dir: tempfile::TempDir) -> Broker {
    Broker::start_dev_in(
        dir,
        &[
            ("WAGGLE_SECURITY_AUTHENTICATION", "basic".into()),
            ("WAGGLE_SECURITY_INITIAL_USER", "demo:demo".into()),
        ],
    )
}

async fn grpc(
    broker: &Broker,
    auth: Option<&str>,
) -> GatewayClient<
    tonic::service::interceptor::InterceptedService<Channel, impl tonic::service::Interceptor>,
> {
    let channel = Channel::from_shared(broker.gateway_uri())
        .unwrap()
        .connect()
        .await
        .expect("connect");
    let header: Option<tonic::metadata::MetadataValue<_>> = auth.map(|a| a.parse().unwrap());
    GatewayClient::with_interceptor(channel, move |mut request: tonic::Request<()>| {
        if let Some(value) = &header {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    })
}

fn deploy_request() -> proto::DeployResourceRequest {
    proto::DeployResourceRequest {
        resources: vec![proto::Resource {
            name: "one_task.bpmn".into(),
            content: ONE_TASK.as_bytes().to_vec(),
        }],
        tenant_id: String::new(),
    }
}

/// The raw response head of an anonymous `GET path` on `port`.
fn response_head(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text.split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn basic_authentication_guards_every_client_port() {
    let broker = start(tempfile::tempdir().unwrap());
    let (rest, management) = (broker.rest_port, broker.management_port);
    let demo = basic("demo", "demo");
    eventually("the initial user logs in as an admin", || {
        call(management, "GET", "/incidents", Some(&demo), "").0 == 200
    });

    // REST: anonymous, wrong password, unknown user, garbage.
    for auth in [
        None,
        Some(basic("demo", "wrong")),
        Some(basic("nobody", "demo")),
        Some("Basic !!!".to_string()),
        Some("Bearer abc".to_string()),
    ] {
        let (status, body) = call(rest, "GET", "/v2/topology", auth.as_deref(), "");
        assert_eq!(status, 401, "{auth:?}: {body}");
        assert!(body.contains("UNAUTHORIZED"), "{body}");
    }
    let head = response_head(rest, "/v2/topology");
    assert!(
        head.starts_with("HTTP/1.0 401") || head.starts_with("HTTP/1.1 401"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: basic"),
        "{head}"
    );
    let (status, me) = call(rest, "GET", "/v2/authentication/me", Some(&demo), "");
    assert_eq!(status, 200, "{me}");
    let me: serde_json::Value = serde_json::from_str(&me).unwrap();
    assert_eq!(me["username"], "demo");

    // Management: health and metrics are public, the rest is not.
    assert_eq!(call(management, "GET", "/health", None, "").0, 200);
    assert_eq!(call(management, "GET", "/metrics", None, "").0, 200);
    assert_eq!(call(management, "GET", "/incidents", None, "").0, 401);
    assert_eq!(
        call(management, "GET", "/incidents", Some(&demo), "").0,
        200
    );
    assert_eq!(
        call(management, "GET", "/actuator/cluster", None, "").0,
        401
    );
    assert_eq!(
        call(management, "GET", "/actuator/cluster", Some(&demo), "").0,
        200
    );

    // gRPC: anonymous and wrong credentials change nothing.
    let rt = runtime();
    rt.block_on(async {
        for auth in [None, Some(basic("demo", "wrong"))] {
            let mut client = grpc(&broker, auth.as_deref()).await;
            let status = client
                .topology(proto::TopologyRequest {})
                .await
                .expect_err("refused");
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
            let status = client
                .deploy_resource(deploy_request())
                .await
                .expect_err("refused");
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
        }
        let mut client = grpc(&broker, Some(&demo)).await;
        client
            .topology(proto::TopologyRequest {})
            .await
            .expect("topology");
        let deployed = client
            .deploy_resource(deploy_request())
            .await
            .expect("deploy")
            .into_inner();
        let process = match &deployed.deployments[0].metadata {
            Some(proto::deployment::Metadata::Process(p)) => p.clone(),
            other => panic!("deployed {other:?}"),
        };
        assert_eq!(process.version, 1, "the refused deployments left nothing");
    });

    // Users through REST: create, log in, change the password, delete.
    let alice = basic("alice", "first");
    let (status, body) = call(
        rest,
        "POST",
        "/v2/users",
        Some(&demo),
        r#"{"username":"alice","password":"first","name":"Alice","email":"alice@example.com"}"#,
    );
    assert_eq!(status, 201, "{body}");
    assert!(
        !body.contains("first") && !body.contains("argon2"),
        "{body}"
    );
    let (status, body) = call(
        rest,
        "POST",
        "/v2/users",
        Some(&demo),
        r#"{"username":"alice","password":"again"}"#,
    );
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        call(
            rest,
            "POST",
            "/v2/users",
            None,
            r#"{"username":"eve","password":"x"}"#
        )
        .0,
        401
    );
    eventually("alice logs in", || {
        call(rest, "GET", "/v2/topology", Some(&alice), "").0 == 200
    });
    let (status, body) = call(rest, "GET", "/v2/users/alice", Some(&demo), "");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("alice@example.com") && !body.contains("argon2"),
        "{body}"
    );
    let (status, body) = call(
        rest,
        "POST",
        "/v2/users/search",
        Some(&demo),
        r#"{"filter":{"username":{"$like":"a*"}}}"#,
    );
    assert_eq!(status, 200, "{body}");
    let found: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(found["page"]["totalItems"], 1, "{body}");
    assert_eq!(found["items"][0]["name"], "Alice");

    authorizations_decide_what_alice_may_do(&broker, &alice, &demo);

    let (status, body) = call(
        rest,
        "PUT",
        "/v2/users/alice",
        Some(&demo),
        r#"{"password":"second"}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Alice"), "the name is kept: {body}");
    eventually("the old password stops working", || {
        call(rest, "GET", "/v2/topology", Some(&alice), "").0 == 401
    });
    let alice = basic("alice", "second");
    assert_eq!(call(rest, "GET", "/v2/topology", Some(&alice), "").0, 200);
    assert_eq!(
        call(rest, "DELETE", "/v2/users/alice", Some(&demo), "").0,
        204
    );
    eventually("a deleted user is refused", || {
        call(rest, "GET", "/v2/topology", Some(&alice), "").0 == 401
    });
    assert_eq!(
        call(rest, "DELETE", "/v2/users/alice", Some(&demo), "").0,
        404
    );

    // The CLI.
    let env = [(
        "WAGGLE_ADDRESS",
        format!("127.0.0.1:{}", broker.gateway_port),
    )];
    let (ok, _, stderr) = run_waggle(broker.dir.path(), &["status"], &env);
    assert!(!ok && stderr.contains("Unauthenticated"), "{stderr}");
    let (ok, stdout, stderr) = run_waggle(
        broker.dir.path(),
        &["status", "--username", "demo", "--password", "demo"],
        &env,
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("brokers"), "{stdout}");
    identities_through_the_cli(&broker);
    grants_on_one_process(&broker, &demo);

    // Users survive a restart; the initial user is not created twice.
    let (status, dir) = broker.terminate_keeping_dir();
    assert!(status.success(), "{status:?}");
    let broker = start(dir);
    let rest = broker.rest_port;
    eventually("demo logs in after the restart", || {
        call(rest, "GET", "/v2/topology", Some(&demo), "").0 == 200
    });
    assert_eq!(call(rest, "GET", "/v2/topology", Some(&alice), "").0, 401);
    let status = broker.terminate();
    assert!(status.success(), "{status:?}");
}

/// A user without roles may log in and do nothing else; read-only admins
/// read; a role with one grant allows what it grants, for REST and gRPC.
fn authorizations_decide_what_alice_may_do(broker: &Broker, alice: &str, demo: &str) {
    let (rest, management) = (broker.rest_port, broker.management_port);
    let rt = runtime();
    let deploy_as = |auth: &str| {
        rt.block_on(async {
            let mut client = grpc(broker, Some(auth)).await;
            client.deploy_resource(deploy_request()).await.map(|_| ())
        })
    };
    let search = |auth: &str| call(rest, "POST", "/v2/users/search", Some(auth), "{}");
    let (status, body) = search(alice);
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("FORBIDDEN") && body.contains("READ") && body.contains("USER"),
        "{body}"
    );
    assert_eq!(
        call(rest, "GET", "/v2/authentication/me", Some(alice), "").0,
        200
    );
    assert_eq!(
        call(management, "GET", "/incidents", Some(alice), "").0,
        403
    );
    let refused = deploy_as(alice).expect_err("alice may not deploy");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");

    // A read-only admin reads, and still deploys nothing.
    assert_eq!(
        call(
            rest,
            "PUT",
            "/v2/roles/readonly-admin/users/alice",
            Some(demo),
            ""
        )
        .0,
        204
    );
    eventually("alice reads as a read-only admin", || {
        search(alice).0 == 200
    });
    assert_eq!(
        call(management, "GET", "/incidents", Some(alice), "").0,
        200
    );
    assert_eq!(
        deploy_as(alice).expect_err("read-only").code(),
        tonic::Code::PermissionDenied
    );

    // A role that may deploy.
    let (status, body) = call(
        rest,
        "POST",
        "/v2/roles",
        Some(demo),
        r#"{"roleId":"deployers","name":"Deployers"}"#,
    );
    assert_eq!(status, 201, "{body}");
    let grant = r#"{"ownerId":"deployers","ownerType":"ROLE","resourceType":"RESOURCE","resourceId":"*","permissionTypes":["CREATE"]}"#;
    let (status, body) = call(rest, "POST", "/v2/authorizations", Some(demo), grant);
    assert_eq!(status, 201, "{body}");
    let key: serde_json::Value = serde_json::from_str(&body).unwrap();
    let key = key["authorizationKey"].as_str().expect("a key").to_string();
    let (status, body) = call(rest, "POST", "/v2/authorizations", Some(demo), grant);
    assert_eq!(status, 409, "the same grant twice: {body}");
    assert_eq!(
        call(
            rest,
            "PUT",
            "/v2/roles/deployers/users/alice",
            Some(demo),
            ""
        )
        .0,
        204
    );
    eventually("alice deploys as a deployer", || deploy_as(alice).is_ok());
    let (status, body) = call(
        rest,
        "GET",
        &format!("/v2/authorizations/{key}"),
        Some(demo),
        "",
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"ownerId\":\"deployers\""), "{body}");
    // Without the role again, she may not.
    assert_eq!(
        call(
            rest,
            "DELETE",
            "/v2/roles/deployers/users/alice",
            Some(demo),
            ""
        )
        .0,
        204
    );
    eventually("alice no longer deploys", || {
        deploy_as(alice).is_err_and(|s| s.code() == tonic::Code::PermissionDenied)
    });
}

/// A user with permissions on one process only creates and sees instances
/// of that process, named by its id, and nothing else.
fn grants_on_one_process(broker: &Broker, demo: &str) {
    let rest = broker.rest_port;
    let rt = runtime();
    let other_task = ONE_TASK.replace("\"one_task\"", "\"other_task\"");
    let create = |auth: &str, request: proto::CreateProcessInstanceRequest| {
        rt.block_on(async {
            let mut client = grpc(broker, Some(auth)).await;
            client.create_process_instance(request).await.map(|_| ())
        })
    };
    let by_id = |id: &str| proto::CreateProcessInstanceRequest {
        bpmn_process_id: id.into(),
        version: -1,
        ..Default::default()
    };
    let keys: Vec<i64> = rt.block_on(async {
        let mut client = grpc(broker, Some(demo)).await;
        let mut keys = Vec::new();
        for (name, xml) in [
            ("one_task.bpmn", ONE_TASK),
            ("other_task.bpmn", other_task.as_str()),
        ] {
            let resources = vec![proto::Resource {
                name: name.into(),
                content: xml.as_bytes().to_vec(),
            }];
            let request = proto::DeployResourceRequest {
                resources,
                tenant_id: String::new(),
            };
            let deployed = client.deploy_resource(request).await.expect("demo deploys");
            let Some(proto::deployment::Metadata::Process(p)) =
                &deployed.into_inner().deployments[0].metadata
            else {
                panic!("a process");
            };
            keys.push(p.process_definition_key);
        }
        keys
    });
    let (one_task_key, other_task_key) = (keys[0], keys[1]);
    create(demo, by_id("other_task")).expect("demo creates any instance");
    let user = r#"{"username":"olga","password":"pw","name":"Olga","email":"olga@example.com"}"#;
    assert_eq!(call(rest, "POST", "/v2/users", Some(demo), user).0, 201);
    let grant = r#"{"ownerId":"olga","ownerType":"USER","resourceType":"PROCESS_DEFINITION","resourceId":"one_task","permissionTypes":["CREATE_PROCESS_INSTANCE","READ_PROCESS_INSTANCE","CANCEL_PROCESS_INSTANCE","UPDATE_PROCESS_INSTANCE"]}"#;
    assert_eq!(
        call(rest, "POST", "/v2/authorizations", Some(demo), grant).0,
        201
    );
    let olga = basic("olga", "pw");

    let instance = |id: &str| format!(r#"{{"processDefinitionId":"{id}"}}"#);
    eventually("olga creates an instance of one_task", || {
        call(
            rest,
            "POST",
            "/v2/process-instances",
            Some(&olga),
            &instance("one_task"),
        )
        .0 == 200
    });
    let (status, body) = call(
        rest,
        "POST",
        "/v2/process-instances",
        Some(&olga),
        &instance("other_task"),
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("not on 'other_task'"), "{body}");
    create(&olga, by_id("one_task")).expect("olga creates one_task over gRPC");
    let denied = create(&olga, by_id("other_task")).expect_err("not other_task");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");
    // By key, the engine checks the process of the key.
    let by_key = |key: i64| proto::CreateProcessInstanceRequest {
        process_definition_key: key,
        ..Default::default()
    };
    create(&olga, by_key(one_task_key)).expect("one_task named by key");
    let denied = create(&olga, by_key(other_task_key)).expect_err("other_task by key");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");

    // Her grant covers the instances and jobs of one_task only.
    let (theirs, hers) = rt.block_on(async {
        let mut client = grpc(broker, Some(demo)).await;
        let theirs = client
            .create_process_instance(by_id("other_task"))
            .await
            .unwrap();
        let mut client = grpc(broker, Some(&olga)).await;
        let hers = client
            .create_process_instance(by_id("one_task"))
            .await
            .unwrap();
        (
            theirs.into_inner().process_instance_key,
            hers.into_inner().process_instance_key,
        )
    });
    let cancel = |key: i64| format!("/v2/process-instances/{key}/cancellation");
    let (status, body) = call(rest, "POST", &cancel(theirs), Some(&olga), "");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("'other_task'"), "{body}");
    assert_eq!(call(rest, "POST", &cancel(hers), Some(&olga), "").0, 204);
    let activation = r#"{"type":"work","timeout":60000,"maxJobsToActivate":50}"#;
    let (status, body) = call(rest, "POST", "/v2/jobs/activation", Some(&olga), activation);
    assert_eq!(status, 200, "{body}");
    let jobs: serde_json::Value = serde_json::from_str(&body).unwrap();
    let jobs = jobs["jobs"].as_array().unwrap();
    assert!(!jobs.is_empty(), "her instances have jobs");
    assert!(
        jobs.iter().all(|j| j["processDefinitionId"] == "one_task"),
        "{jobs:?}"
    );

    // Her searches find instances of one_task only; demo's find both.
    let process_ids = |auth: &str| -> Vec<String> {
        let (status, body) = call(
            rest,
            "POST",
            "/v2/process-instances/search",
            Some(auth),
            "{}",
        );
        assert_eq!(status, 200, "{body}");
        let found: serde_json::Value = serde_json::from_str(&body).unwrap();
        let mut ids: Vec<String> = found["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["processDefinitionId"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    };
    eventually("demo finds instances of both processes", || {
        let ids = process_ids(demo);
        ids.contains(&"one_task".to_string()) && ids.contains(&"other_task".to_string())
    });
    assert_eq!(process_ids(&olga), ["one_task"]);
    let (status, body) = call(rest, "POST", "/v2/variables/search", Some(&olga), "{}");
    assert_eq!(
        status, 403,
        "variables are not narrowed to a process: {body}"
    );
}

/// `waggle identity`: a user, a role and a grant made by the CLI let the
/// new user deploy with the CLI.
fn identities_through_the_cli(broker: &Broker) {
    let dir = broker.dir.path();
    let env = [
        (
            "WAGGLE_REST_ADDRESS",
            format!("http://127.0.0.1:{}", broker.rest_port),
        ),
        (
            "WAGGLE_ADDRESS",
            format!("127.0.0.1:{}", broker.gateway_port),
        ),
    ];
    let identity = |auth: &[&str], args: &[&str]| {
        let all: Vec<&str> = ["identity"]
            .iter()
            .chain(auth)
            .chain(args)
            .copied()
            .collect();
        run_waggle(dir, &all, &env)
    };
    let demo = ["--username", "demo", "--password", "demo"];
    let (ok, _, stderr) = identity(&[], &["users"]);
    assert!(!ok && stderr.contains("401"), "{stderr}");
    // carol may deploy through her group's role.
    for args in [
        &["create-user", "carol", "--user-password", "pw"][..],
        &["create", "group", "ops"],
        &["create", "role", "builders"],
        &["add-member", "group", "ops", "user", "carol"],
        &[
            "authorize",
            "--owner-type",
            "ROLE",
            "--owner-id",
            "builders",
            "--resource-type",
            "RESOURCE",
            "--permission",
            "CREATE",
        ],
    ] {
        let (ok, _, stderr) = identity(&demo, args);
        assert!(ok, "{args:?}: {stderr}");
    }
    let (ok, stdout, stderr) = identity(&demo, &["add-member", "role", "builders", "group", "ops"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("204"), "{stdout}");
    let (ok, stdout, _) = identity(&demo, &["list", "group"]);
    assert!(ok && stdout.contains("\"groupId\": \"ops\""), "{stdout}");
    let (ok, stdout, _) = identity(&demo, &["authorizations"]);
    assert!(
        ok && stdout.contains("\"ownerId\": \"builders\""),
        "{stdout}"
    );
    let model = dir.join("one_task.bpmn");
    std::fs::write(&model, ONE_TASK).unwrap();
    let model = model.to_str().unwrap();
    eventually("carol deploys with the CLI", || {
        run_waggle(
            dir,
            &["deploy", "--username", "carol", "--password", "pw", model],
            &env,
        )
        .0
    });
}

#[test]
fn no_authentication_off_loopback_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("WAGGLE_NETWORK_HOST", "0.0.0.0".to_string()),
        ("WAGGLE_NETWORK_GATEWAY_PORT", free_port().to_string()),
        ("WAGGLE_NETWORK_MANAGEMENT_PORT", free_port().to_string()),
        ("WAGGLE_NETWORK_INTERNAL_PORT", free_port().to_string()),
        ("WAGGLE_REST_PORT", free_port().to_string()),
    ];
    let (ok, _, stderr) = run_waggle(dir.path(), &["dev"], &env);
    assert!(!ok);
    assert!(
        stderr.contains("security.authentication") && stderr.contains("0.0.0.0"),
        "{stderr}"
    );
    let bad_user = [
        ("WAGGLE_SECURITY_AUTHENTICATION", "basic".to_string()),
        ("WAGGLE_SECURITY_INITIAL_USER", "demo".to_string()),
    ];
    let (ok, _, stderr) = run_waggle(dir.path(), &["dev"], &bad_user);
    assert!(!ok);
    assert!(stderr.contains("security.initial_user"), "{stderr}");
}
