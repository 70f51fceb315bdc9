//! Measuring a stretch of work by the CPU time of this thread as well as by the wall clock.
//!
//! The machine the benchmarks run on is shared and busy: wall-clock time counts the time this thread
//! waited for a core while other processes ran. The thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`)
//! does not. On this kernel (`CONFIG_IRQ_TIME_ACCOUNTING` off) it does count the softirq work a
//! loopback `sendmmsg` does inline (delivering each datagram to the sink socket), so a send costs the
//! same in both clocks when the machine is idle.

use std::time::{Duration, Instant};

/// CPU time used by the calling thread so far.
pub fn thread_cpu_time() -> Duration {
    let ts = clock_gettime_thread();
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

// `clock_gettime(2)` writes one `timespec` through the pointer it is given; nothing else.
#[allow(unsafe_code)]
fn clock_gettime_thread() -> libc::timespec {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live, writable `timespec` for the duration of the call, and
    // CLOCK_THREAD_CPUTIME_ID is a clock every Linux kernel since 2.6.12 knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts
}

/// A started measurement: both clocks.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch {
    wall: Instant,
    cpu: Duration,
}

impl Stopwatch {
    pub fn start() -> Self {
        Stopwatch {
            wall: Instant::now(),
            cpu: thread_cpu_time(),
        }
    }

    /// (this thread's CPU time, wall-clock time) since [`Stopwatch::start`].
    pub fn stop(&self) -> (Duration, Duration) {
        let cpu = thread_cpu_time().saturating_sub(self.cpu);
        (cpu, self.wall.elapsed())
    }
}
