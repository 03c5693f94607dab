//! Server cost, read from `/proc/<pid>/stat` (CPU) and `/proc/<pid>/status` (RSS).
//!
//! Per-unit figures (CPU-seconds per million deliveries, bytes per connection) are differences
//! of two samples taken around a phase, divided by what the phase did. Reading /proc costs the
//! server nothing and needs no agent. The clock tick is Linux's USER_HZ, 100 on every
//! architecture the kernel exports to user space.

use std::collections::BTreeMap;

const USER_HZ: f64 = 100.0;

/// One process at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcSample {
    /// user + system CPU time.
    pub cpu_s: f64,
    /// Resident set size.
    pub rss_bytes: u64,
}

/// All watched processes at one instant, and their sum.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    pub per_pid: BTreeMap<u32, ProcSample>,
    /// Pids that could not be read (exited, or no permission).
    pub missing: Vec<u32>,
}

impl Sample {
    pub fn total(&self) -> ProcSample {
        self.per_pid
            .values()
            .fold(ProcSample::default(), |a, s| ProcSample {
                cpu_s: a.cpu_s + s.cpu_s,
                rss_bytes: a.rss_bytes + s.rss_bytes,
            })
    }
}

/// The CPU seconds in the text of `/proc/<pid>/stat` (utime + stime, fields 14 and 15).
pub fn parse_stat_cpu(stat: &str) -> Option<f64> {
    // The command name (field 2) may contain spaces and parentheses: count from the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

/// `VmRSS` in bytes from the text of `/proc/<pid>/status`.
pub fn parse_status_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Reads one process, `None` if it is gone.
pub fn read(pid: u32) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(ProcSample {
        cpu_s: parse_stat_cpu(&stat)?,
        rss_bytes: parse_status_rss(&status)?,
    })
}

/// Reads every pid.
pub fn sample(pids: &[u32]) -> Sample {
    let mut s = Sample::default();
    for &pid in pids {
        match read(pid) {
            Some(p) => {
                s.per_pid.insert(pid, p);
            }
            None => s.missing.push(pid),
        }
    }
    s
}

/// This process's own CPU seconds (the load generator competes for the same cores).
pub fn self_cpu_s() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| parse_stat_cpu(&s))
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_read_after_a_command_name_with_spaces_and_parens() {
        let stat = "4242 (node (peer) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 11 0 100 1000 500 18446744073709551615";
        assert_eq!(parse_stat_cpu(stat), Some(3.0));
    }

    #[test]
    fn rss_comes_from_vmrss_in_kilobytes() {
        let status = "Name:\tnode\nVmPeak:\t  9000 kB\nVmRSS:\t  2048 kB\nThreads:\t11\n";
        assert_eq!(parse_status_rss(status), Some(2048 * 1024));
        assert_eq!(parse_status_rss("Name:\tx\n"), None);
    }

    #[test]
    fn this_process_can_be_read() {
        let me = read(std::process::id()).expect("own /proc entry");
        assert!(me.rss_bytes > 0);
        assert!(sample(&[u32::MAX]).missing == vec![u32::MAX]);
    }
}
