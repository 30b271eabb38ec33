//! CPU time of processes, from `/proc/<pid>/stat` (user plus system time of
//! the process and its threads), to tell what a step cost each part of the
//! machine: the broker, the database, the load generator.

/// Clock ticks per second of the times in `/proc/<pid>/stat`.
fn ticks_per_s() -> f64 {
    // SAFETY: sysconf reads a constant of the running system.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// `(comm, user + system seconds)` of process `pid`, `None` if it is gone.
fn stat(pid: u32) -> Option<(String, f64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ..." where comm may hold spaces and parentheses.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text[open + 1..close].to_string();
    let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
    // After the comm: state is field 3 of the line, utime 14, stime 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((comm, (utime + stime) / ticks_per_s()))
}

/// CPU seconds used so far by process `pid` (0 if it is gone).
pub fn of_process(pid: u32) -> f64 {
    stat(pid).map_or(0.0, |(_, s)| s)
}

/// CPU seconds used so far by the running processes called `comm` (such as
/// every `postgres` server process: on a benchmark machine, the benchmark's
/// own server).
pub fn of_processes_named(comm: &str) -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(stat)
        .filter(|(c, _)| c == comm)
        .map(|(_, s)| s)
        .sum()
}

/// CPU seconds used so far by this process.
pub fn of_self() -> f64 {
    of_process(std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_loop_shows_in_its_own_cpu_time() {
        let before = of_self();
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(300) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        assert!(of_self() > before, "no CPU time counted for a busy loop");
        let (comm, _) = stat(std::process::id()).unwrap();
        assert!(!comm.is_empty());
        assert_eq!(of_process(u32::MAX), 0.0);
    }
}
