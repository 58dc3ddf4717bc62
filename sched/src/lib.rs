//! The CPU slice of the calling thread, for threads that answer people.
//!
//! Linux's EEVDF scheduler (6.12 and later) lets a `SCHED_OTHER` thread ask for a shorter slice
//! through `sched_setattr(2)`'s `sched_runtime` (clamped by the kernel to 0.1–100 ms). A shorter
//! slice gives the thread an earlier virtual deadline each time it wakes, so it preempts a thread
//! that is running a longer slice instead of waiting for that slice to end; its share of the CPU
//! stays what its niceness says. hotline-gateway gives its request workers and its store writer
//! 100 µs: on two busy cores the default (1.4 ms here) let a request wait behind the relay,
//! dispatch-sim or the load generator, and that waiting was up to a millisecond of the p99
//! (BENCHMARKS.md, ninth session). Kernels before 6.12 ignore the field for `SCHED_OTHER`.
//!
//! Neither libc nor rustix wraps these two system calls, hence this crate's `unsafe`; the rest of
//! the workspace forbids it.

use std::io;
use std::time::Duration;

/// The shortest slice the kernel takes; shorter requests are raised to it.
pub const MIN_SLICE: Duration = Duration::from_micros(100);
/// The longest slice the kernel takes; longer requests are cut to it.
pub const MAX_SLICE: Duration = Duration::from_millis(100);

/// `struct sched_attr` as of Linux 3.14 (`SCHED_ATTR_SIZE_VER0`, 48 bytes): the kernel accepts
/// any size it knows and reads only `size` bytes.
#[cfg(target_os = "linux")]
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
}

#[cfg(target_os = "linux")]
const SCHED_OTHER: u32 = 0;
#[cfg(target_os = "linux")]
const SCHED_BATCH: u32 = 3;
/// The only flag `sched_getattr` reports for a fair-class thread that `sched_setattr` should
/// keep.
#[cfg(target_os = "linux")]
const SCHED_FLAG_RESET_ON_FORK: u64 = 1;

/// The calling thread's scheduling attributes.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn get() -> io::Result<SchedAttr> {
    let mut attr = SchedAttr::default();
    // SAFETY: the kernel writes at most the given size (that of `SchedAttr`, a plain C struct
    // with no invalid bit patterns) into `attr`, which is exclusively borrowed for the call;
    // pid 0 is the calling thread.
    let r = unsafe {
        libc::syscall(
            libc::SYS_sched_getattr,
            0 as libc::pid_t,
            &mut attr as *mut SchedAttr,
            std::mem::size_of::<SchedAttr>() as libc::c_uint,
            0 as libc::c_uint,
        )
    };
    if r == 0 {
        Ok(attr)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sets the calling thread's scheduling attributes.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn set(attr: &SchedAttr) -> io::Result<()> {
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        ..*attr
    };
    // SAFETY: the kernel reads `attr.size` bytes, the size of the `SchedAttr` it points to,
    // which lives until the call returns; pid 0 is the calling thread.
    let r = unsafe {
        libc::syscall(
            libc::SYS_sched_setattr,
            0 as libc::pid_t,
            &attr as *const SchedAttr,
            0 as libc::c_uint,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Asks for `slice` of CPU per turn for the calling thread, keeping its policy and niceness.
/// Zero gives the kernel's default back. Returns `false`, changing nothing, for a thread that is
/// not `SCHED_OTHER` or `SCHED_BATCH` (an operator who made it real-time knows better).
#[cfg(target_os = "linux")]
pub fn set_current_thread_slice(slice: Duration) -> io::Result<bool> {
    let mut attr = get()?;
    if attr.policy != SCHED_OTHER && attr.policy != SCHED_BATCH {
        return Ok(false);
    }
    attr.flags &= SCHED_FLAG_RESET_ON_FORK;
    attr.runtime = u64::try_from(slice.as_nanos()).unwrap_or(u64::MAX);
    set(&attr)?;
    Ok(true)
}

/// Elsewhere there is no such setting: nothing changes.
#[cfg(not(target_os = "linux"))]
pub fn set_current_thread_slice(_slice: Duration) -> io::Result<bool> {
    Ok(false)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The slice the scheduler uses for this thread, from /proc (ns).
    fn slice_in_proc() -> u64 {
        let tid = std::fs::read_link("/proc/thread-self").unwrap();
        let sched =
            std::fs::read_to_string(std::path::Path::new("/proc").join(tid).join("sched")).unwrap();
        sched
            .lines()
            .find_map(|l| l.strip_prefix("se.slice"))
            .and_then(|v| v.trim_start_matches([' ', ':']).trim().parse().ok())
            .unwrap()
    }

    #[test]
    fn the_slice_is_set_and_given_back_and_the_niceness_kept() {
        std::thread::spawn(|| {
            let mut attr = get().unwrap();
            attr.nice = 3;
            set(&attr).unwrap();
            let default = slice_in_proc();
            assert!(set_current_thread_slice(Duration::from_micros(250)).unwrap());
            let now = get().unwrap();
            assert_eq!(
                (now.runtime, now.nice, now.policy),
                (250_000, 3, SCHED_OTHER)
            );
            assert_eq!(slice_in_proc(), 250_000);
            // Zero asks for the default again (which the kernel then reports as the runtime).
            assert!(set_current_thread_slice(Duration::ZERO).unwrap());
            assert_eq!(slice_in_proc(), default);
            assert_eq!(get().unwrap().runtime, default);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn the_kernel_clamps_what_it_cannot_give() {
        std::thread::spawn(|| {
            assert!(set_current_thread_slice(Duration::from_micros(1)).unwrap());
            assert_eq!(slice_in_proc(), MIN_SLICE.as_nanos() as u64);
            assert!(set_current_thread_slice(Duration::from_secs(5)).unwrap());
            assert_eq!(slice_in_proc(), MAX_SLICE.as_nanos() as u64);
        })
        .join()
        .unwrap();
    }
}
