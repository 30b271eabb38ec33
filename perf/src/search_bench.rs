//! `waggle-perf search`: search latency of secondary storage with a large
//! history, against a trivial query on the same connection pool.
//!
//! 1. A database (a throwaway PostgreSQL from Debian's package, or SQLite
//!    in a temporary directory, or `--url`) gets `--instances` finished
//!    instances of a start → service task → end process, written through
//!    the exporter's own code path (`Store::write`, the multi-row upserts):
//!    per instance the process and task element instances, a job created
//!    and completed, and two variables, spread over `DEFINITIONS` process
//!    definitions; every `INCIDENT_EVERY`th instance stays active on an
//!    incident instead.
//! 2. Each query kind runs `--queries` times with random keys and
//!    definitions, one at a time, as the REST handlers run them
//!    (`SearchRequest::parse`, `Store::search` or `Store::get`).
//!
//! With `--analyze`, `ANALYZE` runs between the fill and the queries.
//!
//! Reported: the fill rate, and per query kind p50, p99 and max, and p99
//! as a ratio to the baseline, `SELECT 1` on the same pool (the round trip
//! every query pays).

use std::time::{Duration, Instant};

use anyhow::Context;
use engine::{
    BpmnElementType, BpmnEventType, ErrorType, IncidentRecord, Intent, JobRecord,
    ProcessInstanceRecord, ProcessMetadata, ProcessRecord, Record, RecordType, RecordValue,
    VariableRecord,
};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::sync::Arc;
use store::resources::{ELEMENT_INSTANCES, INCIDENTS, JOBS, PROCESS_INSTANCES, VARIABLES};
use store::{ExportedEntry, SearchRequest, Store};

#[path = "../../store/tests/support/postgres.rs"]
pub(crate) mod postgres;

/// Process definitions the instances are spread over.
const DEFINITIONS: i64 = 10;
/// One instance in this many waits on an incident.
const INCIDENT_EVERY: i64 = 100;
/// Instances per `Store::write` (one transaction).
const INSTANCES_PER_WRITE: i64 = 2_000;
/// Keys of instance `i` start at `KEY_BASE + i * KEYS_PER_INSTANCE`.
const KEY_BASE: i64 = 2_251_799_813_685_248;
const KEYS_PER_INSTANCE: i64 = 8;
/// Largest history one run accepts.
const MAX_INSTANCES: u64 = 20_000_000;

/// Command line of `waggle-perf search`.
#[derive(clap::Args)]
pub struct Args {
    /// Finished instances written before measuring.
    #[arg(long, default_value_t = 1_000_000)]
    instances: u64,
    /// Queries per kind.
    #[arg(long, default_value_t = 300)]
    queries: u32,
    /// `postgresql` (a throwaway server) or `sqlite` (a temporary file).
    #[arg(long, default_value = "postgresql")]
    database: String,
    /// An existing database instead (`postgres://...` or `sqlite:...`).
    #[arg(long)]
    url: Option<String>,
    /// Run `ANALYZE` after the fill (what autoanalyze would do later), so
    /// that the planner knows the tables' sizes.
    #[arg(long)]
    analyze: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=MAX_INSTANCES).contains(&args.instances),
        "--instances must be between 1 and {MAX_INSTANCES}"
    );
    anyhow::ensure!(args.queries > 0, "--queries must be at least 1");
    let dir = tempfile::tempdir()?;
    let mut server = None;
    let url = match (&args.url, args.database.as_str()) {
        (Some(url), _) => url.clone(),
        (None, "postgresql") => {
            let pg = postgres::Postgres::start();
            let url = pg.url.clone();
            server = Some(pg);
            url
        }
        (None, "sqlite") => format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("secondary.db").display()
        ),
        (None, other) => anyhow::bail!("--database must be postgresql or sqlite, got '{other}'"),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(measure(&url, &args));
    drop(server);
    result
}

