//! Which version a call activity calls: `zeebe:calledElement bindingType`
//! latest (the default), deployment and versionTag, with Zeebe's incidents
//! when no such version exists and deployment rejections for bad bindings.

mod common;
use ::engine::*;
use common::*;

/// `child` with one service task of `job_type`, tagged `tag` if given.
fn child(job_type: &str, tag: Option<&str>) -> String {
    let tag = tag
        .map(|t| {
            format!(
                r#"<bpmn:extensionElements><zeebe:versionTag value="{t}"/></bpmn:extensionElements>"#
            )
        })
        .unwrap_or_default();
    bpmn(
        "child",
        &format!(
            r#"{tag}<bpmn:startEvent id="cs"/>{}<bpmn:endEvent id="ce"/>{}{}"#,
            service_task("work", job_type, ""),
            flow("c1", "cs", "work"),
            flow("c2", "work", "ce"),
        ),
    )
}

/// `process_id` calling `child` with the given `zeebe:calledElement` attributes.
fn caller(process_id: &str, binding: &str) -> String {
    bpmn(
        process_id,
        &format!(
            r#"<bpmn:startEvent id="s"/><bpmn:callActivity id="call"><bpmn:extensionElements><zeebe:calledElement processId="child" {binding}/></bpmn:extensionElements></bpmn:callActivity><bpmn:endEvent id="e"/>{}{}"#,
            flow("f1", "s", "call"),
            flow("f2", "call", "e"),
        ),
    )
}

/// The job types of the called child's task, one per activatable job.
fn called_types(h: &mut Harness, types: &[&str]) -> Vec<String> {
    types
        .iter()
        .flat_map(|t| h.activate(t, 10))
        .map(|j| j.job.job_type.to_string())
        .collect()
}

#[test]
fn latest_deployment_and_version_tag_bindings_call_their_version() {
    let mut h = Harness::new();
    // Deployment 1: the deployment-bound caller with child v1 (tag v1).
    deploy_all(
        &mut h,
        &[
            ("child.bpmn", &child("work-v1", Some("v1"))),
            (
                "by_deployment.bpmn",
                &caller("by_deployment", r#"bindingType="deployment""#),
            ),
        ],
    )
    .unwrap();
    h.deploy("child.bpmn", &child("work-v2", Some("v2")))
        .unwrap();
    h.deploy("child.bpmn", &child("work-v3", None)).unwrap();
    h.deploy("latest.bpmn", &caller("latest", "")).unwrap();
    h.deploy(
        "tagged.bpmn",
        &caller("tagged", r#"bindingType="versionTag" versionTag="v2""#),
    )
    .unwrap();
    let types = ["work-v1", "work-v2", "work-v3"];

    h.create("latest", "{}");
    assert_eq!(called_types(&mut h, &types), ["work-v3"]);
    h.create("by_deployment", "{}");
    assert_eq!(called_types(&mut h, &types), ["work-v1"]);
    h.create("tagged", "{}");
    assert_eq!(called_types(&mut h, &types), ["work-v2"]);
    assert!(h.incidents().is_empty(), "{:?}", h.incidents());
}

#[test]
fn a_missing_bound_version_raises_a_called_element_incident() {
    let mut h = Harness::new();
    h.deploy("child.bpmn", &child("work", Some("v1"))).unwrap();
    h.deploy(
        "tagged.bpmn",
        &caller("tagged", r#"bindingType="versionTag" versionTag="v9""#),
    )
    .unwrap();
    h.deploy(
        "by_deployment.bpmn",
        &caller("by_deployment", r#"bindingType="deployment""#),
    )
    .unwrap();
    let tagged = h.create("tagged", "{}");
    let by_deployment = h.create("by_deployment", "{}");
    let incidents = h.incidents();
    let message = |pi: i64| {
        let (_, i) = incidents
            .iter()
            .find(|(_, i)| i.process_instance_key == pi)
            .unwrap_or_else(|| panic!("no incident for {pi}: {incidents:?}"));
        assert_eq!(i.error_type, ErrorType::CalledElementError);
        assert_eq!(&*i.element_id, "call");
        i.error_message.clone()
    };
    let m = message(tagged);
    assert!(
        m.contains("'child'") && m.contains("version tag 'v9'"),
        "{m}"
    );
    let m = message(by_deployment);
    assert!(
        m.contains("'child'") && m.contains("binding type 'deployment'"),
        "{m}"
    );
    assert!(h.activate("work", 10).is_empty(), "no child was started");
}

#[test]
fn a_bad_binding_is_rejected_at_deployment_naming_the_element() {
    let mut h = Harness::new();
    for (binding, problem) in [
        (
            r#"bindingType="nearest""#,
            "zeebe:calledElement bindingType 'nearest' is not one of latest, deployment, versionTag",
        ),
        (
            r#"bindingType="versionTag""#,
            "zeebe:calledElement with bindingType 'versionTag' needs a versionTag",
        ),
    ] {
        let err = h.deploy("bad.bpmn", &caller("bad", binding)).unwrap_err();
        assert_eq!(err.rejection_type, RejectionType::InvalidArgument);
        assert!(
            err.reason.contains(problem) && err.reason.contains("call"),
            "{}",
            err.reason
        );
    }
}
