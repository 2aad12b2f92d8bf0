//! CPU time of processes, from `/proc` (Linux): what a benchmark reads to
//! say how much of the machine each process used.
#![allow(dead_code)] // each benchmark uses part of it

/// Linux reports process CPU time in ticks of 1/100 s (USER_HZ).
pub const TICKS_PER_SEC: f64 = 100.0;

/// The fields of `/proc/<pid>/stat` after the parenthesised command name
/// (so `[1]` is the parent pid, `[11]`/`[12]` utime/stime).
pub fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// CPU clock ticks (user + system, all threads) used so far by `pid`.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let f = stat_fields(pid)?;
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// CPU time (user + system, all threads) used so far by these processes.
pub fn cpu_seconds(pids: &[u32]) -> f64 {
    pids.iter().filter_map(|pid| cpu_ticks(*pid)).sum::<u64>() as f64 / TICKS_PER_SEC
}
