//! The CLI's thin client over the gateway: each subcommand is one RPC, printed
//! as JSON on stdout like `zbctl` does.

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde_json::json;

use crate::gateway::proto;
use crate::gateway::proto::gateway_client::GatewayClient;

/// Where the gateway is and how to reach it.
#[derive(Debug, Clone, Default)]
pub struct Gateway {
    /// `host:port`, `http://host:port` or `https://host:port`.
    pub address: String,
    /// PEM CA certificates to trust: TLS (also implied by `https://`).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate and key, for a gateway that requires one.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// User name and password, for a gateway with basic authentication.
    pub credentials: Option<(String, String)>,
}

/// Puts the `authorization: Basic` header on every call, when there are
/// credentials.
#[derive(Debug, Clone)]
pub struct Credentials(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for Credentials {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A gateway client that sends the credentials.
pub type Client = GatewayClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, Credentials>,
>;

impl Gateway {
    fn tls(&self) -> bool {
        self.ca_file.is_some() || self.client_cert.is_some() || self.address.starts_with("https://")
    }

    fn uri(&self) -> String {
        match self.address.contains("://") {
            true => self.address.clone(),
            false if self.tls() => format!("https://{}", self.address),
            false => format!("http://{}", self.address),
        }
    }
}

/// Connects to the gateway.
pub async fn connect(gateway: &Gateway) -> Result<Client> {
    let uri = gateway.uri();
    let mut endpoint = tonic::transport::Endpoint::from_shared(uri.clone())
        .with_context(|| format!("{uri} is not a gateway address"))?;
    if gateway.tls() {
        let read = |path: &PathBuf| {
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
        };
        let mut tls = tonic::transport::ClientTlsConfig::new().with_enabled_roots();
        if let Some(ca) = &gateway.ca_file {
            tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(read(ca)?));
        }
        if let Some((cert, key)) = &gateway.client_cert {
            tls = tls.identity(tonic::transport::Identity::from_pem(
                read(cert)?,
                read(key)?,
            ));
        }
        endpoint = endpoint
            .tls_config(tls)
            .with_context(|| format!("TLS settings for {uri}"))?;
    }
    let channel = endpoint
        .connect()
        .await
        .with_context(|| format!("cannot connect to the gateway at {uri}"))?;
    let credentials = match &gateway.credentials {
        Some((name, password)) => {
            use base64::Engine as _;
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"));
            Some(
                format!("Basic {encoded}")
                    .parse()
                    .context("the user name or password holds characters a header cannot carry")?,
            )
        }
        None => None,
    };
    Ok(GatewayClient::with_interceptor(
        channel,
        Credentials(credentials),
    ))
}

fn status_error(rpc: &str, status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{rpc} failed: {:?}: {}", status.code(), status.message())
}

/// `waggle status`: the topology.
pub async fn status(gateway: &Gateway) -> Result<serde_json::Value> {
    let mut client = connect(gateway).await?;
    let topology = client
        .topology(proto::TopologyRequest {})
        .await
        .map_err(|s| status_error("Topology", s))?
        .into_inner();
    let brokers: Vec<_> = topology
        .brokers
        .iter()
        .map(|b| {
            let partitions: Vec<_> = b
                .partitions
                .iter()
                .map(|p| {
                    json!({
                        "partitionId": p.partition_id,
                        "role": proto::partition::PartitionBrokerRole::try_from(p.role)
                            .map(|r| r.as_str_name()).unwrap_or("UNKNOWN"),
                        "health": proto::partition::PartitionBrokerHealth::try_from(p.health)
                            .map(|h| h.as_str_name()).unwrap_or("UNKNOWN"),
                    })
                })
                .collect();
            json!({"nodeId": b.node_id, "host": b.host, "port": b.port, "version": b.version, "partitions": partitions})
        })
        .collect();
    Ok(json!({
        "clusterSize": topology.cluster_size,
        "partitionsCount": topology.partitions_count,
        "replicationFactor": topology.replication_factor,
        "gatewayVersion": topology.gateway_version,
        "brokers": brokers,
    }))
}

/// `waggle deploy FILE...`.
pub async fn deploy(gateway: &Gateway, files: &[PathBuf]) -> Result<serde_json::Value> {
    let mut resources = Vec::with_capacity(files.len());
    for file in files {
        let content =
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| file.display().to_string());
        resources.push(proto::Resource { name, content });
    }
    let mut client = connect(gateway).await?;
    let response = client
        .deploy_resource(proto::DeployResourceRequest {
            resources,
            tenant_id: String::new(),
        })
        .await
        .map_err(|s| status_error("DeployResource", s))?
        .into_inner();
    let deployments: Vec<_> = response
        .deployments
        .iter()
        .filter_map(|d| match &d.metadata {
            Some(proto::deployment::Metadata::Process(p)) => Some(json!({"process": {
                "bpmnProcessId": p.bpmn_process_id, "version": p.version,
                "processDefinitionKey": p.process_definition_key, "resourceName": p.resource_name}})),
            Some(proto::deployment::Metadata::Decision(d)) => Some(json!({"decision": {
                "decisionId": d.dmn_decision_id, "name": d.dmn_decision_name, "version": d.version,
                "decisionKey": d.decision_key,
                "decisionRequirementsKey": d.decision_requirements_key}})),
            Some(proto::deployment::Metadata::DecisionRequirements(r)) => {
                Some(json!({"decisionRequirements": {
                    "decisionRequirementsId": r.dmn_decision_requirements_id,
                    "version": r.version, "decisionRequirementsKey": r.decision_requirements_key,
                    "resourceName": r.resource_name}}))
            }
            Some(proto::deployment::Metadata::Form(f)) => Some(json!({"form": {
                "formId": f.form_id, "version": f.version, "formKey": f.form_key,
                "resourceName": f.resource_name}})),
            _ => None,
        })
        .collect();
    Ok(json!({"key": response.key, "deployments": deployments}))
}

