//! Fuzzing (proptest) of the gRPC gateway's request decoding and validation
//! against a running broker: a valid request of every unary method (and job
//! activation), with random byte edits, sent as raw protobuf. Each answer is
//! a response or a gRPC status that names the problem (never UNKNOWN, never
//! INTERNAL except for protobuf that does not decode), and afterwards the
//! broker still runs an instance to its end.
//!
//! `PROPTEST_CASES` sets the number of cases: the default (256) in the test
//! suite, many more in `perf/fuzz.sh`.

mod common;
#[path = "../../engine/tests/support/edits.rs"]
mod edits;

use std::time::Duration;

use bytes::{Buf, BufMut};
use common::{connect, create_one_task, deploy_one_task, runtime, Broker};
use edits::apply;
use node::gateway::proto;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::Code;

/// Passes request and response bytes through unchanged.
#[derive(Default, Clone)]
struct Raw;

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let mut out = vec![0; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

/// Keys of a live instance, so that edited requests reach past lookups.
struct Keys {
    instance: i64,
    job: i64,
    definition: i64,
}

/// (method, a valid request) for every method that answers at once.
fn samples(k: &Keys) -> Vec<(&'static str, Vec<u8>)> {
    let vars = r#"{"a": [1, "x", {"b": null}]}"#.to_string();
    let create = proto::CreateProcessInstanceRequest {
        bpmn_process_id: "one_task".into(),
        version: -1,
        variables: vars.clone(),
        start_instructions: vec![proto::ProcessInstanceCreationStartInstruction {
            element_id: "task".into(),
        }],
        ..Default::default()
    };
    use proto::migrate_process_instance_request as migrate;
    use proto::modify_process_instance_request as modify;
    vec![
        (
            "ActivateJobs",
            proto::ActivateJobsRequest {
                r#type: "work".into(),
                worker: "fuzz".into(),
                timeout: 60_000,
                max_jobs_to_activate: 2,
                fetch_variable: vec!["a".into()],
                request_timeout: -1,
                tenant_ids: vec![],
            }
            .encode_to_vec(),
        ),
        (
            "CancelProcessInstance",
            proto::CancelProcessInstanceRequest {
                process_instance_key: k.instance,
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "CompleteJob",
            proto::CompleteJobRequest {
                job_key: k.job,
                variables: vars.clone(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        ("CreateProcessInstance", create.encode_to_vec()),
        (
            "CreateProcessInstanceWithResult",
            proto::CreateProcessInstanceWithResultRequest {
                request: Some(create.clone()),
                request_timeout: 50,
                fetch_variables: vec!["a".into()],
            }
            .encode_to_vec(),
        ),
        (
            "EvaluateDecision",
            proto::EvaluateDecisionRequest {
                decision_id: "decide".into(),
                variables: vars.clone(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "DeployResource",
            proto::DeployResourceRequest {
                resources: vec![proto::Resource {
                    name: "one_task.bpmn".into(),
                    content: common::ONE_TASK.as_bytes().to_vec(),
                }],
                tenant_id: String::new(),
            }
            .encode_to_vec(),
        ),
        (
            "FailJob",
            proto::FailJobRequest {
                job_key: k.job,
                retries: 1,
                error_message: "failed".into(),
                retry_back_off: 10,
                variables: vars.clone(),
            }
            .encode_to_vec(),
        ),
        (
            "ThrowError",
            proto::ThrowErrorRequest {
                job_key: k.job,
                error_code: "E1".into(),
                error_message: "thrown".into(),
                variables: vars.clone(),
            }
            .encode_to_vec(),
        ),
        (
            "PublishMessage",
            proto::PublishMessageRequest {
                name: "m".into(),
                correlation_key: "c-1".into(),
                time_to_live: 1_000,
                message_id: "id-1".into(),
                variables: vars.clone(),
                tenant_id: String::new(),
            }
            .encode_to_vec(),
        ),
        (
            "ResolveIncident",
            proto::ResolveIncidentRequest {
                incident_key: k.instance + 1,
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "SetVariables",
            proto::SetVariablesRequest {
                element_instance_key: k.instance,
                variables: vars.clone(),
                local: true,
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        ("Topology", proto::TopologyRequest {}.encode_to_vec()),
        (
            "UpdateJobRetries",
            proto::UpdateJobRetriesRequest {
                job_key: k.job,
                retries: 3,
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "ModifyProcessInstance",
            proto::ModifyProcessInstanceRequest {
                process_instance_key: k.instance,
                activate_instructions: vec![modify::ActivateInstruction {
                    element_id: "task".into(),
                    ancestor_element_instance_key: -1,
                    variable_instructions: vec![modify::VariableInstruction {
                        variables: vars.clone(),
                        scope_id: String::new(),
                    }],
                }],
                terminate_instructions: vec![modify::TerminateInstruction {
                    element_instance_key: k.job - 1,
                }],
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "MigrateProcessInstance",
            proto::MigrateProcessInstanceRequest {
                process_instance_key: k.instance,
                migration_plan: Some(migrate::MigrationPlan {
                    target_process_definition_key: k.definition,
                    mapping_instructions: vec![migrate::MappingInstruction {
                        source_element_id: "task".into(),
                        target_element_id: "task".into(),
                    }],
                }),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "UpdateJobTimeout",
            proto::UpdateJobTimeoutRequest {
                job_key: k.job,
                timeout: 5_000,
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "DeleteResource",
            proto::DeleteResourceRequest {
                resource_key: k.definition + 7,
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "BroadcastSignal",
            proto::BroadcastSignalRequest {
                signal_name: "s".into(),
                variables: vars,
                tenant_id: String::new(),
            }
            .encode_to_vec(),
        ),
    ]
}

/// Sends `body` to `method`; `Ok` or the status, `None` when a long poll
/// or an awaited result outlives the bound (allowed for those methods).
async fn call(
    channel: &tonic::transport::Channel,
    method: &str,
    body: Vec<u8>,
) -> Option<Result<(), tonic::Status>> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.expect("the gateway takes calls");
    let path: http::uri::PathAndQuery = format!("/gateway_protocol.Gateway/{method}")
        .parse()
        .expect("a path");
    let request = tonic::Request::new(body);
    let answer = async {
        if method == "ActivateJobs" {
            let mut stream = grpc
                .server_streaming(request, path, Raw)
                .await?
                .into_inner();
            while stream.message().await?.is_some() {}
            Ok(())
        } else {
            grpc.unary(request, path, Raw).await.map(|_| ())
        }
    };
    // A long poll or an awaited result may outlive its bound; any other
    // call that has not answered by the gateway's request timeout hangs.
    let waits = matches!(method, "ActivateJobs" | "CreateProcessInstanceWithResult");
    let bound = Duration::from_secs(if waits { 3 } else { 60 });
    match tokio::time::timeout(bound, answer).await {
        Ok(result) => Some(result),
        Err(_) if waits => None,
        Err(_) => panic!("{method} hangs: no answer, not even a timeout status"),
    }
}

#[test]
fn edited_requests_get_an_answer_naming_the_problem_and_break_nothing() {
    let broker = Broker::start_dev(&[]);
    let rt = runtime();
    let (channel, keys) = rt.block_on(async {
        let mut client = connect(&broker).await;
        deploy_one_task(&mut client).await;
        let created = create_one_task(&mut client).await;
        let channel = tonic::transport::Channel::from_shared(broker.gateway_uri())
            .expect("uri")
            .connect()
            .await
            .expect("connect");
        let keys = Keys {
            instance: created.process_instance_key,
            job: created.process_instance_key + 3,
            definition: created.process_definition_key,
        };
        (channel, keys)
    });
    let samples = samples(&keys);
    let strategy = (
        0..samples.len(),
        prop::collection::vec((any::<usize>(), 0u8..4, any::<u8>()), 0..3),
    );
    let mut runner = TestRunner::new(Config {
        failure_persistence: None,
        ..Config::default()
    });
    let answered = std::cell::RefCell::new(std::collections::BTreeMap::<String, usize>::new());
    let result = runner.run(&strategy, |(which, edits)| {
        let (method, valid) = &samples[which];
        let mut body = valid.clone();
        apply(&mut body, &edits);
        let answer = rt.block_on(call(&channel, method, body.clone()));
        if let Some(Ok(())) = answer {
            *answered.borrow_mut().entry("Ok".into()).or_default() += 1;
        }
        if let Some(Err(status)) = answer {
            let decode_failure =
                status.code() == Code::Internal && status.message().contains("decode");
            prop_assert!(
                status.code() != Code::Unknown
                    && (status.code() != Code::Internal || decode_failure),
                "{method} with {body:?}: {status:?}"
            );
            prop_assert!(!status.message().is_empty(), "{method}: {status:?}");
            *answered
                .borrow_mut()
                .entry(format!("{:?}", status.code()))
                .or_default() += 1;
        }
        Ok(())
    });
    let answered = answered.into_inner();
    eprintln!("answers: {answered:?}");
    result.expect("every edited request is answered cleanly");
    let total: usize = answered.values().sum();
    let decoded = total - answered.get("Internal").copied().unwrap_or(0);
    // About half decode; a quarter is many standard deviations below that
    // from 100 cases on (fewer say nothing).
    assert!(
        total < 100 || decoded * 4 >= total,
        "edited requests should often still decode and reach validation: {answered:?}"
    );
    drop(channel);

    // The broker serves on: a new instance runs to its end.
    rt.block_on(async {
        let mut client = connect(&broker).await;
        let created = create_one_task(&mut client).await;
        assert!(created.process_instance_key > keys.instance);
    });
    drop(rt); // closes the connections
    broker.terminate();
}
