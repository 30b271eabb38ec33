//! Users: created, updated and deleted on the deployment partition, every
//! change distributed to the other partitions once, kept across snapshots;
//! a snapshot without users keeps the layout of the release before.

mod common;
use ::engine::access::Grant;
use ::engine::collectives::{CollectiveRecord, Kind};
use ::engine::engine::{SNAPSHOT_FORMAT_IDENTITY, SNAPSHOT_FORMAT_WITHOUT_IDENTITY};
use ::engine::identity::{Identity, UserRecord};
use ::engine::mapping_rules::MappingRuleRecord;
use ::engine::*;
use common::*;

fn user(intent: Intent, username: &str, name: &str, password: &str) -> Record {
    Record::command(
        NO_KEY,
        intent,
        RecordValue::User(UserRecord {
            user_key: NO_KEY,
            username: username.into(),
            name: name.into(),
            email: format!("{username}@example.com"),
            password: password.into(),
        }),
        None,
    )
}

fn stored(c: &mut Cluster, partition: u32, username: &str) -> Option<UserRecord> {
    c.partition(partition)
        .engine
        .state()
        .identity
        .users
        .get(username)
        .cloned()
}

#[test]
fn a_user_is_created_updated_and_deleted_on_every_partition() {
    let mut c = Cluster::new(3);
    let created = c
        .partition(1)
        .request(user(Intent::Create, "demo", "Demo", "$argon2id$one"))
        .expect("created");
    let ResponseValue::User(created) = created else {
        panic!("answered {created:?}")
    };
    assert!(created.user_key > 0);
    c.deliver();
    for p in 1..=3 {
        let u = stored(&mut c, p, "demo").expect("on every partition");
        assert_eq!(u.password, "$argon2id$one");
        assert_eq!(u.user_key, created.user_key);
    }
    assert_eq!(
        c.partition(1)
            .request(user(Intent::Create, "demo", "Other", "$argon2id$two"))
            .expect_err("a second demo")
            .rejection_type,
        RejectionType::AlreadyExists
    );

    // An update without a password keeps the stored one.
    c.partition(1)
        .request(user(Intent::Update, "demo", "Demo Renamed", ""))
        .expect("updated");
    c.deliver();
    for p in 1..=3 {
        let u = stored(&mut c, p, "demo").unwrap();
        assert_eq!(u.name, "Demo Renamed");
        assert_eq!(u.password, "$argon2id$one");
    }
    c.partition(1)
        .request(user(Intent::Update, "demo", "Demo", "$argon2id$three"))
        .expect("updated");
    c.partition(1)
        .request(user(Intent::Delete, "demo", "", ""))
        .expect("deleted");
    c.deliver();
    for p in 1..=3 {
        assert_eq!(stored(&mut c, p, "demo"), None, "partition {p}");
        assert_eq!(c.partition(p).count(ValueType::User, Intent::Deleted), 1);
    }
    assert_eq!(
        c.partition(1)
            .request(user(Intent::Delete, "demo", "", ""))
            .expect_err("gone")
            .rejection_type,
        RejectionType::NotFound
    );
}

#[test]
fn bad_users_and_other_partitions_are_refused() {
    let mut c = Cluster::new(2);
    for (command, why) in [
        (user(Intent::Create, "", "x", "$h"), "empty username"),
        (user(Intent::Create, "a b", "x", "$h"), "a space"),
        (user(Intent::Create, "new", "x", ""), "no password"),
        (user(Intent::Update, "nobody", "x", ""), "unknown"),
    ] {
        let rejection = c.partition(1).request(command).expect_err(why);
        assert_ne!(rejection.rejection_type, RejectionType::ProcessingError);
    }
    let elsewhere = c
        .partition(2)
        .request(user(Intent::Create, "demo", "Demo", "$h"))
        .expect_err("only on partition 1");
    assert!(
        elsewhere.reason.contains("deployment partition"),
        "{}",
        elsewhere.reason
    );
    assert!(c.partition(1).engine.state().identity.is_empty());
}

#[test]
fn a_distributed_user_change_applies_once_although_sent_twice() {
    let mut c = Cluster::new(2);
    c.partition(1)
        .request(user(Intent::Create, "demo", "Demo", "$h"))
        .unwrap();
    let sent = std::mem::take(&mut c.partition(1).distributions);
    assert_eq!(sent.len(), 1);
    for _ in 0..2 {
        let (target, mut cmd) = sent[0].clone();
        let h = c.partition(target);
        cmd.timestamp_ms = h.now_ms;
        h.submit_as_is(cmd);
    }
    assert_eq!(c.partition(2).count(ValueType::User, Intent::Created), 1);
    assert!(stored(&mut c, 2, "demo").is_some());
}

