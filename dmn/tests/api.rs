//! The engine-facing surface: evaluated-decision records, hit policies,
//! failure texts, parse errors and the bounds on what users can make the
//! evaluator recurse through.

use dmn::{Drg, ParseError};
use feel::{Entries, Value};
use serde_json::json;
use std::sync::Arc;

const NS: &str = "https://www.omg.org/spec/DMN/20230324/MODEL/";

fn model(body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="{NS}" id="drg" name="DRG" namespace="http://example.com/dmn">
{body}
</definitions>"#
    )
}

fn vars(pairs: &[(&str, Value)]) -> Entries {
    let mut e = Entries::new();
    for (k, v) in pairs {
        e.put(Arc::from(*k), v.clone());
    }
    e
}

/// A single-input, single-output table with the given hit policy and
/// rules `(input entry, output entry)`.
fn table(hit_policy: &str, output_values: &str, rules: &[(&str, &str)]) -> Drg {
    let rules: String = rules
        .iter()
        .enumerate()
        .map(|(i, (input, output))| {
            format!(
                r#"<rule id="r{n}"><inputEntry><text>{input}</text></inputEntry><outputEntry><text>{output}</text></outputEntry></rule>"#,
                n = i + 1
            )
        })
        .collect();
    let values = if output_values.is_empty() {
        String::new()
    } else {
        format!("<outputValues><text>{output_values}</text></outputValues>")
    };
    Drg::parse(&model(&format!(
        r#"<decision id="d" name="D"><decisionTable {hit_policy}>
             <input id="in1" label="Score"><inputExpression typeRef="number"><text>score</text></inputExpression></input>
             <output id="out1" name="result">{values}</output>
             {rules}
           </decisionTable></decision>"#
    )))
    .expect("test model parses")
}

fn eval(drg: &Drg, score: i64) -> Result<String, String> {
    drg.evaluate("d", &vars(&[("score", Value::int(score))]), 0, "UTC")
        .map(|r| feel::to_json(&r.output).to_string())
        .map_err(|f| f.message)
}

#[test]
fn required_decisions_are_evaluated_first_and_recorded_as_zeebe_does() {
    let drg = Drg::parse(&model(
        r##"<inputData id="i_age" name="Age"><variable name="Age" typeRef="number"/></inputData>
           <decision id="adult" name="Is Adult">
             <variable name="Is Adult" typeRef="boolean"/>
             <informationRequirement><requiredInput href="#i_age"/></informationRequirement>
             <literalExpression><text>Age >= 18</text></literalExpression>
           </decision>
           <decision id="label" name="Label">
             <informationRequirement><requiredDecision href="#adult"/></informationRequirement>
             <decisionTable hitPolicy="UNIQUE">
               <input id="in_adult" label="Adult?"><inputExpression><text>Is Adult</text></inputExpression></input>
               <output id="out_label" name="label" typeRef="string"/>
               <rule id="rule_yes"><inputEntry><text>true</text></inputEntry><outputEntry><text>"adult"</text></outputEntry></rule>
               <rule id="rule_no"><inputEntry><text>false</text></inputEntry><outputEntry><text>"minor"</text></outputEntry></rule>
             </decisionTable>
           </decision>"##,
    ))
    .unwrap();
    let r = drg
        .evaluate("label", &vars(&[("Age", Value::int(17))]), 0, "UTC")
        .unwrap();
    assert_eq!(feel::to_json(&r.output), json!("minor"));
    let records: Vec<_> = r.decisions.iter().map(|d| d.to_json()).collect();
    assert_eq!(
        records,
        vec![
            json!({
                "decisionId": "adult", "decisionName": "Is Adult",
                "decisionType": "LITERAL_EXPRESSION", "decisionOutput": false,
                "evaluatedInputs": [], "matchedRules": [],
            }),
            json!({
                "decisionId": "label", "decisionName": "Label",
                "decisionType": "DECISION_TABLE", "decisionOutput": "minor",
                "evaluatedInputs": [{"inputId": "in_adult", "inputName": "Adult?", "inputValue": false}],
                "matchedRules": [{"ruleId": "rule_no", "ruleIndex": 2, "evaluatedOutputs": [
                    {"outputId": "out_label", "outputName": "label", "outputValue": "minor"}]}],
            }),
        ]
    );
}

