//! The raw replicated append (`waggle_bench.RawAppend`): refused unless
//! enabled; when enabled, records commit in order, the engine ignores them and
//! they survive a restart.

mod common;

use common::{connect, create_one_task, deploy_one_task, runtime, Broker};
use node::gateway::bench_proto::raw_append_client::RawAppendClient;
use node::gateway::bench_proto::AppendRequest;

async fn append(broker: &Broker, partition_id: i32, n: usize) -> Result<Vec<u64>, tonic::Status> {
    let mut client = RawAppendClient::connect(broker.gateway_uri())
        .await
        .expect("connect");
    let mut indexes = Vec::new();
    for i in 0..n {
        let response = client
            .append(AppendRequest {
                partition_id,
                payload: vec![i as u8; 1024],
            })
            .await?;
        indexes.push(response.into_inner().index);
    }
    Ok(indexes)
}

async fn create_one(broker: &Broker) -> i64 {
    create_one_task(&mut connect(broker).await)
        .await
        .process_instance_key
}

#[test]
fn raw_append_is_refused_unless_enabled() {
    let broker = Broker::start_dev(&[]);
    let error = runtime()
        .block_on(append(&broker, 1, 1))
        .expect_err("disabled by default");
    assert_eq!(error.code(), tonic::Code::FailedPrecondition, "{error:?}");
    assert!(
        error.message().contains("gateway.raw_append_enabled"),
        "{error:?}"
    );
    assert!(broker.terminate().success());
}

#[test]
fn raw_appends_commit_in_order_beside_engine_commands_and_survive_a_restart() {
    let enabled = [("WAGGLE_GATEWAY_RAW_APPEND_ENABLED", "true".to_string())];
    let broker = Broker::start_dev(&enabled);
    let rt = runtime();
    let before = rt.block_on(async {
        deploy_one_task(&mut connect(&broker).await).await;
        let first = append(&broker, 1, 50).await.expect("appends");
        assert!(
            first.windows(2).all(|w| w[0] < w[1]),
            "indexes increase: {first:?}"
        );
        // The engine skips raw records: instances still start between them.
        create_one(&broker).await;
        let second = append(&broker, 1, 10).await.expect("appends");
        assert!(second[0] > first[49] + 1, "the instance took an index");
        let bad = append(&broker, 7, 1).await.expect_err("no partition 7");
        assert_eq!(bad.code(), tonic::Code::InvalidArgument, "{bad:?}");
        second[9]
    });
    let dir = broker.kill_keeping_dir();
    let broker = Broker::start_dev_in(dir, &enabled);
    rt.block_on(async {
        // Replay passes over the raw records; the log continues after them.
        let after = append(&broker, 1, 1).await.expect("append after restart");
        assert!(after[0] > before, "{} after {before}", after[0]);
        create_one(&broker).await;
    });
    assert!(broker.terminate().success());
}
