//! This process's resource use: CPU (from the process's CPU clock), and memory, file
//! descriptors and I/O read from `/proc`.
//! Linux only; elsewhere `read` returns `None`. Used by the metrics exporter at scrape time
//! and by the summary (client CPU per op, peak memory).

use std::fs;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Process {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    /// Peak resident memory (VmHWM).
    pub peak_resident_bytes: u64,
    pub virtual_bytes: u64,
    pub open_fds: u64,
    pub max_fds: u64,
    /// Bytes through read-like and write-like system calls (files and sockets alike).
    pub io_read_bytes: u64,
    pub io_write_bytes: u64,
}

/// Clock ticks per second of `/proc/self/stat` times: 100 on every Linux this runs on
/// (USER_HZ is fixed by the kernel ABI on x86-64 and arm64).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU time of the whole process, every thread counted (those that have exited too), to the
/// nanosecond: `/proc/self/stat` counts whole ticks of 10 ms, so a short run's CPU per op
/// could come out as zero. `None` where there is no such clock.
#[cfg(unix)]
pub fn cpu_seconds() -> Option<f64> {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec for the call to write.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    (rc == 0).then_some(t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9)
}

#[cfg(not(unix))]
pub fn cpu_seconds() -> Option<f64> {
    None
}

pub fn read() -> Option<Process> {
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of stat, 11 and 12 here; vsize is 23, here 20.
    let cpu_seconds = cpu_seconds().unwrap_or((num(11) + num(12)) as f64 / TICKS_PER_SECOND);
    let virtual_bytes = num(20);
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    let resident_bytes = kib("VmRSS:");
    let peak_resident_bytes = kib("VmHWM:");
    let open_fds = fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
    let max_fds = fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
        })
        .unwrap_or(0);
    let io = fs::read_to_string("/proc/self/io").unwrap_or_default();
    let io_field = |name: &str| {
        io.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    Some(Process {
        cpu_seconds,
        resident_bytes,
        peak_resident_bytes,
        virtual_bytes,
        open_fds,
        max_fds,
        io_read_bytes: io_field("rchar:"),
        io_write_bytes: io_field("wchar:"),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_process() {
        let p = super::read().expect("/proc is mounted");
        assert!(p.resident_bytes > 1_000_000, "{p:?}");
        assert!(p.open_fds >= 3 && p.max_fds >= p.open_fds, "{p:?}");
        assert!(p.virtual_bytes >= p.resident_bytes);
    }

    #[test]
    fn cpu_time_is_finer_than_a_tick() {
        // About a millisecond of work: a tenth of the 10 ms tick of /proc/self/stat.
        let before = super::cpu_seconds().expect("the process CPU clock");
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_millis(1) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let spent = super::cpu_seconds().expect("the process CPU clock") - before;
        // Counted in ticks it would be 0 nine times in ten.
        assert!(spent > 0.0, "{spent} s for about 1 ms of work");
    }
}
