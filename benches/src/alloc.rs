//! A counting global allocator: every `alloc`, `alloc_zeroed` and `realloc` is counted (a `realloc`
//! that grows a buffer is an allocation on the hot path just the same), then forwarded unchanged to
//! the system allocator. Each benchmark binary installs it:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: dragoman_benches::alloc::CountingAlloc = dragoman_benches::alloc::CountingAlloc;
//! ```
//!
//! It also keeps the bytes allocated and not yet freed ([`live_bytes`]), so a benchmark can check
//! that its steady state holds its memory flat.
//!
//! [`trace`] also captures a backtrace of every allocation made while a closure runs, to find where
//! the allocations of one forwarded packet come from.

use std::alloc::{GlobalAlloc, Layout, System};
use std::backtrace::Backtrace;
use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);
static TRACING: AtomicBool = AtomicBool::new(false);
static TRACES: Mutex<Vec<Backtrace>> = Mutex::new(Vec::new());

thread_local! {
    /// Set while this thread is inside the allocator's own bookkeeping (capturing a backtrace
    /// allocates): those allocations are neither counted nor traced.
    static BUSY: Cell<bool> = const { Cell::new(false) };
}

/// The system allocator, counting allocations. See the module documentation.
#[derive(Debug, Clone, Copy, Default)]
pub struct CountingAlloc;

// `GlobalAlloc` is an unsafe trait and its methods are unsafe to call: this impl is the only unsafe
// code of the crate. Each method forwards its arguments unchanged to `System` (so `System`'s safety
// contract is exactly the caller's) after bumping a counter, which neither allocates nor touches the
// memory.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record();
        add_live(layout.size() as i64);
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record();
        add_live(layout.size() as i64);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record();
        add_live(new_size as i64 - layout.size() as i64);
        // SAFETY: as above; `ptr` came from this allocator, i.e. from `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add_live(-(layout.size() as i64));
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

fn record() {
    // `try_with`: never panic inside the allocator, even while the thread is being torn down.
    let _ = BUSY.try_with(|busy| {
        if busy.get() {
            return;
        }
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        if TRACING.load(Ordering::Relaxed) {
            busy.set(true);
            let trace = Backtrace::force_capture();
            if let Ok(mut traces) = TRACES.lock() {
                traces.push(trace);
            }
            busy.set(false);
        }
    });
}

fn add_live(bytes: i64) {
    LIVE_BYTES.fetch_add(bytes, Ordering::Relaxed);
}

/// Bytes the whole process has allocated and not freed (as requested; the allocator's own overhead
/// not included). A failed allocation is counted as if it had succeeded, which the benchmarks
/// never see.
pub fn live_bytes() -> i64 {
    LIVE_BYTES.load(Ordering::Relaxed)
}

/// Allocations (alloc, alloc_zeroed, realloc) made by the whole process so far.
pub fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// Is [`CountingAlloc`] the global allocator of this binary? (It counts a fresh `Box`.)
pub fn is_installed() -> bool {
    let before = allocations();
    let probe = std::hint::black_box(Box::new(0u64));
    drop(probe);
    allocations() > before
}

/// Run `f`, capturing a backtrace of every allocation it makes (single-threaded use only: other
/// threads' allocations in the meantime are captured too).
pub fn trace<R>(f: impl FnOnce() -> R) -> (R, Vec<Backtrace>) {
    if let Ok(mut traces) = TRACES.lock() {
        traces.clear();
        traces.reserve(4096);
    }
    TRACING.store(true, Ordering::SeqCst);
    let result = f();
    TRACING.store(false, Ordering::SeqCst);
    let traces = TRACES
        .lock()
        .map(|mut t| std::mem::take(&mut *t))
        .unwrap_or_default();
    (result, traces)
}