async fn measure(url: &str, args: &Args) -> anyhow::Result<()> {
    let store = Store::open(url, 4).with_context(|| format!("opening {url}"))?;
    store.migrate().await?;
    println!(
        "search: {} on {}, {} finished instances",
        args.database,
        url.split('@').next_back().unwrap_or(url),
        args.instances
    );
    let start = Instant::now();
    let n = args.instances as i64;
    let definitions: Vec<Record> = (0..DEFINITIONS).map(definition).collect();
    store
        .write(
            1,
            &[ExportedEntry {
                index: 1,
                records: &definitions,
            }],
        )
        .await?;
    let mut first = 0;
    while first < n {
        let last = (first + INSTANCES_PER_WRITE).min(n);
        let logs: Vec<Vec<Record>> = (first..last).map(instance_records).collect();
        let entries: Vec<ExportedEntry<'_>> = logs
            .iter()
            .zip(first..)
            .map(|(records, i)| ExportedEntry {
                index: 2 + i as u64,
                records,
            })
            .collect();
        store.write(1, &entries).await?;
        first = last;
    }
    let fill = start.elapsed();
    println!(
        "  filled in {:.1} s ({:.0} instances/s, {:.0} records/s)",
        fill.as_secs_f64(),
        n as f64 / fill.as_secs_f64(),
        (n * RECORDS_PER_INSTANCE) as f64 / fill.as_secs_f64()
    );

    if args.analyze {
        let t = Instant::now();
        store.analyze().await?;
        println!("  ANALYZE in {:.1} s", t.elapsed().as_secs_f64());
    }
    let baseline = time_queries(args.queries, |_| async { store.ping().await.map(|_| ()) }).await?;
    let baseline_p99 = baseline.value_at_quantile(0.99).max(1);
    println!(
        "  {:<44} p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
        "baseline: SELECT 1",
        ms(baseline.value_at_quantile(0.5)),
        ms(baseline.value_at_quantile(0.99)),
        ms(baseline.max())
    );
    type Query = (&'static str, &'static store::Resource, fn(i64) -> Value);
    let kinds: [Query; 7] = [
        (
            "instances of a definition, COMPLETED, newest 50",
            &PROCESS_INSTANCES,
            |r| {
                json!({"filter": {"processDefinitionId": format!("order-{}", r % DEFINITIONS),
                   "state": "COMPLETED"},
                   "sort": [{"field": "startDate", "order": "DESC"}], "page": {"limit": 50}})
            },
        ),
        (
            "the same, 50 after the first 5,000",
            &PROCESS_INSTANCES,
            |r| {
                json!({"filter": {"processDefinitionId": format!("order-{}", r % DEFINITIONS),
                   "state": "COMPLETED"},
                   "sort": [{"field": "startDate", "order": "DESC"}],
                   "page": {"from": 5_000, "limit": 50}})
            },
        ),
        (
            "instances with an incident, 50",
            &PROCESS_INSTANCES,
            |_| json!({"filter": {"hasIncident": true}, "page": {"limit": 50}}),
        ),
        (
            "element instances of an instance",
            &ELEMENT_INSTANCES,
            |r| json!({"filter": {"processInstanceKey": instance_key(r).to_string()}}),
        ),
        (
            "variables of an instance",
            &VARIABLES,
            |r| json!({"filter": {"processInstanceKey": instance_key(r).to_string()}}),
        ),
        (
            "active incidents, 50",
            &INCIDENTS,
            |_| json!({"filter": {"state": "ACTIVE"}, "page": {"limit": 50}}),
        ),
        ("completed jobs of a type, 50", &JOBS, |r| {
            json!({"filter": {"type": format!("pay-{}", r % DEFINITIONS), "state": "COMPLETED"},
                   "page": {"limit": 50}})
        }),
    ];
    let mut worst_p99 = 0;
    let by_key = time_queries(args.queries, |r| {
        let store = &store;
        async move {
            let key = instance_key(r % n);
            match store.get(&PROCESS_INSTANCES, key).await? {
                Some(_) => Ok(()),
                None => Err(store::StoreError::BadRequest(format!(
                    "instance {key} missing"
                ))),
            }
        }
    })
    .await?;
    report("instance by key (GET)", &by_key, baseline_p99);
    worst_p99 = worst_p99.max(by_key.value_at_quantile(0.99));
    for (name, resource, body) in kinds {
        let h = time_queries(args.queries, |r| {
            let store = &store;
            let request = SearchRequest::parse(resource, &body(r % n));
            async move {
                let result = store.search(&request?).await?;
                if result.items.is_empty() {
                    return Err(store::StoreError::BadRequest(format!("{name}: no items")));
                }
                Ok(())
            }
        })
        .await?;
        report(name, &h, baseline_p99);
        worst_p99 = worst_p99.max(h.value_at_quantile(0.99));
    }
    println!(
        "  worst p99 {:.2} ms, {:.1} x the baseline p99",
        ms(worst_p99),
        worst_p99 as f64 / baseline_p99 as f64
    );
    store.close().await;
    Ok(())
}