#[test]
fn users_survive_a_snapshot_and_only_then_change_its_layout() {
    let mut h = Harness::new();
    let empty = h.engine.snapshot();
    assert_eq!(empty[0], SNAPSHOT_FORMAT_WITHOUT_IDENTITY);
    h.request(user(Intent::Create, "demo", "Demo", "$argon2id$one"))
        .unwrap();
    let bytes = h.engine.snapshot();
    assert_eq!(bytes[0], SNAPSHOT_FORMAT_IDENTITY);
    let restored = Engine::restore(&bytes).expect("restores");
    assert_eq!(restored.snapshot(), bytes);
    assert_eq!(restored.fingerprint(), h.engine.fingerprint());
    assert_eq!(
        restored.state().identity.users["demo"].password,
        "$argon2id$one"
    );
    // Once the only user is deleted again, the earlier layout is written.
    h.request(user(Intent::Delete, "demo", "", "")).unwrap();
    assert_eq!(h.engine.snapshot()[0], SNAPSHOT_FORMAT_WITHOUT_IDENTITY);
    let mut truncated = bytes.clone();
    truncated.pop();
    assert!(Engine::restore(&truncated).is_err());
}

fn collective(kind: Kind, intent: Intent, id: &str, entity: Option<(&str, &str)>) -> Record {
    let (entity_type, entity_id) = entity.unwrap_or(("", ""));
    let value = CollectiveRecord {
        key: NO_KEY,
        id: id.into(),
        name: format!("{id} {}", kind.noun()),
        description: String::new(),
        entity_type: entity_type.into(),
        entity_id: entity_id.into(),
    };
    Record::command(NO_KEY, intent, kind.value(value), None)
}

fn role(intent: Intent, role_id: &str, entity: Option<(&str, &str)>) -> Record {
    collective(Kind::Role, intent, role_id, entity)
}

fn rule(intent: Intent, id: &str, claim: (&str, &str)) -> Record {
    let value = MappingRuleRecord {
        mapping_rule_key: NO_KEY,
        mapping_rule_id: id.into(),
        claim_name: claim.0.into(),
        claim_value: claim.1.into(),
        name: id.into(),
    };
    Record::command(NO_KEY, intent, RecordValue::MappingRule(value), None)
}

/// Whether `user` `id` holds `permission` on every `resource_type`.
fn may(
    identity: &Identity,
    (user, id): (&str, &str),
    resource_type: &str,
    permission: &str,
) -> bool {
    identity.allows_all(&identity.owners(user, id, None), resource_type, permission)
}

fn grant(
    owner: (&str, &str),
    resource_type: &str,
    resource_id: &str,
    permissions: &[&str],
) -> Record {
    Record::command(
        NO_KEY,
        Intent::Create,
        RecordValue::Authorization(::engine::access::AuthorizationRecord {
            authorization_key: NO_KEY,
            owner_type: owner.0.into(),
            owner_id: owner.1.into(),
            resource_type: resource_type.into(),
            resource_id: resource_id.into(),
            permission_types: permissions.iter().map(|p| p.to_string()).collect(),
        }),
        None,
    )
}

#[test]
fn roles_and_authorizations_grant_permissions_on_every_partition() {
    let mut c = Cluster::new(2);
    c.partition(1)
        .request(user(Intent::Create, "demo", "Demo", "$h"))
        .unwrap();
    c.partition(1)
        .request(role(Intent::Create, "deployers", None))
        .unwrap();
    c.partition(1)
        .request(role(Intent::AddEntity, "deployers", Some(("USER", "demo"))))
        .unwrap();
    let granted = c
        .partition(1)
        .request(grant(("ROLE", "deployers"), "RESOURCE", "*", &["CREATE"]))
        .unwrap();
    let ResponseValue::IdentityChanged { key } = granted else {
        panic!("answered {granted:?}")
    };
    c.deliver();
    for p in 1..=2 {
        let identity = &c.partition(p).engine.state().identity;
        assert!(
            may(identity, ("USER", "demo"), "RESOURCE", "CREATE"),
            "partition {p}"
        );
        assert!(!may(identity, ("USER", "demo"), "RESOURCE", "READ"));
        assert!(!may(identity, ("USER", "other"), "RESOURCE", "CREATE"));
        assert!(identity.authorizations.contains_key(&key));
    }
    // A grant on one resource is not a grant on all.
    c.partition(1)
        .request(grant(
            ("USER", "demo"),
            "PROCESS_DEFINITION",
            "order",
            &["CREATE_PROCESS_INSTANCE"],
        ))
        .unwrap();
    assert!(!may(
        &c.partition(1).engine.state().identity,
        ("USER", "demo"),
        "PROCESS_DEFINITION",
        "CREATE_PROCESS_INSTANCE"
    ));

    // Deleting the user ends its memberships and authorizations.
    c.partition(1)
        .request(user(Intent::Delete, "demo", "", ""))
        .unwrap();
    c.deliver();
    for p in 1..=2 {
        let identity = &c.partition(p).engine.state().identity;
        assert!(
            identity.roles["deployers"].members.is_empty(),
            "partition {p}"
        );
        assert_eq!(identity.authorizations.len(), 1, "the role's grant stays");
    }
    c.partition(1)
        .request(role(Intent::Delete, "deployers", None))
        .unwrap();
    c.deliver();
    for p in 1..=2 {
        assert!(
            c.partition(p).engine.state().identity.is_empty(),
            "partition {p}"
        );
    }
}

