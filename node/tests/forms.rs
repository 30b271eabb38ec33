//! Camunda Forms over the gRPC gateway of a `waggle dev` broker: a
//! deployment of a `.form` beside a process answers with its form entry
//! (FormMetadata), a redeployment of the same content keeps key and
//! version, a form without an id is refused naming the resource, and the
//! form is deleted with DeleteResource.

mod common;
use common::*;
use node::gateway::proto;

const FORM: &str = r#"{"id": "grpc_form", "components": []}"#;

async fn deploy(
    client: &mut proto::gateway_client::GatewayClient<tonic::transport::Channel>,
    name: &str,
    content: &str,
) -> Result<proto::DeployResourceResponse, tonic::Status> {
    client
        .deploy_resource(proto::DeployResourceRequest {
            resources: vec![proto::Resource {
                name: name.into(),
                content: content.as_bytes().to_vec(),
            }],
            tenant_id: String::new(),
        })
        .await
        .map(|r| r.into_inner())
}

fn form_of(r: &proto::DeployResourceResponse) -> proto::FormMetadata {
    match r.deployments.as_slice() {
        [proto::Deployment {
            metadata: Some(proto::deployment::Metadata::Form(f)),
        }] => f.clone(),
        other => panic!("expected one form entry, got {other:?}"),
    }
}

#[test]
fn a_form_is_deployed_redeployed_refused_and_deleted_over_grpc() {
    let broker = Broker::start_dev(&[]);
    runtime().block_on(async {
        let mut client = connect(&broker).await;
        let first = form_of(
            &deploy(&mut client, "order.form", FORM)
                .await
                .expect("deploy"),
        );
        assert_eq!(first.form_id, "grpc_form");
        assert_eq!(first.version, 1);
        assert_eq!(first.resource_name, "order.form");
        assert_eq!(first.tenant_id, "<default>");
        let again = form_of(
            &deploy(&mut client, "order.form", FORM)
                .await
                .expect("redeploy"),
        );
        assert_eq!((again.form_key, again.version), (first.form_key, 1));

        let refused = deploy(&mut client, "noid.form", r#"{"components": []}"#)
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);
        assert!(
            refused.message().contains("'noid.form'"),
            "{}",
            refused.message()
        );

        client
            .delete_resource(proto::DeleteResourceRequest {
                resource_key: first.form_key,
                ..Default::default()
            })
            .await
            .expect("delete the form");
        let after = form_of(
            &deploy(&mut client, "order.form", FORM)
                .await
                .expect("deploy"),
        );
        assert_eq!(after.version, 2, "a deleted version is not reused");
        assert_ne!(after.form_key, first.form_key);
    });
    assert!(broker.terminate().success());
}
