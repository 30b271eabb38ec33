//! What a load run leaves behind: a percentile table on stdout, one `.hgrm`
//! file per histogram (HdrHistogram's percentile distribution text, values
//! in milliseconds), a JSON summary and two SVG plots (latency by percentile,
//! completions per second), all named `<name>-...` in the output directory.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::load::LoadReport;

/// A run id that differs between runs (the clock's µs).
pub fn run_id() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(1)
}

/// Percentiles of one histogram, in µs.
#[derive(Serialize, Clone, Debug)]
pub struct Latency {
    /// Values recorded.
    pub count: u64,
    /// Mean, µs.
    pub mean_us: f64,
    /// Median, µs.
    pub p50_us: u64,
    /// 90th percentile, µs.
    pub p90_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
    /// 99.9th percentile, µs.
    pub p999_us: u64,
    /// Largest value, µs.
    pub max_us: u64,
}

impl Latency {
    /// Summarises `h`.
    pub fn of(h: &Histogram<u64>) -> Latency {
        Latency {
            count: h.len(),
            mean_us: h.mean(),
            p50_us: h.value_at_quantile(0.50),
            p90_us: h.value_at_quantile(0.90),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
        }
    }
}

/// The JSON summary of one run.
#[derive(Serialize, Clone, Debug)]
pub struct Summary {
    /// Name of the run (scenario and step).
    pub name: String,
    /// Target start rate, instances/s.
    pub rate_per_s: f64,
    /// Sending window, s.
    pub duration_s: f64,
    /// Variables document size, bytes.
    pub payload_bytes: usize,
    /// Workers.
    pub workers: usize,
    /// Jobs per worker.
    pub capacity: usize,
    /// Completion delay, ms.
    pub completion_delay_ms: u64,
    /// `push` or `poll`.
    pub job_mode: crate::load::JobMode,
    /// Instances sent.
    pub sent: u64,
    /// Instances acknowledged.
    pub created: u64,
    /// Jobs of this run that reached a worker.
    pub activated: u64,
    /// Instances completed.
    pub completed: u64,
    /// Creates refused with RESOURCE_EXHAUSTED.
    pub backpressure: u64,
    /// `backpressure / sent`.
    pub backpressure_ratio: f64,
    /// Activations refused with RESOURCE_EXHAUSTED (retried).
    pub job_backpressure: u64,
    /// Errors other than backpressure.
    pub errors: u64,
    /// A few error messages.
    pub error_samples: Vec<String>,
    /// Jobs of earlier runs completed without being counted.
    pub foreign_jobs: u64,
    /// From the start to the last completion, s.
    pub elapsed_s: f64,
    /// Completed instances per second (from the start to the last completion).
    pub throughput_per_s: f64,
    /// Completed instances per second in the steady part of the window
    /// (`LoadReport::steady_per_s`).
    pub steady_per_s: f64,
    /// Completions in each second of the run.
    pub completions_per_s: Vec<u64>,
    /// Create-instance acknowledgement.
    pub create: Latency,
    /// Intended start → job at the worker.
    pub activation: Latency,
    /// Intended start → completion acknowledged.
    pub end_to_end: Latency,
}

