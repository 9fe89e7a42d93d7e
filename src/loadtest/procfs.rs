//! Resident memory and CPU time of a process, from its /proc entry: the harness's own, and the
//! switchboards' when the harness spawned them. Parsing is pure (tested); reading is one file.
//!
//! CPU time is in clock ticks; Linux reports them at `USER_HZ`, 100 on every mainstream
//! architecture (the kernel's ABI, whatever `CONFIG_HZ` is).

use std::time::Duration;

/// Clock ticks per second in /proc/PID/stat (`USER_HZ`).
const TICKS_PER_SEC: u64 = 100;
/// Bytes per page in /proc/PID/statm (4 KiB on x86-64 and arm64 with 4 KiB pages).
const PAGE_BYTES: u64 = 4096;

/// Resident bytes of `pid` (`self` for this process).
pub fn rss(pid: &str) -> std::io::Result<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm"))?;
    parse_statm_rss(&statm).ok_or_else(|| std::io::Error::other("malformed statm"))
}

/// Peak resident bytes of `pid` (`VmHWM`).
pub fn peak_rss(pid: &str) -> std::io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_hwm(&status).ok_or_else(|| std::io::Error::other("no VmHWM"))
}

/// User plus system CPU time of `pid`.
pub fn cpu(pid: &str) -> std::io::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat_cpu(&stat).ok_or_else(|| std::io::Error::other("malformed stat"))
}

/// Whether `pid` is still a live process (not gone, not a zombie).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => state(&stat).is_some_and(|s| s != 'Z' && s != 'X'),
        Err(_) => false,
    }
}

fn parse_statm_rss(statm: &str) -> Option<u64> {
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * PAGE_BYTES)
}

fn parse_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Fields after the command name, which is in parentheses and may hold spaces.
fn after_comm(stat: &str) -> Option<Vec<&str>> {
    let close = stat.rfind(')')?;
    Some(stat.get(close + 1..)?.split_whitespace().collect())
}

fn state(stat: &str) -> Option<char> {
    after_comm(stat)?.first()?.chars().next()
}

fn parse_stat_cpu(stat: &str) -> Option<Duration> {
    // After the command: state (0), ppid, …, utime is field 14 of the whole line (index 11
    // here), stime field 15 (index 12).
    let fields = after_comm(stat)?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis(
        (utime + stime) * 1000 / TICKS_PER_SEC,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statm_second_field_is_resident_pages() {
        assert_eq!(parse_statm_rss("1000 250 30 1 0 100 0"), Some(250 * 4096));
        assert_eq!(parse_statm_rss("1000"), None);
    }

    #[test]
    fn stat_cpu_skips_a_command_with_spaces() {
        let stat = "42 (kith (a b)) S 1 42 42 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 3 0 1 2 3";
        assert_eq!(parse_stat_cpu(stat), Some(Duration::from_millis(2_000)));
        assert_eq!(state(stat), Some('S'));
    }

    #[test]
    fn hwm_is_read_in_kib() {
        assert_eq!(parse_hwm("Name: x\nVmHWM:\t  2048 kB\n"), Some(2048 * 1024));
    }

    #[test]
    fn this_process_is_alive_and_measurable() {
        assert!(alive(std::process::id()));
        assert!(rss("self").is_ok_and(|b| b > 0));
    }
}
