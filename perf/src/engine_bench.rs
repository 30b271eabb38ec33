//! `waggle-perf engine`: one_task instances per second of the engine alone, on
//! one core, with no I/O; and bytes of engine state per instance waiting at a
//! service task.
//!
//! Workload per instance: CreateProcessInstance with a ~540 B variable
//! document (15 variables, like Zeebe's `typical_payload.json`), activation in
//! batches, CompleteJob, and the instance runs to its end event; then the same
//! with FEEL on the path (mappings and a gateway condition), giving the cost
//! of one expression. Baseline in
//! the same run: parsing and re-serialising the same payload with serde_json,
//! once per instance (the least work any engine must do with the payload).

use ::engine::*;
use std::time::Instant;

/// Most instances one run may create.
const MAX_INSTANCES: usize = 5_000_000;

/// Options of this subcommand.
#[derive(clap::Args)]
pub struct Args {
    /// Instances to run through create → activate → complete → end.
    #[arg(long, default_value_t = 200_000)]
    instances: usize,
    /// Jobs per activation batch.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Instances left waiting at the task for the state-size measurement.
    #[arg(long, default_value_t = 50_000)]
    waiting: usize,
    /// Run only the one_task loop and print its throughput (for a profiler:
    /// under `valgrind --tool=callgrind`, the difference of two runs with
    /// different `--instances` is the instructions of that many instances).
    #[arg(long)]
    one_task_only: bool,
}

const ONE_TASK: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d">
<bpmn:process id="benchmark" isExecutable="true">
<bpmn:startEvent id="start"/>
<bpmn:serviceTask id="task"><bpmn:extensionElements><zeebe:taskDefinition type="benchmark-task"/></bpmn:extensionElements></bpmn:serviceTask>
<bpmn:endEvent id="end"/>
<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="task"/>
<bpmn:sequenceFlow id="f2" sourceRef="task" targetRef="end"/>
</bpmn:process></bpmn:definitions>"#;

/// one_task with FEEL on the path: two input mappings, an output mapping and
/// an exclusive gateway whose condition compares two variables.
const ONE_TASK_FEEL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d">
<bpmn:process id="benchmark" isExecutable="true">
<bpmn:startEvent id="start"/>
<bpmn:serviceTask id="task"><bpmn:extensionElements><zeebe:taskDefinition type="benchmark-task"/><zeebe:ioMapping><zeebe:input source="=amount * 2" target="doubled"/><zeebe:input source="=shippingAddress.city" target="city"/><zeebe:output source="=done" target="done"/></zeebe:ioMapping></bpmn:extensionElements></bpmn:serviceTask>
<bpmn:exclusiveGateway id="gw" default="f4"/>
<bpmn:endEvent id="big"/><bpmn:endEvent id="small"/>
<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="task"/>
<bpmn:sequenceFlow id="f2" sourceRef="task" targetRef="gw"/>
<bpmn:sequenceFlow id="f3" sourceRef="gw" targetRef="big"><bpmn:conditionExpression>=amount &gt; 1000 and status = "NEW"</bpmn:conditionExpression></bpmn:sequenceFlow>
<bpmn:sequenceFlow id="f4" sourceRef="gw" targetRef="small"/>
</bpmn:process></bpmn:definitions>"#;
/// FEEL expressions evaluated per instance of [`ONE_TASK_FEEL`].
const FEEL_EXPRESSIONS_PER_INSTANCE: f64 = 4.0;

const PAYLOAD: &str = r#"{"customerId":"C-1029384756","orderId":"O-5647382910","amount":1234.56,"currency":"EUR","status":"NEW","priority":3,"express":true,"items":[{"sku":"A-100","qty":2},{"sku":"B-200","qty":1}],"shippingAddress":{"street":"Main Street 1","city":"Berlin","zip":"10115"},"email":"customer@example.com","phone":"+49 30 1234567","note":"leave at the door","createdBy":"web-shop","channel":"online","region":"EU-CENTRAL"}"#;

struct Driver {
    engine: Engine,
    position: i64,
    now_ms: i64,
    /// Records written by the last command.
    records: usize,
}

