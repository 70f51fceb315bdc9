//! What the load tool reads from Linux's `/proc`: a process's CPU time, resident memory, threads
//! and allowed CPUs; which process listens on a TCP port; the drop counters of a process's UDP
//! sockets; and the system-wide UDP error counters. Every reader returns `None` rather than fail
//! when a file is missing or unreadable (another OS, a process that exited).

use std::collections::HashSet;
use std::fs;
use std::sync::OnceLock;

/// CPU time and size of one process at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcSample {
    /// User + system CPU time of all its threads, live and exited, in clock ticks.
    pub cpu_ticks: u64,
    pub threads: u64,
    /// Resident set size in KiB.
    pub rss_kib: u64,
}

impl ProcSample {
    pub fn read(pid: u32) -> Option<ProcSample> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let (cpu_ticks, threads) = parse_stat(&stat)?;
        let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        Some(ProcSample {
            cpu_ticks,
            threads,
            rss_kib: status_kib(&status, "VmRSS:")?,
        })
    }
}

/// CPU ticks of each live thread of `pid`: thread id → (name, ticks).
pub fn thread_ticks(pid: u32) -> std::collections::BTreeMap<u32, (String, u64)> {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Default::default();
    };
    dir.filter_map(|entry| {
        let tid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
        let name = stat[stat.find('(')? + 1..stat.rfind(')')?].to_owned();
        let (ticks, _) = parse_stat(&stat)?;
        Some((tid, (name, ticks)))
    })
    .collect()
}

/// utime + stime and the thread count from a `/proc/<pid>/stat` line.
fn parse_stat(stat: &str) -> Option<(u64, u64)> {
    // The command name is in parentheses and may contain spaces; fields restart after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field 3 (state) is fields[0]; utime is field 14, stime 15, num_threads 20.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let threads: u64 = fields.get(17)?.parse().ok()?;
    Some((utime + stime, threads))
}

/// A `Key:   1234 kB` value of `/proc/<pid>/status`.
fn status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Clock ticks per second for `/proc/<pid>/stat` times (`getconf CLK_TCK`; 100 if unknown, as on
/// every mainstream Linux).
pub fn clock_ticks_per_second() -> u64 {
    static TCK: OnceLock<u64> = OnceLock::new();
    *TCK.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|&t: &u64| t > 0)
            .unwrap_or(100)
    })
}

/// How many CPUs a process may run on (`Cpus_allowed_list`, e.g. `1` or `0-1,4`).
pub fn allowed_cpus(pid: u32) -> Option<usize> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?
        .trim();
    parse_cpu_list(list)
}

fn parse_cpu_list(list: &str) -> Option<usize> {
    let mut n = 0;
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
                n += b.checked_sub(a)? + 1;
            }
            None => {
                part.parse::<usize>().ok()?;
                n += 1;
            }
        }
    }
    (n > 0).then_some(n)
}

/// Rows of `/proc/net/{tcp,tcp6,udp,udp6}`: (local port, state, inode, drops).
fn socket_rows(file: &str) -> Vec<(u16, u8, u64, u64)> {
    let Ok(text) = fs::read_to_string(file) else {
        return Vec::new();
    };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let port = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
            let state = u8::from_str_radix(f.get(3)?, 16).ok()?;
            let inode = f.get(9)?.parse().ok()?;
            // Only UDP rows have the drops column.
            let drops = f.get(12).and_then(|d| d.parse().ok()).unwrap_or(0);
            Some((port, state, inode, drops))
        })
        .collect()
}

/// The socket inodes a process holds open.
pub fn socket_inodes(pid: u32) -> HashSet<u64> {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashSet::new();
    };
    dir.filter_map(|entry| {
        let target = fs::read_link(entry.ok()?.path()).ok()?;
        let text = target.to_str()?;
        text.strip_prefix("socket:[")?
            .strip_suffix(']')?
            .parse()
            .ok()
    })
    .collect()
}

/// The process (other than this one) that listens on TCP `port`, found through the listening
/// socket's inode. This process's own children are skipped too: between fork and exec a child
/// holds copies of all its parent's sockets (e.g. while `getconf` is started).
pub fn find_listener(port: u16) -> Option<u32> {
    const LISTEN: u8 = 0x0A;
    let inodes: HashSet<u64> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .flat_map(|f| socket_rows(f))
        .filter(|&(p, state, inode, _)| p == port && state == LISTEN && inode != 0)
        .map(|(_, _, inode, _)| inode)
        .collect();
    if inodes.is_empty() {
        return None;
    }
    let me = std::process::id();
    fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .find(|&pid| !socket_inodes(pid).is_disjoint(&inodes) && parent_of(pid) != Some(me))
}

