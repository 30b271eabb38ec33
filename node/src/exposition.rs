//! The two text formats of `/metrics`. The registry writes OpenMetrics 1.0;
//! Prometheus' own text format (0.0.4), which scrapers and `promtool check
//! metrics` read when they do not ask for OpenMetrics, differs in three ways
//! that matter here: a counter's family is named with its `_total` suffix,
//! there are no `# UNIT` lines, and there is no `# EOF` terminator.

/// Content type of the OpenMetrics text.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Content type of the Prometheus text format.
pub const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether an `Accept` header asks for OpenMetrics.
pub fn wants_openmetrics(accept: &str) -> bool {
    accept
        .split(',')
        .any(|part| part.trim().starts_with("application/openmetrics-text"))
}

/// Rewrites OpenMetrics text as Prometheus text format 0.0.4.
pub fn to_prometheus(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    // `# HELP` precedes `# TYPE` in OpenMetrics; hold it until the type
    // says whether the family's name needs the `_total` suffix.
    let mut help: Option<(&str, &str)> = None;
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            help = Some((name, text));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (kind, suffix) = match kind {
                "counter" => ("counter", "_total"),
                "gauge" | "histogram" | "summary" => (kind, ""),
                _ => ("untyped", ""),
            };
            if let Some((help_name, text)) = help.take() {
                if help_name == name {
                    out.push_str(&format!("# HELP {name}{suffix} {text}\n"));
                }
            }
            out.push_str(&format!("# TYPE {name}{suffix} {kind}\n"));
            continue;
        }
        // Exemplars (` # {...}` after the value) are OpenMetrics only.
        let sample = match line.find(" # {") {
            Some(at) => &line[..at],
            None => line,
        };
        out.push_str(sample);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_take_their_suffix_and_the_terminator_goes() {
        let om = "# HELP w_appended Records appended.\n# TYPE w_appended counter\n\
                  w_appended_total{partition=\"1\"} 3\n# HELP w_lag Lag.\n# TYPE w_lag gauge\n\
                  # UNIT w_lag records\nw_lag 2 # {trace=\"x\"} 1\n# EOF\n";
        assert_eq!(
            to_prometheus(om),
            "# HELP w_appended_total Records appended.\n# TYPE w_appended_total counter\n\
             w_appended_total{partition=\"1\"} 3\n# HELP w_lag Lag.\n# TYPE w_lag gauge\nw_lag 2\n"
        );
    }

    #[test]
    fn accept_header_negotiation() {
        assert!(wants_openmetrics(
            "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"
        ));
        assert!(!wants_openmetrics("text/plain;version=0.0.4;q=1,*/*;q=0.1"));
    }
}