/// What `waggle create-instance` creates.
#[derive(Debug, Clone)]
pub struct CreateInstance {
    /// BPMN process id.
    pub bpmn_process_id: String,
    /// Version, -1 for the latest.
    pub version: i32,
    /// JSON object.
    pub variables: String,
    /// Wait for the instance to complete.
    pub with_result: bool,
    /// How long to wait with `with_result`.
    pub request_timeout_ms: i64,
}

/// `waggle create-instance`.
pub async fn create_instance(gateway: &Gateway, args: CreateInstance) -> Result<serde_json::Value> {
    let mut client = connect(gateway).await?;
    let request = proto::CreateProcessInstanceRequest {
        bpmn_process_id: args.bpmn_process_id,
        version: args.version,
        variables: args.variables,
        ..Default::default()
    };
    if args.with_result {
        let r = client
            .create_process_instance_with_result(proto::CreateProcessInstanceWithResultRequest {
                request: Some(request),
                request_timeout: args.request_timeout_ms,
                fetch_variables: Vec::new(),
            })
            .await
            .map_err(|s| status_error("CreateProcessInstanceWithResult", s))?
            .into_inner();
        let variables: serde_json::Value =
            serde_json::from_str(&r.variables).unwrap_or(json!(r.variables));
        Ok(
            json!({"processDefinitionKey": r.process_definition_key, "bpmnProcessId": r.bpmn_process_id,
            "version": r.version, "processInstanceKey": r.process_instance_key, "variables": variables}),
        )
    } else {
        let r = client
            .create_process_instance(request)
            .await
            .map_err(|s| status_error("CreateProcessInstance", s))?
            .into_inner();
        Ok(
            json!({"processDefinitionKey": r.process_definition_key, "bpmnProcessId": r.bpmn_process_id,
            "version": r.version, "processInstanceKey": r.process_instance_key}),
        )
    }
}