impl Driver {
    /// Processes `cmd` as the broker does: its records are taken (counted
    /// here, appended to the log there) and their vector handed back.
    fn run(&mut self, mut cmd: Record) -> Processed {
        self.position += 1;
        cmd.position = self.position;
        cmd.timestamp_ms = self.now_ms;
        let mut out = self.engine.process(&cmd);
        self.records = out.records.len();
        self.position += self.records as i64;
        self.engine.recycle(std::mem::take(&mut out.records));
        out
    }

    fn create(&mut self) {
        let out = self.run(Record::command(
            NO_KEY,
            Intent::Create,
            RecordValue::ProcessInstanceCreation(ProcessInstanceCreationRecord {
                bpmn_process_id: "benchmark".into(),
                version: -1,
                process_definition_key: NO_KEY,
                process_instance_key: NO_KEY,
                variables: PAYLOAD.into(),
                fetch_variables: vec![],
                await_result: false,
                start_instructions: vec![],
            }),
            Some(1),
        ));
        assert!(matches!(
            out.responses[0].1,
            Ok(ResponseValue::ProcessInstanceCreated { .. })
        ));
    }

    fn activate(&mut self, max: usize) -> Vec<i64> {
        let out = self.run(Record::command(
            NO_KEY,
            Intent::Activate,
            RecordValue::JobBatch(JobBatchRecord {
                job_type: "benchmark-task".into(),
                worker: "bench".into(),
                timeout_ms: 60_000,
                max_jobs_to_activate: max as i32,
                fetch_variables: vec![],
                job_keys: vec![],
                jobs: vec![],
                truncated: false,
            }),
            Some(2),
        ));
        match out.responses.into_iter().next() {
            Some((_, Ok(ResponseValue::JobBatch { jobs, .. }))) => {
                jobs.into_iter().map(|j| j.key).collect()
            }
            other => panic!("activation failed: {other:?}"),
        }
    }

    fn complete(&mut self, key: i64) -> usize {
        let mut value = JobRecord::empty();
        value.variables = r#"{"done":true}"#.into();
        let out = self.run(Record::command(
            key,
            Intent::Complete,
            RecordValue::Job(Box::new(value)),
            Some(3),
        ));
        assert!(out.responses[0].1.is_ok(), "complete failed");
        self.records
    }
}

fn new_driver() -> anyhow::Result<Driver> {
    driver_for(ONE_TASK)
}

fn driver_for(model: &str) -> anyhow::Result<Driver> {
    let mut d = Driver {
        engine: Engine::new(1, 1),
        position: 0,
        now_ms: 1_700_000_000_000,
        records: 0,
    };
    let out = d.run(Record::command(
        NO_KEY,
        Intent::Create,
        RecordValue::Deployment(DeploymentRecord {
            resources: vec![DeploymentResource {
                name: "one_task.bpmn".into(),
                content: model.as_bytes().to_vec(),
            }],
            processes: vec![],
            decision_requirements: Vec::new(),
            decisions: Vec::new(),
            forms: Vec::new(),
        }),
        Some(0),
    ));
    match &out.responses[0].1 {
        Ok(_) => Ok(d),
        Err(e) => anyhow::bail!("deploying one_task failed: {}", e.reason),
    }
}

