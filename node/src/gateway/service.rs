//! The RPCs of `gateway_protocol.Gateway`. Each validates its request, builds a
//! [`PartitionCommand`], routes it (by key, by correlation key, round-robin or
//! to the deployment partition) and turns the answer into the response message
//! or a gRPC status mapped as in Zeebe.

use crate::identity::caller::{Caller, CALLER};
use crate::identity::scope::Scope;
use crate::identity::tenants;
use std::pin::Pin;
use std::time::Duration;

use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::activation::{self, Activation, MAX_JOBS_PER_ACTIVATION};
use super::dispatch::Dispatcher;
use super::proto;
use super::proto::gateway_server::Gateway;
use super::validate;
use crate::command::{AwaitResult, CommandError, CommandReply, PartitionCommand};
use crate::context::BrokerContext;
use crate::routing::{partition_of_correlation_key, RoundRobin, DEPLOYMENT_PARTITION};
use crate::view::Role;

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The gateway service; one per broker, shared by tonic across connections.
#[derive(Debug)]
pub struct GatewayService {
    dispatcher: Dispatcher,
    round_robin: RoundRobin,
}

impl GatewayService {
    /// A service sending commands through `dispatcher`.
    pub fn new(dispatcher: Dispatcher) -> Self {
        Self {
            dispatcher,
            round_robin: RoundRobin::default(),
        }
    }

    fn partitions(&self) -> u32 {
        self.dispatcher.context().partitions()
    }

    /// Runs `command` on the next partition in round-robin order (the
    /// following ones when it is refused for load).
    async fn anywhere(&self, command: PartitionCommand) -> Result<CommandReply, Status> {
        let order = self.round_robin.order(self.partitions());
        let (_, reply) = self
            .dispatcher
            .execute_anywhere(&order, command, self.dispatcher.request_timeout())
            .await?;
        Ok(reply)
    }

    async fn on_key(
        &self,
        field: &str,
        key: i64,
        command: PartitionCommand,
    ) -> Result<CommandReply, Status> {
        let partition = validate::key_partition(field, key, self.partitions())?;
        Ok(self
            .dispatcher
            .execute(partition, command, self.dispatcher.request_timeout())
            .await?)
    }
}

/// The cluster as this node sees it: itself, and the other nodes as they
/// last reported themselves (gossip); nodes not heard from lately are left
/// out, as Zeebe does.
pub fn topology(context: &BrokerContext) -> proto::TopologyResponse {
    let config = &context.config;
    let version = env!("CARGO_PKG_VERSION").to_string();
    let me = config.cluster.node_id;
    let mut brokers = vec![broker_info(
        me,
        config.network.advertised().to_string(),
        i32::from(config.network.gateway_port),
        version.clone(),
        &crate::gossip::local_state(context).partitions,
    )];
    for state in context.topology.live() {
        let host = config
            .cluster
            .contact_points
            .get(state.node as usize)
            .and_then(|p| p.rsplit_once(':'))
            .map(|(host, _)| host.to_string())
            .unwrap_or_default();
        brokers.push(broker_info(
            state.node,
            host,
            i32::from(config.network.gateway_port),
            state.version,
            &state.partitions,
        ));
    }
    // The shape of the cluster configuration: it changes with the cluster.
    let shape = context.membership.get().shape();
    proto::TopologyResponse {
        brokers,
        cluster_size: shape.cluster_size as i32,
        partitions_count: context.partitions() as i32,
        replication_factor: shape.replication_factor as i32,
        gateway_version: version,
    }
}

/// A broker of the topology from its `(partition, role, healthy)` list.
fn broker_info(
    node: u32,
    host: String,
    port: i32,
    version: String,
    partitions: &[(u32, u8, bool)],
) -> proto::BrokerInfo {
    let partitions = partitions
        .iter()
        .map(|&(partition, role, healthy)| proto::Partition {
            partition_id: partition as i32,
            role: match Role::from_u8(role) {
                Role::Leader => proto::partition::PartitionBrokerRole::Leader,
                Role::Follower | Role::Candidate => proto::partition::PartitionBrokerRole::Follower,
                Role::Starting | Role::Inactive => proto::partition::PartitionBrokerRole::Inactive,
            } as i32,
            health: if healthy {
                proto::partition::PartitionBrokerHealth::Healthy
            } else {
                proto::partition::PartitionBrokerHealth::Unhealthy
            } as i32,
        })
        .collect();
    proto::BrokerInfo {
        node_id: node as i32,
        host,
        port,
        partitions,
        version,
    }
}