#[test]
fn bad_roles_and_authorizations_are_refused() {
    let mut c = Cluster::new(1);
    c.partition(1)
        .request(role(Intent::Create, "ops", None))
        .unwrap();
    for (command, expected, why) in [
        (
            role(Intent::Create, "ops", None),
            RejectionType::AlreadyExists,
            "twice",
        ),
        (
            role(Intent::Update, "nobody", None),
            RejectionType::NotFound,
            "unknown role",
        ),
        (
            role(Intent::AddEntity, "ops", Some(("USER", "ghost"))),
            RejectionType::NotFound,
            "unknown user",
        ),
        (
            role(Intent::AddEntity, "ops", Some(("PLANET", "x"))),
            RejectionType::InvalidArgument,
            "bad member type",
        ),
        (
            grant(("ROLE", "ops"), "RESOURCE", "*", &["FLY"]),
            RejectionType::InvalidArgument,
            "bad permission",
        ),
        (
            grant(("ROLE", "ops"), "SPACESHIP", "*", &["READ"]),
            RejectionType::InvalidArgument,
            "bad resource type",
        ),
        (
            grant(("ROLE", "nobody"), "RESOURCE", "*", &["READ"]),
            RejectionType::NotFound,
            "unknown owner",
        ),
        (
            grant(("ROLE", "ops"), "RESOURCE", "*", &[]),
            RejectionType::InvalidArgument,
            "no permission",
        ),
    ] {
        let rejection = c.partition(1).request(command).expect_err(why);
        assert_eq!(
            rejection.rejection_type, expected,
            "{why}: {}",
            rejection.reason
        );
    }
    c.partition(1)
        .request(role(Intent::AddEntity, "ops", Some(("CLIENT", "app"))))
        .unwrap();
    let twice = c
        .partition(1)
        .request(role(Intent::AddEntity, "ops", Some(("CLIENT", "app"))))
        .expect_err("a member twice");
    assert_eq!(twice.rejection_type, RejectionType::AlreadyExists);
    let bytes = c.partition(1).engine.snapshot();
    let restored = Engine::restore(&bytes).unwrap();
    assert_eq!(
        restored.state().identity,
        c.partition(1).engine.state().identity
    );
}