/// CPU time of this thread: the engine runs on one core, and on a shared
/// machine wall time also counts the time other processes had the core.
fn thread_cpu_s() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call's duration.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "CLOCK_THREAD_CPUTIME_ID is available on Linux");
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Runs `instances` of `model` through create → activate → complete → end:
/// (instances per wall second, per CPU second, records written).
fn throughput(model: &str, instances: usize, batch: usize) -> anyhow::Result<(f64, f64, usize)> {
    let mut d = driver_for(model)?;
    let mut records = 0usize;
    let started = Instant::now();
    let cpu_started = thread_cpu_s();
    let mut done = 0;
    while done < instances {
        let n = batch.min(instances - done);
        for _ in 0..n {
            d.create();
        }
        let keys = d.activate(n);
        assert_eq!(keys.len(), n, "every created job is activatable");
        for k in keys {
            records += d.complete(k);
        }
        done += n;
    }
    let per_s = instances as f64 / started.elapsed().as_secs_f64();
    let per_cpu_s = instances as f64 / (thread_cpu_s() - cpu_started);
    anyhow::ensure!(
        d.engine.state().instances.is_empty(),
        "not every instance of the benchmark completed"
    );
    Ok((per_s, per_cpu_s, records))
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.instances >= 1 && args.instances <= MAX_INSTANCES,
        "--instances must be in 1..={MAX_INSTANCES}"
    );
    anyhow::ensure!(
        args.waiting >= 1 && args.waiting <= MAX_INSTANCES,
        "--waiting must be in 1..={MAX_INSTANCES}"
    );
    let batch = args.batch.clamp(1, ::engine::jobs::MAX_JOBS_PER_BATCH);
    if args.one_task_only {
        let (per_s, per_cpu_s, _) = throughput(ONE_TASK, args.instances, batch)?;
        println!("engine one_task: {per_s:.0} instances/s, {per_cpu_s:.0} instances/CPU-s");
        return Ok(());
    }

    // Baseline: parse and re-serialise the payload once per instance.
    let started = Instant::now();
    let cpu_started = thread_cpu_s();
    let mut sink = 0usize;
    for _ in 0..args.instances {
        let v: serde_json::Value = serde_json::from_str(PAYLOAD)?;
        sink += serde_json::to_string(&v)?.len();
    }
    let baseline_s = started.elapsed().as_secs_f64();
    let baseline_per_s = args.instances as f64 / baseline_s;
    let baseline_per_cpu_s = args.instances as f64 / (thread_cpu_s() - cpu_started);
    assert!(sink > 0);

    // Throughput: create, activate in batches, complete, run to the end.
    let (per_s, per_cpu_s, records) = throughput(ONE_TASK, args.instances, batch)?;
    let (_, feel_per_cpu_s, _) = throughput(ONE_TASK_FEEL, args.instances, batch)?;
    let feel_us_per_expression =
        (1.0 / feel_per_cpu_s - 1.0 / per_cpu_s) * 1e6 / FEEL_EXPRESSIONS_PER_INSTANCE;

    // State per waiting instance.
    let mut w = new_driver()?;
    let snapshot_before = w.engine.snapshot().len();
    let rss_before = rss_bytes();
    for _ in 0..args.waiting {
        w.create();
    }
    let rss_after = rss_bytes();
    let snapshot_after = w.engine.snapshot().len();
    let snapshot_per = (snapshot_after - snapshot_before) as f64 / args.waiting as f64;
    let variable_bytes = PAYLOAD.len();

    println!("engine one_task, 1 core, no I/O");
    println!("  instances                 {}", args.instances);
    println!("  activation batch          {batch}");
    println!("  payload                   {variable_bytes} B, 15 variables");
    println!("  instances/s (wall)        {per_s:.0}");
    println!(
        "  instances/CPU-s           {per_cpu_s:.0}  (target >= 200000; Zeebe 3-broker cluster ~300)"
    );
    println!(
        "  with FEEL: instances/CPU-s {feel_per_cpu_s:.0}  (2 input mappings, 1 output mapping, 1 condition)"
    );
    println!("  FEEL cost/expression      {feel_us_per_expression:.2} us");
    println!(
        "  completion records/inst   {:.1}",
        records as f64 / args.instances as f64
    );
    println!(
        "  baseline json round trips/s {baseline_per_s:.0} wall, {baseline_per_cpu_s:.0} per CPU-s"
    );
    println!(
        "  ratio instances/baseline  {:.3}",
        per_cpu_s / baseline_per_cpu_s
    );
    println!("  waiting instances         {}", args.waiting);
    println!("  snapshot bytes/instance   {snapshot_per:.0}  (variable bytes {variable_bytes})");
    if let (Some(a), Some(b)) = (rss_before, rss_after) {
        let rss_per = b.saturating_sub(a) as f64 / args.waiting as f64;
        println!(
            "  resident bytes/instance   {rss_per:.0}  (overhead over variable bytes {:.0}; target <= 2048)",
            rss_per - variable_bytes as f64
        );
    }
    Ok(())
}
