//! The noisy tenant of `noisy` in a process of its own: the same binary, run again with the
//! parent's flags plus `--noise-only`. In production the noisy tenant's backend is another
//! machine; in one process its HTTP calls and socket floods would compete with the victims'
//! clients for the generator's threads, and the victims' latency would then measure the
//! generator as much as the server.

use anyhow::Context as _;
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// The line the child prints once its sockets are connected and the noise starts.
pub const READY: &str = "lms-loadgen-noise-ready";

/// How long the child may take to connect its sockets.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// Where the noise process runs: its CPUs (`taskset -c`), and its scheduling class.
#[derive(Debug, Default)]
pub struct Placement {
    pub cpus: Option<String>,
    pub nice: Option<i32>,
    pub idle: bool,
}

pub struct NoiseChild {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl NoiseChild {
    /// Starts the child and waits until its noise has started. Where it runs is `place`.
    pub async fn start(run_id: &str, place: &Placement) -> anyhow::Result<NoiseChild> {
        let exe = std::env::current_exe().context("the generator's own path")?;
        // The command line, innermost last: `taskset -c CPUS chrt ... nice -n N exe`.
        let mut argv: Vec<std::ffi::OsString> = Vec::new();
        if let Some(cpus) = &place.cpus {
            argv.extend(["taskset".into(), "-c".into(), cpus.into()]);
        }
        match place.nice {
            // SCHED_IDLE: whatever else wants its core preempts it at once, where a
            // niceness-19 task of the normal class may finish its slice first (EEVDF).
            _ if place.idle => argv.extend(["chrt", "--idle", "0"].map(Into::into)),
            // Through chrt(1) and nice(1), so that every thread of the child starts in the
            // normal scheduling class (a generator run under `chrt -f` would hand its
            // real-time class down) at that niceness.
            Some(n) => {
                argv.extend(["chrt", "--other", "0", "nice", "-n"].map(Into::into));
                argv.push((n - own_niceness()?).to_string().into());
            }
            None => {}
        }
        argv.push(exe.into());
        let mut command = Command::new(&argv[0]);
        command.args(&argv[1..]);
        let mut child = command
            .args(child_args(std::env::args().skip(1), run_id))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting the noise process")?;
        let stdout = child.stdout.take().context("the noise process's stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        tokio::time::timeout(READY_WITHIN, async {
            while let Some(line) = lines.next_line().await? {
                if line == READY {
                    return Ok(());
                }
            }
            anyhow::bail!("the noise process exited before its noise started")
        })
        .await
        .context("the noise process did not start in time")??;
        Ok(NoiseChild { child, lines })
    }

    /// Waits for the child's own end (it stops after `--duration`) and returns its report.
    pub async fn finish(mut self) -> Value {
        let mut last = None;
        while let Ok(Some(line)) = self.lines.next_line().await {
            last = Some(line);
        }
        let status = self.child.wait().await;
        let report = last
            .and_then(|l| serde_json::from_str::<Value>(&l).ok())
            .and_then(|v| v.get("noisy").and_then(|n| n.get("noise")).cloned());
        match report {
            Some(mut noise) => {
                noise["process"] = json!("child");
                noise
            }
            None => json!({ "error": format!("no report from the noise process ({status:?})") }),
        }
    }
}

/// This process's niceness, field 19 of `/proc/self/stat` (after the parenthesised name).
fn own_niceness() -> anyhow::Result<i32> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat")?;
    parse_niceness(&stat).context("no niceness in /proc/self/stat")
}

fn parse_niceness(stat: &str) -> Option<i32> {
    let after_name = &stat[stat.rfind(')')? + 2..];
    // Fields from 3 (state) on; the niceness is field 19.
    after_name.split(' ').nth(19 - 3)?.parse().ok()
}

/// The parent's flags for the child: the same run (its `--run-id`, so the same noisy tenant),
/// without the parent's progress lines and server pids.
fn child_args(parent: impl Iterator<Item = String>, run_id: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip_value = false;
    for arg in parent {
        if std::mem::take(&mut skip_value) {
            continue;
        }
        match arg.as_str() {
            "--run-id" | "--pids" | "--noise-nice" | "--noise-cpus" => skip_value = true,
            "--quiet" | "--noise-in-process" | "--noise-idle" => {}
            a if a.starts_with("--run-id=")
                || a.starts_with("--pids=")
                || a.starts_with("--noise-nice=")
                || a.starts_with("--noise-cpus=") => {}
            _ => out.push(arg),
        }
    }
    out.extend(["--noise-only", "--quiet", "--run-id", run_id].map(String::from));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> impl Iterator<Item = String> {
        s.split(' ')
            .map(String::from)
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn the_child_runs_the_same_scenario_under_the_parents_run_id() {
        let a = child_args(
            args("noisy --url http://127.0.0.1:1 --pids 1,2 --run-id old -n 10 --quiet"),
            "lg1",
        );
        assert_eq!(
            a.join(" "),
            "noisy --url http://127.0.0.1:1 -n 10 --noise-only --quiet --run-id lg1"
        );
    }

    #[test]
    fn joined_forms_are_dropped_too() {
        let a = child_args(
            args("noisy --pids=1,2 --run-id=x --noise-nice=19 --noise-cpus=0 --noise-idle -r 5"),
            "y",
        );
        assert_eq!(a.join(" "), "noisy -r 5 --noise-only --quiet --run-id y");
    }

    #[test]
    fn the_niceness_is_read_after_a_name_with_spaces_and_parentheses() {
        let stat = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 -7 4 0 123";
        assert_eq!(parse_niceness(stat), Some(-7));
        assert!(own_niceness().is_ok());
    }
}
