//! DMN over the gRPC gateway of a `waggle dev` broker with three partitions:
//! a deployment of a DMN resource answers with its decision and decision
//! requirements entries, EvaluateDecision is answered by every partition
//! (deployments are distributed), a restart keeps the decisions (the
//! state is rebuilt from the log, DRGs parsed again), and the CLI prints
//! a deployment's decision entries.

mod common;
use common::*;
use node::gateway::proto;
use std::collections::BTreeSet;

const DMN: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="greetings" name="Greetings" namespace="http://waggle/test">
  <decision id="greeting" name="Greeting">
    <literalExpression id="e"><text>"Hello " + name</text></literalExpression>
  </decision>
</definitions>"#;

/// Bound on the attempts while the deployment reaches every partition.
const MAX_ATTEMPTS: usize = 200;

async fn evaluate_on_every_partition(
    client: &mut proto::gateway_client::GatewayClient<tonic::transport::Channel>,
) -> BTreeSet<i64> {
    let mut partitions = BTreeSet::new();
    for _ in 0..MAX_ATTEMPTS {
        match client
            .evaluate_decision(proto::EvaluateDecisionRequest {
                decision_id: "greeting".into(),
                variables: r#"{"name": "Ada"}"#.into(),
                ..Default::default()
            })
            .await
        {
            Ok(r) => {
                let r = r.into_inner();
                assert_eq!(r.decision_output, r#""Hello Ada""#);
                assert_eq!(r.decision_requirements_id, "greetings");
                assert_eq!(r.evaluated_decisions.len(), 1);
                assert_eq!(r.evaluated_decisions[0].decision_type, "LITERAL_EXPRESSION");
                partitions.insert(r.decision_instance_key >> 51);
                if partitions.len() == 3 {
                    break;
                }
            }
            // A partition the deployment has not reached yet.
            Err(s) if s.code() == tonic::Code::NotFound => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await
            }
            Err(s) => panic!("evaluation failed: {s:?}"),
        }
    }
    partitions
}

#[test]
fn every_partition_evaluates_a_deployed_decision_also_after_a_restart() {
    let env = [("WAGGLE_CLUSTER_PARTITIONS", "3".to_string())];
    let broker = Broker::start_dev(&env);
    let rt = runtime();
    rt.block_on(async {
        let mut client = connect(&broker).await;
        let deployed = client
            .deploy_resource(proto::DeployResourceRequest {
                resources: vec![proto::Resource {
                    name: "greetings.dmn".into(),
                    content: DMN.as_bytes().to_vec(),
                }],
                tenant_id: String::new(),
            })
            .await
            .expect("deploy")
            .into_inner();
        let kinds: Vec<&str> = deployed
            .deployments
            .iter()
            .map(|d| match &d.metadata {
                Some(proto::deployment::Metadata::Decision(d)) => {
                    assert_eq!(d.dmn_decision_id, "greeting");
                    assert_eq!(d.version, 1);
                    "decision"
                }
                Some(proto::deployment::Metadata::DecisionRequirements(r)) => {
                    assert_eq!(r.dmn_decision_requirements_id, "greetings");
                    assert_eq!(r.resource_name, "greetings.dmn");
                    "drg"
                }
                other => panic!("unexpected entry {other:?}"),
            })
            .collect();
        assert_eq!(kinds, ["decision", "drg"]);
        let partitions = evaluate_on_every_partition(&mut client).await;
        assert_eq!(partitions, BTreeSet::from([1, 2, 3]));
    });
    let (status, dir) = broker.terminate_keeping_dir();
    assert!(status.success());
    let broker = Broker::start_dev_in(dir, &env);
    rt.block_on(async {
        let mut client = connect(&broker).await;
        let partitions = evaluate_on_every_partition(&mut client).await;
        assert_eq!(partitions, BTreeSet::from([1, 2, 3]), "after a restart");
    });
    // The CLI lists the decision entries of a deployment.
    let dir = broker.dir.path().to_path_buf();
    let changed = DMN.replace("Hello ", "Hi ");
    std::fs::write(dir.join("greetings.dmn"), changed).expect("write dmn");
    let (ok, out, err) = run_waggle(
        &dir,
        &["deploy", "greetings.dmn"],
        &[("WAGGLE_ADDRESS", broker.gateway_uri())],
    );
    assert!(ok, "waggle deploy failed: {err}");
    let printed: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(
        printed["deployments"][0]["decision"]["decisionId"],
        "greeting"
    );
    assert_eq!(
        printed["deployments"][0]["decision"]["version"], 2,
        "{printed}"
    );
    assert_eq!(
        printed["deployments"][1]["decisionRequirements"]["resourceName"],
        "greetings.dmn"
    );
    assert!(broker.terminate().success());
}
