//! Reading another process's CPU time and resident memory from /proc.

use std::fs;

/// Linux reports utime/stime in USER_HZ ticks, which is 100 on every
/// architecture we run on (the kernel ABI fixes it; CONFIG_HZ does not
/// change it).
pub const USEC_PER_TICK: u64 = 10_000;

/// utime + stime of the whole process (all threads), in ticks, from
/// `/proc/PID/stat`.
pub fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: parse
    // from the last ')'. After it, field 3 (state) is index 0, so utime
    // (field 14) is index 11 and stime (field 15) index 12.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// On-CPU time of all of the process's current threads in nanoseconds, from
/// `/proc/PID/task/*/schedstat` (finer grained than `cpu_ticks`; threads
/// that already exited are not counted).
pub fn sched_ns(pid: &str) -> Option<u64> {
    let mut total = 0u64;
    let mut any = false;
    for entry in fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = entry.ok()?.path().join("schedstat");
        if let Ok(s) = fs::read_to_string(path) {
            if let Some(ns) = s
                .split_ascii_whitespace()
                .next()
                .and_then(|f| f.parse::<u64>().ok())
            {
                total += ns;
                any = true;
            }
        }
    }
    any.then_some(total)
}

/// Resident set size in KiB (`VmRSS` in `/proc/PID/status`).
pub fn rss_kb(pid: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line["VmRSS:".len()..]
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A point-in-time CPU reading of a process.
#[derive(Clone, Copy, Default)]
pub struct CpuSample {
    pub ticks: Option<u64>,
    pub sched_ns: Option<u64>,
}

impl CpuSample {
    pub fn take(pid: &str) -> Self {
        CpuSample {
            ticks: cpu_ticks(pid),
            sched_ns: sched_ns(pid),
        }
    }

    /// CPU microseconds between two samples, from `/proc/PID/stat`.
    pub fn stat_us_since(&self, earlier: &CpuSample) -> Option<u64> {
        Some(self.ticks?.checked_sub(earlier.ticks?)? * USEC_PER_TICK)
    }

    /// CPU microseconds between two samples, from schedstat.
    pub fn sched_us_since(&self, earlier: &CpuSample) -> Option<u64> {
        Some(self.sched_ns?.checked_sub(earlier.sched_ns?)? / 1000)
    }
}

/// Machine-wide CPU time from the first line of `/proc/stat`, in ticks:
/// (busy = user + nice + system + irq + softirq, steal).
pub fn system_ticks() -> Option<(u64, u64)> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_ascii_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    if v.len() < 8 {
        return None;
    }
    Some((v[0] + v[1] + v[2] + v[5] + v[6], v[7]))
}

/// Session id of a process (field 6 of `/proc/PID/stat`).
pub fn session_id(pid: &str) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_ascii_whitespace().nth(3)?.parse().ok()
}