/// The parent process id, from `/proc/<pid>/stat` (the field after the state).
fn parent_of(pid: u32) -> Option<u32> {
    parse_parent(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn parse_parent(stat: &str) -> Option<u32> {
    // The command name may hold spaces and parentheses: fields are counted after the last ')'.
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Datagrams dropped on receipt (full buffer) by the UDP sockets of `pid`, summed. Sockets closed
/// in between are no longer counted, so compare samples of a process whose sockets stay open.
pub fn udp_drops(pid: u32) -> Option<u64> {
    let inodes = socket_inodes(pid);
    if inodes.is_empty() {
        return None;
    }
    Some(
        ["/proc/net/udp", "/proc/net/udp6"]
            .iter()
            .flat_map(|f| socket_rows(f))
            .filter(|(_, _, inode, _)| inodes.contains(inode))
            .map(|(_, _, _, drops)| drops)
            .sum(),
    )
}

/// The whole machine's CPU time from the first line of `/proc/stat`, in clock ticks summed over
/// CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SystemCpu {
    /// Everything but idle and iowait.
    pub busy_ticks: u64,
    pub total_ticks: u64,
    /// Time the hypervisor gave this VM's CPUs to someone else.
    pub steal_ticks: u64,
}

impl SystemCpu {
    pub fn read() -> Option<SystemCpu> {
        parse_system_cpu(&fs::read_to_string("/proc/stat").ok()?)
    }
}

fn parse_system_cpu(text: &str) -> Option<SystemCpu> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal guest guest_nice; guests are already in user.
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3)? + values.get(4).copied().unwrap_or(0);
    Some(SystemCpu {
        busy_ticks: total.saturating_sub(idle),
        total_ticks: total,
        steal_ticks: values.get(7).copied().unwrap_or(0),
    })
}

/// CPUs online on the machine (not only those this process may use).
pub fn machine_cpus() -> usize {
    fs::read_to_string("/proc/stat")
        .ok()
        .map(|t| {
            t.lines()
                .filter(|l| {
                    l.strip_prefix("cpu")
                        .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
                })
                .count()
        })
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// The 1-minute load average.
pub fn load_average() -> Option<f64> {
    fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// System-wide UDP counters from `/proc/net/snmp`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UdpCounters {
    pub in_datagrams: u64,
    pub in_errors: u64,
    pub rcvbuf_errors: u64,
    pub sndbuf_errors: u64,
}

impl UdpCounters {
    pub fn read() -> Option<UdpCounters> {
        parse_snmp_udp(&fs::read_to_string("/proc/net/snmp").ok()?)
    }

    pub fn since(&self, before: &UdpCounters) -> UdpCounters {
        UdpCounters {
            in_datagrams: self.in_datagrams.saturating_sub(before.in_datagrams),
            in_errors: self.in_errors.saturating_sub(before.in_errors),
            rcvbuf_errors: self.rcvbuf_errors.saturating_sub(before.rcvbuf_errors),
            sndbuf_errors: self.sndbuf_errors.saturating_sub(before.sndbuf_errors),
        }
    }
}

fn parse_snmp_udp(text: &str) -> Option<UdpCounters> {
    let mut rows = text.lines().filter(|l| l.starts_with("Udp:"));
    let names: Vec<&str> = rows.next()?.split_whitespace().skip(1).collect();
    let values: Vec<u64> = rows
        .next()?
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    let get = |name: &str| {
        names
            .iter()
            .position(|n| *n == name)
            .and_then(|i| values.get(i).copied())
            .unwrap_or(0)
    };
    Some(UdpCounters {
        in_datagrams: get("InDatagrams"),
        in_errors: get("InErrors"),
        rcvbuf_errors: get("RcvbufErrors"),
        sndbuf_errors: get("SndbufErrors"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_spaces_in_the_name() {
        let stat = "4242 (tokio rt (x)) S 1 4242 4242 0 -1 4194560 1 0 0 0 250 75 0 0 20 0 7 0 \
                    100 1000 200 18446744073709551615";
        assert_eq!(parse_stat(stat), Some((325, 7)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn parses_status_and_cpu_lists() {
        let status = "Name:\tdragoman\nVmRSS:\t   20480 kB\nCpus_allowed_list:\t0-1\n";
        assert_eq!(status_kib(status, "VmRSS:"), Some(20480));
        assert_eq!(parse_cpu_list("0-1"), Some(2));
        assert_eq!(parse_cpu_list("1"), Some(1));
        assert_eq!(parse_cpu_list("0-3,8,10-11"), Some(7));
        assert_eq!(parse_cpu_list("x"), None);
    }

    #[test]
    fn parses_snmp() {
        let text = "Ip: Forwarding\nIp: 1\nUdp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\nUdp: 100 2 3 90 4 5\n";
        assert_eq!(
            parse_snmp_udp(text),
            Some(UdpCounters {
                in_datagrams: 100,
                in_errors: 3,
                rcvbuf_errors: 4,
                sndbuf_errors: 5
            })
        );
    }

    #[test]
    fn parses_proc_stat() {
        let text = "cpu  100 5 50 1000 20 1 2 3 0 0\ncpu0 1 2 3 4\n";
        assert_eq!(
            parse_system_cpu(text),
            Some(SystemCpu {
                busy_ticks: 161,
                total_ticks: 1181,
                steal_ticks: 3
            })
        );
    }

    #[test]
    fn reads_this_process() {
        if !std::path::Path::new("/proc/self/stat").exists() {
            return;
        }
        let me = ProcSample::read(std::process::id()).expect("own /proc entry");
        assert!(me.rss_kib > 0 && me.threads >= 1);
        assert!(allowed_cpus(std::process::id()).is_some_and(|n| n >= 1));
        assert!(clock_ticks_per_second() >= 1);
        let threads = thread_ticks(std::process::id());
        assert!(threads.contains_key(&std::process::id()), "{threads:?}");
    }

    #[test]
    fn parses_the_parent_pid() {
        assert_eq!(parse_parent("42 (a) b) (c) S 7 42 42 0"), Some(7));
        assert_eq!(parse_parent("42 (x"), None);
    }

    #[test]
    fn finds_a_listener_in_another_process_only() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        // This process is excluded on purpose (the load tool never measures itself).
        assert_eq!(find_listener(port), None);
    }
}