fn unexpected(rpc: &str, reply: CommandReply) -> Status {
    Status::internal(format!(
        "{rpc}: the partition answered with an unexpected reply {reply:?}"
    ))
}

#[tonic::async_trait]
impl Gateway for GatewayService {
    type ActivateJobsStream = ResponseStream<proto::ActivateJobsResponse>;
    type StreamActivatedJobsStream = ResponseStream<proto::ActivatedJob>;

    async fn topology(
        &self,
        _request: Request<proto::TopologyRequest>,
    ) -> Result<Response<proto::TopologyResponse>, Status> {
        Ok(Response::new(topology(self.dispatcher.context())))
    }

    async fn deploy_resource(
        &self,
        request: Request<proto::DeployResourceRequest>,
    ) -> Result<Response<proto::DeployResourceResponse>, Status> {
        let request = request.into_inner();
        if request.resources.is_empty() {
            return Err(Status::invalid_argument(
                "Expected to deploy at least one resource, but none given",
            ));
        }
        for resource in &request.resources {
            validate::not_blank("resources.name", &resource.name)?;
        }
        let command = PartitionCommand::Deploy {
            resources: request
                .resources
                .into_iter()
                .map(|r| (r.name, r.content))
                .collect(),
        };
        let command = tenants::named(&request.tenant_id, command)?;
        let reply = self
            .dispatcher
            .execute(
                DEPLOYMENT_PARTITION,
                command,
                self.dispatcher.request_timeout(),
            )
            .await?;
        match reply {
            CommandReply::Deployed(response) => Ok(Response::new(response)),
            other => Err(unexpected("DeployResource", other)),
        }
    }

    async fn deploy_process(
        &self,
        request: Request<proto::DeployProcessRequest>,
    ) -> Result<Response<proto::DeployProcessResponse>, Status> {
        let request = request.into_inner();
        let resources = request
            .processes
            .into_iter()
            .map(|p| proto::Resource {
                name: p.name,
                content: p.definition,
            })
            .collect();
        let deployed = self
            .deploy_resource(Request::new(proto::DeployResourceRequest {
                resources,
                tenant_id: String::new(),
            }))
            .await?
            .into_inner();
        let processes = deployed
            .deployments
            .into_iter()
            .filter_map(|d| match d.metadata {
                Some(proto::deployment::Metadata::Process(p)) => Some(p),
                _ => None,
            })
            .collect();
        Ok(Response::new(proto::DeployProcessResponse {
            key: deployed.key,
            processes,
        }))
    }

    async fn create_process_instance(
        &self,
        request: Request<proto::CreateProcessInstanceRequest>,
    ) -> Result<Response<proto::CreateProcessInstanceResponse>, Status> {
        let scope = request.extensions().get::<Scope>().cloned();
        let request = request.into_inner();
        check_process_scope(scope.as_ref(), &request)?;
        let command = create_command(request, None)?;
        match self.anywhere(command).await? {
            CommandReply::Created(response) => Ok(Response::new(response)),
            other => Err(unexpected("CreateProcessInstance", other)),
        }
    }

    async fn create_process_instance_with_result(
        &self,
        request: Request<proto::CreateProcessInstanceWithResultRequest>,
    ) -> Result<Response<proto::CreateProcessInstanceWithResultResponse>, Status> {
        let scope = request.extensions().get::<Scope>().cloned();
        let request = request.into_inner();
        let Some(inner) = request.request else {
            return Err(Status::invalid_argument(
                "Expected 'request' to hold the instance to create, but it was missing",
            ));
        };
        check_process_scope(scope.as_ref(), &inner)?;
        let timeout_ms = if request.request_timeout > 0 {
            request.request_timeout as u64
        } else {
            self.dispatcher.request_timeout().as_millis() as u64
        };
        let command = create_command(
            inner,
            Some(AwaitResult {
                fetch_variables: request.fetch_variables,
                timeout_ms,
            }),
        )?;
        let order = self.round_robin.order(self.partitions());
        let (_, reply) = self
            .dispatcher
            .execute_anywhere(&order, command, Duration::from_millis(timeout_ms))
            .await?;
        match reply {
            CommandReply::Completed(response) => Ok(Response::new(response)),
            other => Err(unexpected("CreateProcessInstanceWithResult", other)),
        }
    }

