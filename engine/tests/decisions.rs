//! DMN decisions: deployment (versions, duplicates, errors), business rule
//! tasks with `zeebe:calledDecision` (result variable, evaluation records,
//! incidents and their resolution, bindings), EvaluateDecision, distribution,
//! deletion and snapshots.

mod common;
use ::engine::*;
use common::*;

const DINNER: &str = r##"<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="dinner" name="Dinner" namespace="http://waggle/dinner">
  <decision id="dish" name="Dish">
    <extensionElements><zeebe:versionTag value="v1"/></extensionElements>
    <decisionTable id="dishTable" hitPolicy="UNIQUE">
      <input id="seasonInput" label="Season">
        <inputExpression id="seasonExpr" typeRef="string"><text>season</text></inputExpression>
      </input>
      <output id="dishOutput" name="dish" typeRef="string"/>
      <rule id="winterRule">
        <inputEntry id="e1"><text>"Winter"</text></inputEntry>
        <outputEntry id="o1"><text>"Stew"</text></outputEntry>
      </rule>
      <rule id="summerRule">
        <inputEntry id="e2"><text>"Summer"</text></inputEntry>
        <outputEntry id="o2"><text>"Salad"</text></outputEntry>
      </rule>
    </decisionTable>
  </decision>
  <decision id="drink" name="Drink">
    <informationRequirement id="ir1"><requiredDecision href="#dish"/></informationRequirement>
    <literalExpression id="drinkExpr"><text>if Dish = "Stew" then "Red wine" else "Water"</text></literalExpression>
  </decision>
</definitions>"##;

/// A UNIQUE table that fails when both rules match (amount > 100).
const SIZE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="sizes" name="Sizes" namespace="http://waggle/sizes">
  <decision id="size" name="Size">
    <decisionTable id="sizeTable" hitPolicy="UNIQUE">
      <input id="amountInput" label="Amount">
        <inputExpression id="amountExpr" typeRef="number"><text>amount</text></inputExpression>
      </input>
      <output id="sizeOutput" name="size" typeRef="string"/>
      <rule id="big"><inputEntry id="b1"><text>&gt; 10</text></inputEntry><outputEntry id="b2"><text>"big"</text></outputEntry></rule>
      <rule id="huge"><inputEntry id="h1"><text>&gt; 100</text></inputEntry><outputEntry id="h2"><text>"huge"</text></outputEntry></rule>
    </decisionTable>
  </decision>
</definitions>"#;

fn rule_task(process_id: &str, called: &str, extra: &str) -> String {
    bpmn(
        process_id,
        &format!(
            r#"<bpmn:startEvent id="start"/><bpmn:businessRuleTask id="rule"><bpmn:extensionElements><zeebe:calledDecision {called}/>{extra}</bpmn:extensionElements></bpmn:businessRuleTask><bpmn:endEvent id="end"/>{}{}"#,
            flow("f1", "start", "rule"),
            flow("f2", "rule", "end")
        ),
    )
}

fn deployed(
    r: Result<ResponseValue, Rejection>,
) -> (Vec<DecisionRequirementsMetadata>, Vec<DecisionMetadata>) {
    match r {
        Ok(ResponseValue::Deployment {
            decision_requirements,
            decisions,
            ..
        }) => (decision_requirements, decisions),
        other => panic!("deployment: {other:?}"),
    }
}

fn evaluate(
    h: &mut Harness,
    key: i64,
    id: &str,
    variables: &str,
) -> Result<ResponseValue, Rejection> {
    h.request(Record::command(
        NO_KEY,
        Intent::Evaluate,
        RecordValue::DecisionEvaluation(Box::new(DecisionEvaluationRecord::command(
            key,
            id,
            variables.to_string(),
        ))),
        None,
    ))
}

fn evaluated(r: Result<ResponseValue, Rejection>) -> (i64, DecisionEvaluationRecord) {
    match r {
        Ok(ResponseValue::DecisionEvaluated {
            key, evaluation, ..
        }) => (key, *evaluation),
        other => panic!("evaluation: {other:?}"),
    }
}