impl Summary {
    /// Summarises `report` under `name`.
    pub fn of(name: &str, report: &LoadReport) -> Summary {
        Summary {
            name: name.to_string(),
            rate_per_s: report.shape.rate,
            duration_s: report.shape.duration_s,
            payload_bytes: report.shape.payload_bytes,
            workers: report.shape.workers,
            capacity: report.shape.capacity,
            completion_delay_ms: report.shape.completion_delay_ms,
            job_mode: report.job_mode,
            sent: report.sent,
            created: report.created,
            activated: report.activated,
            completed: report.completed,
            backpressure: report.backpressure,
            backpressure_ratio: report.backpressure_ratio(),
            job_backpressure: report.job_backpressure,
            errors: report.errors(),
            error_samples: report.error_samples.clone(),
            foreign_jobs: report.foreign_jobs,
            elapsed_s: report.elapsed_s,
            throughput_per_s: report.throughput_per_s,
            steady_per_s: report.steady_per_s(),
            completions_per_s: report.completions_per_s.clone(),
            create: Latency::of(&report.create),
            activation: Latency::of(&report.activation),
            end_to_end: Latency::of(&report.end_to_end),
        }
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1_000.0
}

/// Prints the percentile table of `runs` on stdout.
pub fn print_table(runs: &[(&str, &LoadReport)]) {
    println!(
        "{:<28} {:>8} {:>9} {:>7} {:>6} {:>6} {:<11} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "run",
        "rate/s",
        "done/s",
        "done",
        "bp%",
        "errors",
        "latency",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms"
    );
    for (name, report) in runs {
        for (i, (what, h)) in [
            ("create ack", &report.create),
            ("activation", &report.activation),
            ("end to end", &report.end_to_end),
        ]
        .into_iter()
        .enumerate()
        {
            let lead = if i == 0 {
                format!(
                    "{:<28} {:>8.0} {:>9.0} {:>7} {:>6.2} {:>6}",
                    name,
                    report.shape.rate,
                    report.throughput_per_s,
                    report.completed,
                    100.0 * report.backpressure_ratio(),
                    report.errors()
                )
            } else {
                format!(
                    "{:<28} {:>8} {:>9} {:>7} {:>6} {:>6}",
                    "", "", "", "", "", ""
                )
            };
            let l = Latency::of(h);
            println!(
                "{lead} {:<11} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
                what,
                ms(l.p50_us),
                ms(l.p90_us),
                ms(l.p99_us),
                ms(l.p999_us),
                ms(l.max_us)
            );
        }
        for e in &report.error_samples {
            println!("    error: {e}");
        }
    }
}

/// HdrHistogram's percentile distribution text (values in ms).
pub fn hgrm(h: &Histogram<u64>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    if h.is_empty() {
        let _ = writeln!(
            out,
            "#[Mean    =        0.000, StdDeviation   =        0.000]"
        );
        let _ = writeln!(
            out,
            "#[Max     =        0.000, Total count    =            0]"
        );
        return out;
    }
    for v in h.iter_quantiles(5) {
        let q = v.quantile_iterated_to();
        let inverse = if q < 1.0 {
            format!("{:>14.2}", 1.0 / (1.0 - q))
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "{:>12.3} {:>14.12} {:>10} {}",
            v.value_iterated_to() as f64 / 1_000.0,
            q,
            v.count_since_last_iteration(),
            inverse
        );
    }
    let _ = writeln!(
        out,
        "#[Mean    = {:>12.3}, StdDeviation   = {:>12.3}]",
        h.mean() / 1_000.0,
        h.stdev() / 1_000.0
    );
    let _ = writeln!(
        out,
        "#[Max     = {:>12.3}, Total count    = {:>12}]",
        h.max() as f64 / 1_000.0,
        h.len()
    );
    out
}

/// Writes `<name>-create.hgrm`, `-activation.hgrm`, `-e2e.hgrm`,
/// `<name>.json`, `<name>-latency.svg` and `<name>-throughput.svg` to `dir`.
pub fn write_outputs(dir: &Path, name: &str, report: &LoadReport) -> anyhow::Result<Summary> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let write = |file: String, text: String| {
        let path = dir.join(file);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    };
    write(format!("{name}-create.hgrm"), hgrm(&report.create))?;
    write(format!("{name}-activation.hgrm"), hgrm(&report.activation))?;
    write(format!("{name}-e2e.hgrm"), hgrm(&report.end_to_end))?;
    let summary = Summary::of(name, report);
    write(
        format!("{name}.json"),
        serde_json::to_string_pretty(&summary).context("summary JSON")?,
    )?;
    write(
        format!("{name}-latency.svg"),
        crate::svg::latency_plot(
            &format!("{name}: latency by percentile"),
            &[
                ("create ack", &report.create),
                ("activation", &report.activation),
                ("end to end", &report.end_to_end),
            ],
        ),
    )?;
    write(
        format!("{name}-throughput.svg"),
        crate::svg::bar_plot(
            &format!("{name}: completed instances per second"),
            "second of the run",
            &report
                .completions_per_s
                .iter()
                .enumerate()
                .map(|(i, c)| (i.to_string(), *c as f64))
                .collect::<Vec<_>>(),
        ),
    )?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hgrm_ends_at_the_maximum() {
        let mut h = crate::load::new_histogram();
        for v in 1..=1000u64 {
            h.record(v * 10).expect("in range");
        }
        let text = hgrm(&h);
        assert!(text.contains("Total count    =         1000"), "{text}");
        let last = text.lines().rfind(|l| !l.starts_with('#')).expect("rows");
        assert!(last.trim_start().starts_with("10.0"), "{last}");
    }
}