/// What `waggle publish-message` publishes.
#[derive(Debug, Clone)]
pub struct PublishMessage {
    /// Message name.
    pub name: String,
    /// Correlation key.
    pub correlation_key: String,
    /// JSON object.
    pub variables: String,
    /// Buffering time.
    pub time_to_live_ms: i64,
    /// Uniqueness id.
    pub message_id: String,
}

/// `waggle publish-message`.
pub async fn publish_message(gateway: &Gateway, args: PublishMessage) -> Result<serde_json::Value> {
    let mut client = connect(gateway).await?;
    let r = client
        .publish_message(proto::PublishMessageRequest {
            name: args.name,
            correlation_key: args.correlation_key,
            time_to_live: args.time_to_live_ms,
            message_id: args.message_id,
            variables: args.variables,
            tenant_id: String::new(),
        })
        .await
        .map_err(|s| status_error("PublishMessage", s))?
        .into_inner();
    Ok(json!({"key": r.key}))
}

/// `waggle cancel KEY`.
pub async fn cancel(gateway: &Gateway, process_instance_key: i64) -> Result<serde_json::Value> {
    let mut client = connect(gateway).await?;
    client
        .cancel_process_instance(proto::CancelProcessInstanceRequest {
            process_instance_key,
            operation_reference: None,
        })
        .await
        .map_err(|s| status_error("CancelProcessInstance", s))?;
    Ok(json!({"canceled": process_instance_key}))
}

/// `waggle resolve-incident KEY`.
pub async fn resolve_incident(gateway: &Gateway, incident_key: i64) -> Result<serde_json::Value> {
    let mut client = connect(gateway).await?;
    client
        .resolve_incident(proto::ResolveIncidentRequest {
            incident_key,
            operation_reference: None,
        })
        .await
        .map_err(|s| status_error("ResolveIncident", s))?;
    Ok(json!({"resolved": incident_key}))
}

/// `waggle activate-jobs TYPE`: activates up to `max_jobs` jobs, waiting up
/// to `request_timeout_ms` for one to become available.
pub async fn activate_jobs(
    gateway: &Gateway,
    job_type: &str,
    worker: &str,
    max_jobs: i32,
    timeout_ms: i64,
    request_timeout_ms: i64,
) -> Result<serde_json::Value> {
    let mut client = connect(gateway).await?;
    let mut stream = client
        .activate_jobs(proto::ActivateJobsRequest {
            r#type: job_type.to_string(),
            worker: worker.to_string(),
            timeout: timeout_ms,
            max_jobs_to_activate: max_jobs,
            request_timeout: request_timeout_ms,
            ..Default::default()
        })
        .await
        .map_err(|s| status_error("ActivateJobs", s))?
        .into_inner();
    let mut jobs = Vec::new();
    while let Some(batch) = stream
        .message()
        .await
        .map_err(|s| status_error("ActivateJobs", s))?
    {
        for j in batch.jobs {
            let variables: serde_json::Value =
                serde_json::from_str(&j.variables).unwrap_or(json!(j.variables));
            jobs.push(
                json!({"key": j.key, "type": j.r#type, "processInstanceKey": j.process_instance_key,
                "bpmnProcessId": j.bpmn_process_id, "elementId": j.element_id, "retries": j.retries,
                "deadline": j.deadline, "variables": variables}),
            );
        }
    }
    Ok(json!({"jobs": jobs}))
}

/// `waggle complete-job KEY`.
pub async fn complete_job(
    gateway: &Gateway,
    job_key: i64,
    variables: String,
) -> Result<serde_json::Value> {
    let mut client = connect(gateway).await?;
    client
        .complete_job(proto::CompleteJobRequest {
            job_key,
            variables,
            result: None,
        })
        .await
        .map_err(|s| status_error("CompleteJob", s))?;
    Ok(json!({"completed": job_key}))
}