#[test]
fn groups_tenants_and_mapping_rules_carry_permissions_and_memberships() {
    let mut c = Cluster::new(2);
    let p1 = |c: &mut Cluster, command: Record| c.partition(1).request(command).unwrap();
    p1(&mut c, user(Intent::Create, "demo", "Demo", "$h"));
    p1(&mut c, collective(Kind::Group, Intent::Create, "ops", None));
    p1(&mut c, role(Intent::Create, "deployers", None));
    p1(
        &mut c,
        collective(Kind::Tenant, Intent::Create, "acme", None),
    );
    p1(
        &mut c,
        rule(Intent::Create, "engineers", ("department", "engineering")),
    );
    p1(
        &mut c,
        grant(("ROLE", "deployers"), "RESOURCE", "*", &["CREATE"]),
    );
    p1(
        &mut c,
        grant(
            ("GROUP", "ops"),
            "PROCESS_DEFINITION",
            "*",
            &["READ_PROCESS_INSTANCE"],
        ),
    );
    let group = |intent, member: (&str, &str)| collective(Kind::Group, intent, "ops", Some(member));
    p1(&mut c, group(Intent::AddEntity, ("USER", "demo")));
    p1(
        &mut c,
        group(Intent::AddEntity, ("MAPPING_RULE", "engineers")),
    );
    p1(
        &mut c,
        role(Intent::AddEntity, "deployers", Some(("GROUP", "ops"))),
    );
    let tenant =
        |member: (&str, &str)| collective(Kind::Tenant, Intent::AddEntity, "acme", Some(member));
    p1(&mut c, tenant(("GROUP", "ops")));
    c.deliver();

    let claims = |value: serde_json::Value| value.as_object().unwrap().clone();
    let engineer = claims(serde_json::json!({"department": ["sales", "engineering"]}));
    let clerk = claims(serde_json::json!({"department": "sales"}));
    for p in 1..=2 {
        let identity = &c.partition(p).engine.state().identity;
        // A member of a group acts as the group and as its roles.
        let demo = identity.owners("USER", "demo", None);
        assert!(
            identity.allows_all(&demo, "RESOURCE", "CREATE"),
            "partition {p}"
        );
        assert!(identity.allows_all(&demo, "PROCESS_DEFINITION", "READ_PROCESS_INSTANCE"));
        assert_eq!(identity.tenants_of(&demo), ["acme"]);
        // A client whose token matches the rule does too; one that does not,
        // not.
        let app = identity.owners("CLIENT", "app", Some(&engineer));
        assert!(identity.allows_all(&app, "RESOURCE", "CREATE"));
        assert_eq!(identity.tenants_of(&app), ["acme"]);
        let other = identity.owners("CLIENT", "app", Some(&clerk));
        assert!(!identity.allows_all(&other, "RESOURCE", "CREATE"));
        assert!(identity.tenants_of(&other).is_empty());
    }

    // Snapshots keep all of it; layout 6 (without groups, tenants and
    // mapping rules) is still read.
    let bytes = c.partition(1).engine.snapshot();
    assert_eq!(bytes[0], SNAPSHOT_FORMAT_IDENTITY);
    let restored = Engine::restore(&bytes).unwrap();
    assert_eq!(
        restored.state().identity,
        c.partition(1).engine.state().identity
    );

    // Deleting the group ends what it gave.
    p1(&mut c, collective(Kind::Group, Intent::Delete, "ops", None));
    c.deliver();
    for p in 1..=2 {
        let identity = &c.partition(p).engine.state().identity;
        let demo = identity.owners("USER", "demo", None);
        assert!(
            !identity.allows_all(&demo, "RESOURCE", "CREATE"),
            "partition {p}"
        );
        assert!(identity.tenants_of(&demo).is_empty());
        assert!(identity.roles["deployers"].members.is_empty());
        assert!(identity.tenants["acme"].members.is_empty());
        assert_eq!(
            identity.authorizations.len(),
            1,
            "the group's grant is gone"
        );
    }
}

#[test]
fn a_layout_6_snapshot_is_read() {
    let mut c = Cluster::new(1);
    c.partition(1)
        .request(user(Intent::Create, "demo", "Demo", "$h"))
        .unwrap();
    c.partition(1)
        .request(role(Intent::Create, "ops", None))
        .unwrap();
    let bytes = c.partition(1).engine.snapshot();
    // Layout 7 is layout 6 followed by three maps, empty here (a zero
    // length each).
    assert_eq!(&bytes[bytes.len() - 3..], [0, 0, 0]);
    let mut v6 = bytes[..bytes.len() - 3].to_vec();
    v6[0] = ::engine::engine::SNAPSHOT_FORMAT_IDENTITY_V6;
    let restored = Engine::restore(&v6).expect("layout 6");
    assert_eq!(
        restored.state().identity,
        c.partition(1).engine.state().identity
    );
    assert_eq!(restored.snapshot(), bytes, "written again as layout 7");
}