fn report(name: &str, h: &Histogram<u64>, baseline_p99: u64) {
    println!(
        "  {:<44} p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  p99/baseline {:>6.1}",
        name,
        ms(h.value_at_quantile(0.5)),
        ms(h.value_at_quantile(0.99)),
        ms(h.max()),
        h.value_at_quantile(0.99) as f64 / baseline_p99 as f64
    );
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Runs `query(random)` `count` times, one after the other; microseconds.
async fn time_queries<F, Fut>(count: u32, mut query: F) -> anyhow::Result<Histogram<u64>>
where
    F: FnMut(i64) -> Fut,
    Fut: std::future::Future<Output = Result<(), store::StoreError>>,
{
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for _ in 0..count {
        let r = fastrand::i64(0..i64::MAX);
        let t = Instant::now();
        query(r).await?;
        h.record(
            t.elapsed()
                .max(Duration::from_micros(1))
                .as_micros()
                .min(60_000_000) as u64,
        )?;
    }
    Ok(h)
}

fn instance_key(i: i64) -> i64 {
    KEY_BASE + i * KEYS_PER_INSTANCE
}

fn definition_key(d: i64) -> i64 {
    KEY_BASE - 1 - d
}

fn event(key: i64, intent: Intent, time_ms: i64, value: RecordValue) -> Record {
    let mut r = Record::command(key, intent, value, None);
    r.record_type = RecordType::Event;
    r.timestamp_ms = time_ms;
    r
}

fn definition(d: i64) -> Record {
    let id = format!("order-{d}");
    let xml = format!(
        r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"><process id="{id}" name="Order {d}"/></definitions>"#
    );
    event(
        definition_key(d),
        Intent::Created,
        1_000,
        RecordValue::Process(ProcessRecord {
            metadata: ProcessMetadata {
                bpmn_process_id: Arc::from(id.as_str()),
                version: 1,
                process_definition_key: definition_key(d),
                resource_name: format!("{id}.bpmn"),
                checksum: d as u64,
                duplicate: false,
            },
            resource: Arc::from(xml.as_bytes()),
        }),
    )
}

/// Records per finished instance written by [`instance_records`].
const RECORDS_PER_INSTANCE: i64 = 8;

/// The exported events of instance `i`: finished, or waiting on an
/// incident (every `INCIDENT_EVERY`th).
fn instance_records(i: i64) -> Vec<Record> {
    let d = i % DEFINITIONS;
    let process: Arc<str> = Arc::from(format!("order-{d}").as_str());
    let key = instance_key(i);
    let (task, job, v1, v2, incident) = (key + 1, key + 2, key + 3, key + 4, key + 5);
    let t = 1_600_000_000_000 + i * 10;
    let element = |k: i64, id: &str, kind: BpmnElementType, intent: Intent, at: i64| {
        event(
            k,
            intent,
            at,
            RecordValue::ProcessInstance(ProcessInstanceRecord {
                bpmn_process_id: process.clone(),
                version: 1,
                process_definition_key: definition_key(d),
                process_instance_key: key,
                element_id: Arc::from(id),
                flow_scope_key: if k == key { -1 } else { key },
                bpmn_element_type: kind,
                bpmn_event_type: BpmnEventType::None,
                parent_process_instance_key: -1,
                parent_element_instance_key: -1,
            }),
        )
    };
    let job_event = |intent: Intent, retries: i32, at: i64| {
        let mut j = JobRecord::empty();
        j.job_type = Arc::from(format!("pay-{d}").as_str());
        j.worker = "perf".into();
        j.retries = retries;
        j.element_id = Arc::from("task");
        j.element_instance_key = task;
        j.process_instance_key = key;
        j.bpmn_process_id = process.clone();
        j.process_definition_version = 1;
        j.process_definition_key = definition_key(d);
        event(job, intent, at, RecordValue::Job(Box::new(j)))
    };
    let variable = |k: i64, name: &str, value: String| {
        event(
            k,
            Intent::Created,
            t,
            RecordValue::Variable(VariableRecord {
                name: name.into(),
                value,
                scope_key: key,
                process_instance_key: key,
                process_definition_key: definition_key(d),
                bpmn_process_id: process.clone(),
            }),
        )
    };
    use BpmnElementType::{Process, ServiceTask};
    let mut records = vec![
        element(key, &process, Process, Intent::ElementActivating, t),
        variable(v1, "amount", (i % 1000).to_string()),
        variable(v2, "customer", format!("\"c-{}\"", i % 5000)),
        element(task, "task", ServiceTask, Intent::ElementActivating, t),
        job_event(Intent::Created, 3, t),
    ];
    if i % INCIDENT_EVERY == INCIDENT_EVERY - 1 {
        records.push(job_event(Intent::Failed, 0, t + 5));
        records.push(event(
            incident,
            Intent::Created,
            t + 5,
            RecordValue::Incident(IncidentRecord {
                error_type: ErrorType::JobNoRetries,
                error_message: "no retries left".into(),
                bpmn_process_id: process.clone(),
                process_definition_key: definition_key(d),
                process_instance_key: key,
                element_id: Arc::from("task"),
                element_instance_key: task,
                job_key: job,
                variable_scope_key: task,
            }),
        ));
    } else {
        records.push(job_event(Intent::Completed, 3, t + 5));
        records.push(element(
            task,
            "task",
            ServiceTask,
            Intent::ElementCompleted,
            t + 5,
        ));
        records.push(element(
            key,
            &process,
            Process,
            Intent::ElementCompleted,
            t + 6,
        ));
    }
    records
}