#[test]
fn hit_policies_shape_the_result_as_camunda_does() {
    let rules = [(">= 0", "\"low\""), (">= 10", "\"high\""), ("-", "\"any\"")];
    let unique = table(r#"hitPolicy="UNIQUE""#, "", &rules[..2]);
    assert_eq!(eval(&unique, 5).unwrap(), r#""low""#);
    let err = eval(&unique, 15).unwrap_err();
    assert!(
        err.starts_with("Expected to evaluate decision 'd', but multiple values aren't allowed for UNIQUE hit policy"),
        "{err}"
    );
    assert_eq!(eval(&unique, -1).unwrap(), "null");

    let first = table(r#"hitPolicy="FIRST""#, "", &rules);
    assert_eq!(eval(&first, 15).unwrap(), r#""low""#);
    let rule_order = table(r#"hitPolicy="RULE ORDER""#, "", &rules);
    assert_eq!(eval(&rule_order, 15).unwrap(), r#"["low","high","any"]"#);
    assert_eq!(eval(&rule_order, -1).unwrap(), r#"["any"]"#);
    let priority = table(r#"hitPolicy="PRIORITY""#, r#""high","low","any""#, &rules);
    assert_eq!(eval(&priority, 15).unwrap(), r#""high""#);
    let output_order = table(
        r#"hitPolicy="OUTPUT ORDER""#,
        r#""any","high","low""#,
        &rules,
    );
    assert_eq!(eval(&output_order, 15).unwrap(), r#"["any","high","low"]"#);
    let any = table(r#"hitPolicy="ANY""#, "", &[(">= 0", "1"), (">= 10", "2")]);
    assert!(eval(&any, 15).unwrap_err().contains("ANY hit policy"));

    let numbers = [(">= 0", "1"), (">= 10", "2"), (">= 10", "2")];
    let sum = table(r#"hitPolicy="COLLECT" aggregation="SUM""#, "", &numbers);
    assert_eq!(eval(&sum, 15).unwrap(), "5");
    assert_eq!(eval(&sum, -1).unwrap(), "null");
    let count = table(r#"hitPolicy="COLLECT" aggregation="COUNT""#, "", &numbers);
    assert_eq!(eval(&count, 15).unwrap(), "2");
    assert_eq!(eval(&count, -1).unwrap(), "0");
    let max = table(r#"hitPolicy="COLLECT" aggregation="MAX""#, "", &numbers);
    assert_eq!(eval(&max, 15).unwrap(), "2");
    let collect = table(r#"hitPolicy="COLLECT""#, "", &numbers);
    assert_eq!(eval(&collect, 15).unwrap(), "[1,2,2]");
    assert_eq!(eval(&collect, -1).unwrap(), "[]");
}

#[test]
fn several_outputs_make_a_context_and_defaults_apply_when_nothing_matches() {
    let drg = Drg::parse(&model(
        r#"<decision id="d" name="D"><decisionTable>
             <input id="i"><inputExpression><text>x</text></inputExpression></input>
             <output id="o1" name="a"><defaultOutputEntry><text>"none"</text></defaultOutputEntry></output>
             <output id="o2" name="b"/>
             <rule id="r1"><inputEntry><text>1</text></inputEntry>
               <outputEntry><text>"one"</text></outputEntry><outputEntry><text>x * 10</text></outputEntry></rule>
           </decisionTable></decision>"#,
    ))
    .unwrap();
    let out = |x: i64| {
        let r = drg
            .evaluate("d", &vars(&[("x", Value::int(x))]), 0, "UTC")
            .unwrap();
        feel::to_json(&r.output)
    };
    assert_eq!(out(1), json!({"a": "one", "b": 10}));
    assert_eq!(out(2), json!({"a": "none", "b": null}));
}

#[test]
fn business_knowledge_models_are_functions_and_their_recursion_is_bounded() {
    let drg = Drg::parse(&model(
        r##"<businessKnowledgeModel id="fact" name="factorial">
             <encapsulatedLogic><formalParameter name="n" typeRef="number"/>
               <literalExpression><text>if n &lt;= 1 then 1 else n * factorial(n - 1)</text></literalExpression>
             </encapsulatedLogic></businessKnowledgeModel>
           <decision id="d" name="D">
             <knowledgeRequirement><requiredKnowledge href="#fact"/></knowledgeRequirement>
             <literalExpression><text>factorial(k)</text></literalExpression>
           </decision>"##,
    ))
    .unwrap();
    // The deepest evaluation the depth budget allows fits a 2 MiB thread
    // (Rust's default for spawned threads), even in a test build.
    let result = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let ok = drg.evaluate("d", &vars(&[("k", Value::int(10))]), 0, "UTC");
            let deep = drg.evaluate("d", &vars(&[("k", Value::int(100_000))]), 0, "UTC");
            (
                ok.map(|r| r.output.to_string()),
                deep.map(|r| r.output.to_string()),
            )
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(result.0.unwrap(), "3628800");
    let err = result.1.unwrap_err();
    assert!(err.message.contains("deeper than"), "{}", err.message);
    assert_eq!(&*err.decision_id, "d");
}

#[test]
fn parse_errors_name_the_element_and_the_text() {
    let bad_feel = model(
        r#"<decision id="d1" name="D1"><literalExpression><text>1 +* 2</text></literalExpression></decision>"#,
    );
    match Drg::parse(&bad_feel) {
        Err(ParseError::Feel {
            element,
            expression,
            ..
        }) => {
            assert_eq!(element, "d1");
            assert_eq!(expression, "1 +* 2");
        }
        other => panic!("expected a FEEL error, got {other:?}"),
    }
    // Leniently, only that decision fails.
    let (drg, errors) = Drg::parse_lenient(&bad_feel).unwrap();
    assert_eq!(errors.len(), 1);
    let f = drg.evaluate("d1", &Entries::new(), 0, "UTC").unwrap_err();
    assert!(f.message.starts_with(
        "Expected to evaluate decision 'd1', but failed to parse FEEL expression '1 +* 2'"
    ));

    let unknown = model(
        r##"<decision id="d1" name="D1"><informationRequirement><requiredDecision href="#nope"/></informationRequirement></decision>"##,
    );
    assert!(matches!(
        Drg::parse(&unknown),
        Err(ParseError::UnknownReference { element, href }) if element == "d1" && href == "#nope"
    ));
    let cycle = model(
        r##"<decision id="a" name="A"><informationRequirement><requiredDecision href="#b"/></informationRequirement></decision>
           <decision id="b" name="B"><informationRequirement><requiredDecision href="#a"/></informationRequirement></decision>"##,
    );
    assert_eq!(
        Drg::parse(&cycle).unwrap_err(),
        ParseError::Cycle("a -> b -> a".into())
    );
    let not_dmn = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"/>"#;
    assert!(matches!(
        Drg::parse(not_dmn),
        Err(ParseError::NotDmn { .. })
    ));
}

#[test]
fn deep_documents_and_long_requirement_chains_are_refused_without_recursion() {
    let mut deep = format!(r#"<definitions xmlns="{NS}">"#);
    for _ in 0..5_000 {
        deep.push_str("<context><contextEntry>");
    }
    assert!(matches!(
        Drg::parse(&deep),
        Err(ParseError::TooDeep { limit, .. }) if limit == dmn::xml_depth::MAX_XML_DEPTH
    ));

    let mut chain = String::new();
    for i in 0..10_000 {
        chain.push_str(&format!(r##"<decision id="d{i}" name="D{i}">"##));
        if i > 0 {
            chain.push_str(&format!(
                r##"<informationRequirement><requiredDecision href="#d{}"/></informationRequirement>"##,
                i - 1
            ));
        }
        chain.push_str("<literalExpression><text>1</text></literalExpression></decision>");
    }
    assert!(matches!(
        Drg::parse(&model(&chain)),
        Err(ParseError::ChainTooLong { limit, .. }) if limit == dmn::MAX_REQUIREMENT_DEPTH
    ));
}

#[test]
fn unknown_decisions_and_zones_fail_with_zeebe_texts() {
    let drg = table(r#"hitPolicy="FIRST""#, "", &[("-", "1")]);
    let f = drg
        .evaluate("missing", &Entries::new(), 0, "UTC")
        .unwrap_err();
    assert_eq!(
        f.message,
        "Expected to evaluate decision 'missing', but no decision found for id 'missing'"
    );
    let f = drg
        .evaluate("d", &Entries::new(), 0, "Mars/Olympus")
        .unwrap_err();
    assert!(f.message.contains("unknown time zone"), "{}", f.message);
}

#[test]
fn inputs_are_conformed_to_their_types() {
    let drg = Drg::parse(&model(
        r##"<itemDefinition name="tScore"><typeRef>number</typeRef>
             <allowedValues><text>[0..100]</text></allowedValues></itemDefinition>
           <inputData id="i" name="Score"><variable name="Score" typeRef="tScore"/></inputData>
           <decision id="d" name="D"><informationRequirement><requiredInput href="#i"/></informationRequirement>
             <literalExpression><text>Score</text></literalExpression></decision>"##,
    ))
    .unwrap();
    let out = |v: Value| {
        drg.evaluate("d", &vars(&[("Score", v)]), 0, "UTC")
            .unwrap()
            .output
            .to_string()
    };
    assert_eq!(out(Value::int(50)), "50");
    assert_eq!(out(Value::list(vec![Value::int(7)])), "7");
    assert_eq!(out(Value::int(500)), "null");
    assert_eq!(out(Value::string("50")), "null");
}