fn evaluations(h: &Harness) -> Vec<(Intent, DecisionEvaluationRecord)> {
    h.log
        .iter()
        .filter_map(|r| match &r.value {
            RecordValue::DecisionEvaluation(e) if r.record_type == RecordType::Event => {
                Some((r.intent, (**e).clone()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_dmn_resource_deploys_one_drg_and_its_decisions() {
    let mut h = Harness::new();
    let (drgs, decisions) = deployed(h.deploy("dinner.dmn", DINNER));
    assert_eq!(drgs.len(), 1);
    let drg = &drgs[0];
    assert_eq!(&*drg.decision_requirements_id, "dinner");
    assert_eq!(drg.decision_requirements_name, "Dinner");
    assert_eq!(drg.decision_requirements_version, 1);
    assert_eq!(drg.resource_name, "dinner.dmn");
    assert!(!drg.duplicate);
    let ids: Vec<(&str, &str, i32)> = decisions
        .iter()
        .map(|d| (&*d.decision_id, &*d.decision_name, d.version))
        .collect();
    assert_eq!(ids, [("dish", "Dish", 1), ("drink", "Drink", 1)]);
    for d in &decisions {
        assert_eq!(d.decision_requirements_key, drg.decision_requirements_key);
        assert_eq!(&*d.decision_requirements_id, "dinner");
        assert_eq!(key::partition_of(d.decision_key), 1);
        assert_ne!(d.decision_key, drg.decision_requirements_key);
    }
    assert_eq!(decisions[0].version_tag, "v1");
    assert_eq!(decisions[1].version_tag, "");
    assert_eq!(h.count(ValueType::DecisionRequirements, Intent::Created), 1);
    assert_eq!(h.count(ValueType::Decision, Intent::Created), 2);
    let deployment = h
        .log
        .iter()
        .find_map(|r| match &r.value {
            RecordValue::Deployment(d) if r.intent == Intent::Created => Some(d.clone()),
            _ => None,
        })
        .expect("DEPLOYMENT CREATED");
    assert_eq!(deployment.decisions, decisions);
    assert_eq!(deployment.decision_requirements, drgs);
}

#[test]
fn versions_are_bumped_only_when_the_content_changes() {
    let mut h = Harness::new();
    let (drgs1, decisions1) = deployed(h.deploy("dinner.dmn", DINNER));
    let (drgs2, decisions2) = deployed(h.deploy("dinner.dmn", DINNER));
    assert!(drgs2[0].duplicate);
    assert_eq!(
        drgs2[0].decision_requirements_key,
        drgs1[0].decision_requirements_key
    );
    assert!(decisions2.iter().all(|d| d.duplicate));
    assert_eq!(
        decisions2
            .iter()
            .map(|d| d.decision_key)
            .collect::<Vec<_>>(),
        decisions1
            .iter()
            .map(|d| d.decision_key)
            .collect::<Vec<_>>()
    );
    assert_eq!(h.count(ValueType::Decision, Intent::Created), 2);
    let changed = DINNER.replace("\"Water\"", "\"Juice\"");
    let (drgs3, decisions3) = deployed(h.deploy("dinner.dmn", &changed));
    assert!(!drgs3[0].duplicate);
    assert_eq!(drgs3[0].decision_requirements_version, 2);
    assert!(decisions3.iter().all(|d| d.version == 2 && !d.duplicate));
    assert_ne!(decisions3[0].decision_key, decisions1[0].decision_key);
    // the latest version is evaluated by id
    let (_, e) = evaluated(evaluate(&mut h, NO_KEY, "drink", r#"{"season": "Summer"}"#));
    assert_eq!(e.decision_output, r#""Juice""#);
    assert_eq!(e.decision_version, 2);
}

#[test]
fn a_business_rule_task_sets_its_result_variable_and_writes_the_evaluation() {
    let mut h = Harness::new();
    let process = rule_task(
        "meal",
        r#"decisionId="drink" resultVariable="drinkChoice""#,
        "",
    );
    deploy_all(&mut h, &[("meal.bpmn", &process), ("dinner.dmn", DINNER)]).unwrap();
    let pi = h.create("meal", r#"{"season": "Winter"}"#);
    assert!(h.is_completed(pi));
    assert_eq!(
        h.element_intents(pi, "rule"),
        [
            "ELEMENT_ACTIVATING",
            "ELEMENT_ACTIVATED",
            "ELEMENT_COMPLETING",
            "ELEMENT_COMPLETED"
        ]
    );
    let written = h
        .log
        .iter()
        .find_map(|r| match &r.value {
            RecordValue::Variable(v) if v.name == "drinkChoice" => Some(v.value.clone()),
            _ => None,
        })
        .expect("result variable written");
    assert_eq!(written, r#""Red wine""#);
    let evals = evaluations(&h);
    assert_eq!(evals.len(), 1);
    let (intent, e) = &evals[0];
    assert_eq!(*intent, Intent::Evaluated);
    let key = h
        .log
        .iter()
        .find(|r| r.value_type == ValueType::DecisionEvaluation)
        .unwrap()
        .key;
    assert_eq!(&*e.decision_id, "drink");
    assert_eq!(&*e.decision_name, "Drink");
    assert_eq!(e.decision_version, 1);
    assert_eq!(&*e.decision_requirements_id, "dinner");
    assert_eq!(e.decision_output, r#""Red wine""#);
    assert_eq!(&*e.bpmn_process_id, "meal");
    assert_eq!(e.process_instance_key, pi);
    assert_eq!(&*e.element_id, "rule");
    assert_ne!(e.element_instance_key, NO_KEY);
    let names: Vec<&str> = e
        .evaluated_decisions
        .iter()
        .map(|d| d.decision_id.as_str())
        .collect();
    assert_eq!(names, ["dish", "drink"], "required decision first");
    let dish = &e.evaluated_decisions[0];
    assert_eq!(dish.decision_type, "DECISION_TABLE");
    assert_eq!(dish.decision_output, r#""Stew""#);
    assert_eq!(dish.decision_evaluation_instance_key, format!("{key}-1"));
    assert_eq!(dish.evaluated_inputs[0].input_id, "seasonInput");
    assert_eq!(dish.evaluated_inputs[0].input_value, r#""Winter""#);
    assert_eq!(dish.matched_rules.len(), 1);
    assert_eq!(dish.matched_rules[0].rule_id, "winterRule");
    assert_eq!(dish.matched_rules[0].rule_index, 1);
    assert_eq!(
        dish.matched_rules[0].evaluated_outputs[0].output_value,
        r#""Stew""#
    );
    assert_eq!(e.evaluated_decisions[1].decision_type, "LITERAL_EXPRESSION");
    assert_eq!(
        e.evaluated_decisions[1].decision_evaluation_instance_key,
        format!("{key}-2")
    );
    assert_ne!(e.evaluated_decisions[1].decision_key, NO_KEY);
}

#[test]
fn output_mappings_and_a_feel_decision_id_apply() {
    let mut h = Harness::new();
    h.deploy("dinner.dmn", DINNER).unwrap();
    let process = rule_task(
        "meal",
        r#"decisionId="=which" resultVariable="result""#,
        r#"<zeebe:ioMapping><zeebe:output source="=upper case(result)" target="shout"/></zeebe:ioMapping>"#,
    );
    h.deploy("meal.bpmn", &process).unwrap();
    let pi = h.create("meal", r#"{"season": "Summer", "which": "dish"}"#);
    assert!(h.is_completed(pi));
    let shout = h.log.iter().find_map(|r| match &r.value {
        RecordValue::Variable(v) if v.name == "shout" => Some(v.value.clone()),
        _ => None,
    });
    assert_eq!(shout.as_deref(), Some(r#""SALAD""#));
    // with an output mapping the result variable stays local to the task
    assert!(!h.log.iter().any(|r| matches!(&r.value,
        RecordValue::Variable(v) if v.name == "result" && v.scope_key == pi)));
}

#[test]
fn a_failing_decision_raises_an_incident_that_resolves_after_fixing_variables() {
    let mut h = Harness::new();
    let process = rule_task("sizing", r#"decisionId="size" resultVariable="size""#, "");
    deploy_all(&mut h, &[("sizing.bpmn", &process), ("size.dmn", SIZE)]).unwrap();
    let pi = h.create("sizing", r#"{"amount": 500}"#);
    assert!(!h.is_completed(pi));
    let incidents = h.incidents();
    assert_eq!(incidents.len(), 1);
    let (incident_key, incident) = &incidents[0];
    assert_eq!(incident.error_type, ErrorType::DecisionEvaluationError);
    assert!(
        incident
            .error_message
            .starts_with("Expected to evaluate decision 'size', but"),
        "{}",
        incident.error_message
    );
    let evals = evaluations(&h);
    assert_eq!(evals[0].0, Intent::Failed);
    assert_eq!(evals[0].1.failed_decision_id, "size");
    assert_eq!(
        evals[0].1.evaluation_failure_message,
        incident.error_message
    );
    assert_eq!(evals[0].1.decision_output, "null");
    h.set_variables(pi, r#"{"amount": 50}"#, false).unwrap();
    h.resolve(*incident_key).unwrap();
    assert!(h.is_completed(pi));
    assert_eq!(evaluations(&h)[1].0, Intent::Evaluated);
    let size = h.log.iter().rev().find_map(|r| match &r.value {
        RecordValue::Variable(v) if v.name == "size" => Some(v.value.clone()),
        _ => None,
    });
    assert_eq!(size.as_deref(), Some(r#""big""#));
}

#[test]
fn a_missing_decision_is_a_called_decision_error_until_deployed() {
    let mut h = Harness::new();
    let process = rule_task("later", r#"decisionId="size" resultVariable="size""#, "");
    h.deploy("later.bpmn", &process).unwrap();
    let pi = h.create("later", r#"{"amount": 5}"#);
    let incidents = h.incidents();
    assert_eq!(incidents[0].1.error_type, ErrorType::CalledDecisionError);
    assert_eq!(
        incidents[0].1.error_message,
        "Expected to evaluate decision 'size', but no decision found for id 'size'"
    );
    assert!(evaluations(&h).is_empty());
    h.deploy("size.dmn", SIZE).unwrap();
    h.resolve(incidents[0].0).unwrap();
    assert!(h.is_completed(pi));
    assert_eq!(
        h.variable(pi, "size"),
        None,
        "root variables are gone with the instance"
    );
    assert_eq!(evaluations(&h)[0].1.decision_output, "null");
}

#[test]
fn bindings_choose_the_version_by_tag_or_deployment() {
    let mut h = Harness::new();
    let by_tag = rule_task(
        "tagged",
        r#"decisionId="dish" resultVariable="r" bindingType="versionTag" versionTag="v1""#,
        "",
    );
    let by_deployment = rule_task(
        "pinned",
        r#"decisionId="drink" resultVariable="r" bindingType="deployment""#,
        "",
    );
    deploy_all(
        &mut h,
        &[("pinned.bpmn", &by_deployment), ("dinner.dmn", DINNER)],
    )
    .unwrap();
    h.deploy("tagged.bpmn", &by_tag).unwrap();
    let v2 = DINNER
        .replace("value=\"v1\"", "value=\"v2\"")
        .replace("\"Water\"", "\"Juice\"")
        .replace("\"Salad\"", "\"Soup\"");
    h.deploy("dinner.dmn", &v2).unwrap();
    for (process, expected_version) in [("tagged", 1), ("pinned", 1)] {
        h.create(process, r#"{"season": "Summer"}"#);
        let (_, e) = evaluations(&h).pop().unwrap();
        assert_eq!(e.decision_version, expected_version, "{process}");
    }
    let missing_tag = rule_task(
        "future",
        r#"decisionId="dish" resultVariable="r" bindingType="versionTag" versionTag="v9""#,
        "",
    );
    h.deploy("future.bpmn", &missing_tag).unwrap();
    h.create("future", "{}");
    let incident = h.incidents().pop().unwrap().1;
    assert_eq!(incident.error_type, ErrorType::CalledDecisionError);
    assert!(
        incident.error_message.contains("version tag 'v9'"),
        "{}",
        incident.error_message
    );
    let bad = rule_task(
        "bad",
        r#"decisionId="dish" resultVariable="r" bindingType="versionTag""#,
        "",
    );
    let err = h.deploy("bad.bpmn", &bad).unwrap_err();
    assert!(err.reason.contains("needs a versionTag"), "{}", err.reason);
}

#[test]
fn evaluate_decision_by_id_and_by_key() {
    let mut h = Harness::new();
    let (_, decisions) = deployed(h.deploy("dinner.dmn", DINNER));
    let (key, by_id) = evaluated(evaluate(&mut h, NO_KEY, "drink", r#"{"season": "Winter"}"#));
    assert_eq!(by_id.decision_output, r#""Red wine""#);
    assert_eq!(by_id.decision_key, decisions[1].decision_key);
    assert_eq!(by_id.evaluated_decisions.len(), 2);
    assert_eq!(by_id.process_instance_key, NO_KEY);
    assert_eq!(by_id.variables, r#"{"season": "Winter"}"#);
    assert_eq!(key::partition_of(key), 1);
    let (_, by_key) = evaluated(evaluate(
        &mut h,
        decisions[0].decision_key,
        "",
        r#"{"season": "Summer"}"#,
    ));
    assert_eq!(&*by_key.decision_id, "dish");
    assert_eq!(by_key.decision_output, r#""Salad""#);
    let err = evaluate(&mut h, NO_KEY, "nothing", "{}").unwrap_err();
    assert_eq!(err.rejection_type, RejectionType::NotFound);
    assert_eq!(
        err.reason,
        "Expected to evaluate decision 'nothing', but no decision found for id 'nothing'"
    );
    let err = evaluate(&mut h, 12345, "", "{}").unwrap_err();
    assert_eq!(err.rejection_type, RejectionType::NotFound);
    assert!(err.reason.contains("'12345'"), "{}", err.reason);
    let err = evaluate(&mut h, NO_KEY, "drink", "[1]").unwrap_err();
    assert_eq!(err.rejection_type, RejectionType::InvalidArgument);
    // a failure is an answer, not a rejection
    h.deploy("size.dmn", SIZE).unwrap();
    let (_, failed) = evaluated(evaluate(&mut h, NO_KEY, "size", r#"{"amount": 1000}"#));
    assert_eq!(failed.failed_decision_id, "size");
    assert!(
        failed.evaluation_failure_message.contains("UNIQUE"),
        "{}",
        failed.evaluation_failure_message
    );
    assert_eq!(evaluations(&h).last().unwrap().0, Intent::Failed);
}

#[test]
fn a_bad_dmn_rejects_the_whole_deployment_naming_resource_and_decision() {
    let mut h = Harness::new();
    let broken = DINNER.replace(
        "if Dish = \"Stew\" then \"Red wine\" else \"Water\"",
        "if Dish = then",
    );
    let process = rule_task("meal", r#"decisionId="drink" resultVariable="d""#, "");
    let err = deploy_all(&mut h, &[("meal.bpmn", &process), ("broken.dmn", &broken)]).unwrap_err();
    assert_eq!(err.rejection_type, RejectionType::InvalidArgument);
    assert!(err.reason.contains("'broken.dmn'"), "{}", err.reason);
    assert!(err.reason.contains("decision 'drink'"), "{}", err.reason);
    assert!(
        h.engine.state().processes.is_empty(),
        "nothing of the deployment is kept"
    );
    assert!(h.engine.state().decisions.drgs.is_empty());
    let err = h.deploy("bad.dmn", "<definitions").unwrap_err();
    assert!(err.reason.contains("'bad.dmn'"), "{}", err.reason);
    let twice = deploy_all(
        &mut h,
        &[
            ("a.dmn", DINNER),
            ("b.dmn", &DINNER.replace("id=\"dinner\"", "id=\"dinner2\"")),
        ],
    )
    .unwrap_err();
    assert!(
        twice
            .reason
            .contains("found a duplicated id 'dish' in the resources 'a.dmn' and 'b.dmn'"),
        "{}",
        twice.reason
    );
}

#[test]
fn a_deeply_nested_dmn_is_rejected_before_parsing() {
    let mut h = Harness::new();
    let levels = dmn::xml_depth::MAX_XML_DEPTH + 10;
    let mut xml = String::from(
        r#"<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="deep" name="Deep" namespace="x"><decision id="d" name="D"><literalExpression><text>1</text></literalExpression>"#,
    );
    xml.push_str(&"<extensionElements>".repeat(levels));
    xml.push_str(&"</extensionElements>".repeat(levels));
    xml.push_str("</decision></definitions>");
    let err = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || h.deploy("deep.dmn", &xml).unwrap_err())
        .unwrap()
        .join()
        .expect("no stack overflow");
    assert!(err.reason.contains("'deep.dmn'"), "{}", err.reason);
    assert!(
        err.reason.contains(&format!(
            "deeper than {} levels",
            dmn::xml_depth::MAX_XML_DEPTH
        )),
        "{}",
        err.reason
    );
}

#[test]
fn every_partition_evaluates_and_a_deleted_drg_is_gone_everywhere() {
    let mut c = Cluster::new(2);
    c.deploy("dinner.dmn", DINNER);
    let (_, e) = evaluated(evaluate(
        c.partition(2),
        NO_KEY,
        "drink",
        r#"{"season": "Winter"}"#,
    ));
    assert_eq!(e.decision_output, r#""Red wine""#);
    let process = rule_task("meal", r#"decisionId="dish" resultVariable="d""#, "");
    c.deploy("meal.bpmn", &process);
    let pi = c.partition(2).create("meal", r#"{"season": "Summer"}"#);
    assert!(c.partition(2).is_completed(pi));
    let drg_key = c
        .partition(1)
        .engine
        .state()
        .decisions
        .drgs
        .keys()
        .next()
        .copied()
        .unwrap();
    c.partition(1)
        .request(Record::command(
            NO_KEY,
            Intent::Delete,
            RecordValue::ResourceDeletion(ResourceDeletionRecord {
                resource_key: drg_key,
            }),
            None,
        ))
        .unwrap();
    c.deliver();
    for p in [1, 2] {
        let h = c.partition(p);
        assert!(h.engine.state().decisions.drgs.is_empty(), "partition {p}");
        assert_eq!(
            h.count(ValueType::Decision, Intent::Deleted),
            2,
            "partition {p}"
        );
        assert_eq!(h.count(ValueType::DecisionRequirements, Intent::Deleted), 1);
        let err = evaluate(h, NO_KEY, "drink", "{}").unwrap_err();
        assert_eq!(err.rejection_type, RejectionType::NotFound);
    }
    // a redeployment is a new version, not a reuse of the deleted one
    c.partition(1).deploy("dinner.dmn", DINNER).unwrap();
    let (_, e) = evaluated(evaluate(
        c.partition(1),
        NO_KEY,
        "drink",
        r#"{"season": "Winter"}"#,
    ));
    assert_eq!(e.decision_version, 2);
}

#[test]
fn a_snapshot_keeps_the_decisions_parsed() {
    let mut h = Harness::new();
    h.deploy("dinner.dmn", DINNER).unwrap();
    let bytes = h.engine.snapshot();
    assert_eq!(bytes[0], ::engine::engine::SNAPSHOT_FORMAT_WITHOUT_IDENTITY);
    let restored = Engine::restore(&bytes).expect("restores");
    assert_eq!(restored.snapshot(), bytes);
    let mut h2 = Harness::with_engine(restored);
    let (_, e) = evaluated(evaluate(
        &mut h2,
        NO_KEY,
        "drink",
        r#"{"season": "Summer"}"#,
    ));
    assert_eq!(e.decision_output, r#""Water""#);
    let mut old = bytes.clone();
    old[0] = 3;
    assert!(matches!(
        Engine::restore(&old),
        Err(SnapshotError::UnsupportedVersion { found: 3 })
    ));
}

#[test]
fn now_in_a_decision_reads_the_command_timestamp() {
    let mut h = Harness::new();
    let xml = r#"<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="clock" name="Clock" namespace="x"><decision id="year" name="Year"><literalExpression><text>now().year</text></literalExpression></decision></definitions>"#;
    h.deploy("clock.dmn", xml).unwrap();
    h.now_ms = 86_400_000 * 366; // 1971-01-02
    let (_, e) = evaluated(evaluate(&mut h, NO_KEY, "year", "{}"));
    assert_eq!(e.decision_output, "1971");
}

#[test]
fn a_follower_replaying_the_events_reaches_the_same_state() {
    let mut h = Harness::new();
    let process = rule_task("sizing", r#"decisionId="size" resultVariable="size""#, "");
    deploy_all(
        &mut h,
        &[
            ("sizing.bpmn", &process),
            ("size.dmn", SIZE),
            ("dinner.dmn", DINNER),
        ],
    )
    .unwrap();
    let failing = h.create("sizing", r#"{"amount": 500}"#);
    h.create("sizing", r#"{"amount": 50}"#);
    evaluated(evaluate(&mut h, NO_KEY, "drink", r#"{"season": "Winter"}"#));
    h.set_variables(failing, r#"{"amount": 20}"#, false)
        .unwrap();
    let incident = h.incidents()[0].0;
    h.resolve(incident).unwrap();
    let drg = h
        .engine
        .state()
        .decisions
        .latest_drg(&Tenant::default(), "dinner")
        .unwrap()
        .metadata
        .decision_requirements_key;
    h.request(Record::command(
        NO_KEY,
        Intent::Delete,
        RecordValue::ResourceDeletion(ResourceDeletionRecord { resource_key: drg }),
        None,
    ))
    .unwrap();
    let mut follower = Engine::new(1, 1);
    for r in &h.log {
        follower.replay(r);
    }
    assert_eq!(follower.snapshot(), h.engine.snapshot());
    assert!(h
        .engine
        .state()
        .decisions
        .latest_decision(&Tenant::default(), "size")
        .is_some());
    assert!(h
        .engine
        .state()
        .decisions
        .latest_decision(&Tenant::default(), "drink")
        .is_none());
}