#[test]
fn bad_groups_tenants_and_mapping_rules_are_refused() {
    let mut c = Cluster::new(1);
    for ok in [
        collective(Kind::Group, Intent::Create, "ops", None),
        collective(Kind::Tenant, Intent::Create, "acme", None),
        rule(Intent::Create, "engineers", ("department", "engineering")),
    ] {
        c.partition(1).request(ok).unwrap();
    }
    for (command, expected, why) in [
        (
            collective(Kind::Group, Intent::AddEntity, "ops", Some(("ROLE", "x"))),
            RejectionType::InvalidArgument,
            "a role in a group",
        ),
        (
            collective(
                Kind::Tenant,
                Intent::AddEntity,
                "acme",
                Some(("GROUP", "ghosts")),
            ),
            RejectionType::NotFound,
            "an unknown group",
        ),
        (
            collective(Kind::Tenant, Intent::Create, "a/b", None),
            RejectionType::InvalidArgument,
            "a tenant id with a slash",
        ),
        (
            collective(Kind::Tenant, Intent::Create, &"t".repeat(32), None),
            RejectionType::InvalidArgument,
            "a tenant id of 32 characters",
        ),
        (
            rule(Intent::Create, "again", ("department", "engineering")),
            RejectionType::AlreadyExists,
            "a second rule for the same claim",
        ),
        (
            rule(Intent::Create, "empty", ("", "x")),
            RejectionType::InvalidArgument,
            "no claim name",
        ),
        (
            rule(Intent::Update, "nobody", ("a", "b")),
            RejectionType::NotFound,
            "an unknown rule",
        ),
        (
            grant(("MAPPING_RULE", "nobody"), "RESOURCE", "*", &["READ"]),
            RejectionType::NotFound,
            "a grant to an unknown rule",
        ),
    ] {
        let rejection = c.partition(1).request(command).expect_err(why);
        assert_eq!(
            rejection.rejection_type, expected,
            "{why}: {}",
            rejection.reason
        );
    }
    c.partition(1)
        .request(collective(Kind::Tenant, Intent::Create, "<default>", None))
        .expect("the default tenant's id");
    c.partition(1)
        .request(rule(Intent::Update, "engineers", ("team", "core")))
        .expect("a rule changes its claim");
    assert_eq!(
        c.partition(1).engine.state().identity.mapping_rules["engineers"].claim_name,
        "team"
    );
}

#[test]
fn an_authorization_is_updated_in_place() {
    let mut c = Cluster::new(2);
    let granted = c
        .partition(1)
        .request(grant(("CLIENT", "app"), "RESOURCE", "*", &["READ"]))
        .unwrap();
    let ResponseValue::IdentityChanged { key } = granted else {
        panic!("answered {granted:?}")
    };
    let mut update = grant(("CLIENT", "app"), "RESOURCE", "*", &["CREATE"]);
    update.intent = Intent::Update;
    let RecordValue::Authorization(a) = &mut update.value else {
        unreachable!()
    };
    a.authorization_key = key;
    let mut unknown = update.clone();
    c.partition(1).request(update).expect("updated");
    c.deliver();
    for p in 1..=2 {
        let identity = &c.partition(p).engine.state().identity;
        assert_eq!(identity.authorizations[&key].permission_types, ["CREATE"]);
        assert!(may(identity, ("CLIENT", "app"), "RESOURCE", "CREATE"));
        assert!(!may(identity, ("CLIENT", "app"), "RESOURCE", "READ"));
    }
    let RecordValue::Authorization(a) = &mut unknown.value else {
        unreachable!()
    };
    a.authorization_key = key + 1000;
    let rejection = c.partition(1).request(unknown).expect_err("unknown key");
    assert_eq!(rejection.rejection_type, RejectionType::NotFound);
}

#[test]
fn grants_on_single_resources_cover_those_resources_only() {
    let mut c = Cluster::new(1);
    for command in [
        grant(
            ("CLIENT", "app"),
            "PROCESS_DEFINITION",
            "order",
            &["CREATE_PROCESS_INSTANCE"],
        ),
        grant(
            ("CLIENT", "app"),
            "PROCESS_DEFINITION",
            "refund",
            &["CREATE_PROCESS_INSTANCE", "READ_PROCESS_INSTANCE"],
        ),
        grant(
            ("CLIENT", "admin"),
            "PROCESS_DEFINITION",
            "*",
            &["CREATE_PROCESS_INSTANCE"],
        ),
    ] {
        c.partition(1).request(command).unwrap();
    }
    let identity = &c.partition(1).engine.state().identity;
    let app = identity.owners("CLIENT", "app", None);
    let creates = identity.grant(&app, "PROCESS_DEFINITION", "CREATE_PROCESS_INSTANCE");
    assert_eq!(
        creates,
        Grant::Only(["order".to_string(), "refund".to_string()].into())
    );
    assert!(creates.covers("order") && !creates.covers("invoice"));
    assert!(!identity.allows_all(&app, "PROCESS_DEFINITION", "CREATE_PROCESS_INSTANCE"));
    let reads = identity.grant(&app, "PROCESS_DEFINITION", "READ_PROCESS_INSTANCE");
    assert!(reads.covers("refund") && !reads.covers("order"));
    assert_eq!(identity.grant(&app, "RESOURCE", "CREATE"), Grant::Nothing);
    let admin = identity.owners("CLIENT", "admin", None);
    let all = identity.grant(&admin, "PROCESS_DEFINITION", "CREATE_PROCESS_INSTANCE");
    assert_eq!(all, Grant::All);
    assert!(all.covers("anything"));
}
