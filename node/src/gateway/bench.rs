//! `waggle_bench.RawAppend`: opaque records through a partition's Raft group
//! and storage, answered once committed, without the engine. It measures the
//! replicated log alone (the comparison with etcd in `waggle-perf`), and is
//! served only when `gateway.raw_append_enabled` is set.

use tonic::{Request, Response, Status};

use super::bench_proto::raw_append_server::RawAppend;
use super::bench_proto::{AppendRequest, AppendResponse};
use super::dispatch::Dispatcher;
use crate::command::{CommandReply, PartitionCommand};

/// The raw append service; one per broker.
#[derive(Debug)]
pub struct RawAppendService {
    dispatcher: Dispatcher,
}

impl RawAppendService {
    /// A service sending appends through `dispatcher`.
    pub fn new(dispatcher: Dispatcher) -> Self {
        Self { dispatcher }
    }
}

#[tonic::async_trait]
impl RawAppend for RawAppendService {
    async fn append(
        &self,
        request: Request<AppendRequest>,
    ) -> Result<Response<AppendResponse>, Status> {
        let context = self.dispatcher.context();
        if !context.config.gateway.raw_append_enabled {
            return Err(Status::failed_precondition(
                "RawAppend is disabled on this broker; it is for benchmarks only \
                 (gateway.raw_append_enabled = true)",
            ));
        }
        let AppendRequest {
            partition_id,
            payload,
        } = request.into_inner();
        let partitions = context.partitions();
        let partition = u32::try_from(partition_id)
            .ok()
            .filter(|p| (1..=partitions).contains(p))
            .ok_or_else(|| {
                Status::invalid_argument(format!(
                    "partition_id {partition_id} is not a partition of this cluster (1..={partitions})"
                ))
            })?;
        let command = PartitionCommand::RawAppend { payload };
        match self
            .dispatcher
            .execute(partition, command, self.dispatcher.request_timeout())
            .await?
        {
            CommandReply::Key(index) => Ok(Response::new(AppendResponse {
                index: index as u64,
            })),
            other => Err(Status::internal(format!(
                "RawAppend: the partition answered with an unexpected reply {other:?}"
            ))),
        }
    }
}
