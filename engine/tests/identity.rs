//! Users: created, updated and deleted on the deployment partition, every
//! change distributed to the other partitions once, kept across snapshots;
//! a snapshot without users keeps the layout of the release before.

mod common;
use ::engine::engine::{SNAPSHOT_FORMAT_VERSION, SNAPSHOT_FORMAT_WITHOUT_IDENTITY};
use ::engine::identity::UserRecord;
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
    assert_eq!(bytes[0], SNAPSHOT_FORMAT_VERSION);
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

fn role(intent: Intent, role_id: &str, entity: Option<(&str, &str)>) -> Record {
    let (entity_type, entity_id) = entity.unwrap_or(("", ""));
    Record::command(
        NO_KEY,
        intent,
        RecordValue::Role(::engine::access::RoleRecord {
            role_key: NO_KEY,
            role_id: role_id.into(),
            name: format!("{role_id} role"),
            description: String::new(),
            entity_type: entity_type.into(),
            entity_id: entity_id.into(),
        }),
        None,
    )
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
            identity.allows_all("USER", "demo", "RESOURCE", "CREATE"),
            "partition {p}"
        );
        assert!(!identity.allows_all("USER", "demo", "RESOURCE", "READ"));
        assert!(!identity.allows_all("USER", "other", "RESOURCE", "CREATE"));
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
    assert!(!c.partition(1).engine.state().identity.allows_all(
        "USER",
        "demo",
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