    async fn cancel_process_instance(
        &self,
        request: Request<proto::CancelProcessInstanceRequest>,
    ) -> Result<Response<proto::CancelProcessInstanceResponse>, Status> {
        let key = request.into_inner().process_instance_key;
        let command = PartitionCommand::CancelInstance {
            process_instance_key: key,
        };
        self.on_key("processInstanceKey", key, command).await?;
        Ok(Response::new(proto::CancelProcessInstanceResponse {}))
    }

    async fn activate_jobs(
        &self,
        request: Request<proto::ActivateJobsRequest>,
    ) -> Result<Response<Self::ActivateJobsStream>, Status> {
        let request = request.into_inner();
        validate::not_blank("type", &request.r#type)?;
        validate::at_least("timeout", request.timeout, 1)?;
        validate::at_least(
            "maxJobsToActivate",
            i64::from(request.max_jobs_to_activate),
            1,
        )?;
        let activation = Activation {
            job_type: request.r#type,
            worker: request.worker,
            timeout_ms: request.timeout,
            max_jobs: request.max_jobs_to_activate.min(MAX_JOBS_PER_ACTIVATION) as u32,
            fetch_variables: request.fetch_variable,
            long_poll: Activation::long_poll_of(
                request.request_timeout,
                self.dispatcher
                    .context()
                    .config
                    .gateway
                    .long_polling_timeout_ms,
            ),
            tenant_ids: request.tenant_ids,
        };
        let batches = activation::activate(&self.dispatcher, &self.round_robin, &activation)
            .await?
            .into_iter()
            .map(|jobs| proto::ActivateJobsResponse { jobs });
        let stream = tokio_stream::iter(batches.map(Ok));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn stream_activated_jobs(
        &self,
        request: Request<proto::StreamActivatedJobsRequest>,
    ) -> Result<Response<Self::StreamActivatedJobsStream>, Status> {
        let request = request.into_inner();
        validate::not_blank("type", &request.r#type)?;
        validate::at_least("timeout", request.timeout, 1)?;
        tenants::check_asked(&request.tenant_ids, "StreamActivatedJobs")?;
        let (tx, rx) = tokio::sync::mpsc::channel(super::push::MAX_PUSHED_JOBS_BUFFERED);
        let dispatcher = self.dispatcher.clone();
        let partitions = self.partitions();
        let pushing = super::push::serve(dispatcher, partitions, request, tx);
        match Caller::current() {
            Some(caller) => tokio::spawn(CALLER.scope(caller, pushing)),
            None => tokio::spawn(pushing),
        };
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn complete_job(
        &self,
        request: Request<proto::CompleteJobRequest>,
    ) -> Result<Response<proto::CompleteJobResponse>, Status> {
        let request = request.into_inner();
        let variables = validate::variables("variables", &request.variables)?;
        let command = match request.result {
            None => PartitionCommand::CompleteJob {
                job_key: request.job_key,
                variables,
            },
            Some(result) => PartitionCommand::CompleteJobWithResult {
                job_key: request.job_key,
                variables,
                result: Box::new(crate::gateway::job_result::from_proto(result)?),
            },
        };
        self.on_key("jobKey", request.job_key, command).await?;
        Ok(Response::new(proto::CompleteJobResponse {}))
    }

    async fn fail_job(
        &self,
        request: Request<proto::FailJobRequest>,
    ) -> Result<Response<proto::FailJobResponse>, Status> {
        let request = request.into_inner();
        let command = PartitionCommand::FailJob {
            job_key: request.job_key,
            retries: request.retries,
            error_message: request.error_message,
            retry_backoff_ms: request.retry_back_off.max(0),
            variables: validate::variables("variables", &request.variables)?,
        };
        self.on_key("jobKey", request.job_key, command).await?;
        Ok(Response::new(proto::FailJobResponse {}))
    }

    async fn throw_error(
        &self,
        request: Request<proto::ThrowErrorRequest>,
    ) -> Result<Response<proto::ThrowErrorResponse>, Status> {
        let request = request.into_inner();
        validate::not_blank("errorCode", &request.error_code)?;
        let command = PartitionCommand::ThrowError {
            job_key: request.job_key,
            error_code: request.error_code,
            error_message: request.error_message,
            variables: validate::variables("variables", &request.variables)?,
        };
        self.on_key("jobKey", request.job_key, command).await?;
        Ok(Response::new(proto::ThrowErrorResponse {}))
    }

    async fn update_job_retries(
        &self,
        request: Request<proto::UpdateJobRetriesRequest>,
    ) -> Result<Response<proto::UpdateJobRetriesResponse>, Status> {
        let request = request.into_inner();
        validate::at_least("retries", i64::from(request.retries), 1)?;
        let command = PartitionCommand::UpdateJobRetries {
            job_key: request.job_key,
            retries: request.retries,
        };
        self.on_key("jobKey", request.job_key, command).await?;
        Ok(Response::new(proto::UpdateJobRetriesResponse {}))
    }

    async fn update_job_timeout(
        &self,
        request: Request<proto::UpdateJobTimeoutRequest>,
    ) -> Result<Response<proto::UpdateJobTimeoutResponse>, Status> {
        let request = request.into_inner();
        validate::at_least("timeout", request.timeout, 1)?;
        let command = PartitionCommand::UpdateJobTimeout {
            job_key: request.job_key,
            timeout_ms: request.timeout,
        };
        self.on_key("jobKey", request.job_key, command).await?;
        Ok(Response::new(proto::UpdateJobTimeoutResponse {}))
    }

    async fn publish_message(
        &self,
        request: Request<proto::PublishMessageRequest>,
    ) -> Result<Response<proto::PublishMessageResponse>, Status> {
        let request = request.into_inner();
        validate::not_blank("name", &request.name)?;
        validate::at_least("timeToLive", request.time_to_live, 0)?;
        let messages = self.dispatcher.context().message_partitions();
        let partition = partition_of_correlation_key(&request.correlation_key, messages);
        let command = PartitionCommand::PublishMessage {
            name: request.name,
            correlation_key: request.correlation_key,
            time_to_live_ms: request.time_to_live,
            message_id: request.message_id,
            variables: validate::variables("variables", &request.variables)?,
        };
        let command = tenants::named(&request.tenant_id, command)?;
        let reply = self
            .dispatcher
            .execute(partition, command, self.dispatcher.request_timeout())
            .await?;
        match reply {
            CommandReply::Key(key) => Ok(Response::new(proto::PublishMessageResponse {
                key,
                tenant_id: tenants::or_default(request.tenant_id),
            })),
            other => Err(unexpected("PublishMessage", other)),
        }
    }

    async fn resolve_incident(
        &self,
        request: Request<proto::ResolveIncidentRequest>,
    ) -> Result<Response<proto::ResolveIncidentResponse>, Status> {
        let key = request.into_inner().incident_key;
        self.on_key(
            "incidentKey",
            key,
            PartitionCommand::ResolveIncident { incident_key: key },
        )
        .await?;
        Ok(Response::new(proto::ResolveIncidentResponse {}))
    }

    async fn set_variables(
        &self,
        request: Request<proto::SetVariablesRequest>,
    ) -> Result<Response<proto::SetVariablesResponse>, Status> {
        let request = request.into_inner();
        if request.variables.trim().is_empty() {
            return Err(Status::invalid_argument(
                "Property 'variables' is invalid: expected a JSON object, but it was empty",
            ));
        }
        let command = PartitionCommand::SetVariables {
            element_instance_key: request.element_instance_key,
            variables: validate::variables("variables", &request.variables)?,
            local: request.local,
        };
        match self
            .on_key("elementInstanceKey", request.element_instance_key, command)
            .await?
        {
            CommandReply::Key(key) => Ok(Response::new(proto::SetVariablesResponse { key })),
            other => Err(unexpected("SetVariables", other)),
        }
    }

    async fn broadcast_signal(
        &self,
        request: Request<proto::BroadcastSignalRequest>,
    ) -> Result<Response<proto::BroadcastSignalResponse>, Status> {
        let request = request.into_inner();
        validate::not_blank("signalName", &request.signal_name)?;
        let command = PartitionCommand::BroadcastSignal {
            signal_name: request.signal_name,
            variables: validate::variables("variables", &request.variables)?,
        };
        let command = tenants::named(&request.tenant_id, command)?;
        // Partition 1 takes the signal and distributes it to the others.
        let reply = self
            .dispatcher
            .execute(
                DEPLOYMENT_PARTITION,
                command,
                self.dispatcher.request_timeout(),
            )
            .await?;
        match reply {
            CommandReply::Key(key) => Ok(Response::new(proto::BroadcastSignalResponse {
                key,
                tenant_id: tenants::or_default(request.tenant_id),
            })),
            other => Err(unexpected("BroadcastSignal", other)),
        }
    }

    async fn delete_resource(
        &self,
        request: Request<proto::DeleteResourceRequest>,
    ) -> Result<Response<proto::DeleteResourceResponse>, Status> {
        let key = request.into_inner().resource_key;
        // Resources are deployed through partition 1, which distributes deletions.
        validate::key_partition("resourceKey", key, self.partitions())?;
        self.dispatcher
            .execute(
                DEPLOYMENT_PARTITION,
                PartitionCommand::DeleteResource { resource_key: key },
                self.dispatcher.request_timeout(),
            )
            .await?;
        Ok(Response::new(proto::DeleteResourceResponse {}))
    }

    async fn evaluate_decision(
        &self,
        request: Request<proto::EvaluateDecisionRequest>,
    ) -> Result<Response<proto::EvaluateDecisionResponse>, Status> {
        let scope = request.extensions().get::<Scope>().cloned();
        let request = request.into_inner();
        let by_id = if request.decision_key > 0 {
            ""
        } else {
            &request.decision_id
        };
        Scope::check(scope.as_ref(), by_id, "decision").map_err(Status::permission_denied)?;
        let command = validate::evaluate_decision(
            request.decision_key,
            request.decision_id,
            &request.variables,
            self.partitions(),
        )?;
        let command = tenants::named(&request.tenant_id, command)?;
        // Every partition holds every decision (deployments are distributed).
        match self.anywhere(command).await? {
            CommandReply::Evaluated(response) => Ok(Response::new(response)),
            other => Err(unexpected("EvaluateDecision", other)),
        }
    }

    async fn modify_process_instance(
        &self,
        request: Request<proto::ModifyProcessInstanceRequest>,
    ) -> Result<Response<proto::ModifyProcessInstanceResponse>, Status> {
        let request = request.into_inner();
        let key = request.process_instance_key;
        let command = super::repair::modify_command(request)?;
        self.on_key("processInstanceKey", key, command).await?;
        Ok(Response::new(proto::ModifyProcessInstanceResponse {}))
    }

    async fn migrate_process_instance(
        &self,
        request: Request<proto::MigrateProcessInstanceRequest>,
    ) -> Result<Response<proto::MigrateProcessInstanceResponse>, Status> {
        let request = request.into_inner();
        let key = request.process_instance_key;
        let command = super::repair::migrate_command(request)?;
        self.on_key("processInstanceKey", key, command).await?;
        Ok(Response::new(proto::MigrateProcessInstanceResponse {}))
    }
}

/// Checks the process of a creation against the caller's grants on single
/// processes, if that is all it holds.
fn check_process_scope(
    scope: Option<&Scope>,
    request: &proto::CreateProcessInstanceRequest,
) -> Result<(), Status> {
    if request.process_definition_key > 0 {
        // By key: the engine checks the process of the key (see `caller`).
        return Ok(());
    }
    Scope::check(scope, &request.bpmn_process_id, "process").map_err(Status::permission_denied)
}

fn create_command(
    request: proto::CreateProcessInstanceRequest,
    await_result: Option<AwaitResult>,
) -> Result<PartitionCommand, CommandError> {
    if request.process_definition_key <= 0 {
        validate::not_blank("bpmnProcessId", &request.bpmn_process_id)?;
    }
    let start_instructions = super::repair::start_instructions(request.start_instructions)?;
    let command = PartitionCommand::CreateInstance {
        definition_key: request.process_definition_key.max(0),
        bpmn_process_id: request.bpmn_process_id,
        version: if request.version == 0 {
            -1
        } else {
            request.version
        },
        variables: validate::variables("variables", &request.variables)?,
        await_result,
        start_instructions,
    };
    tenants::named(&request.tenant_id, command)
}
