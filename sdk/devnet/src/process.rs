//! Stopping processes by PID: SIGTERM to the process group, wait, then SIGKILL.

use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use crate::DevnetError;

const POLL: Duration = Duration::from_millis(25);

/// True while `pid` exists and is not a zombie.
pub(crate) fn is_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match kill(Pid::from_raw(pid), None) {
        Err(Errno::ESRCH) => false,
        _ => !is_zombie(pid),
    }
}

fn is_zombie(pid: i32) -> bool {
    // /proc/<pid>/stat: "pid (comm) S ..."; comm may hold spaces and parentheses, the state follows the last ')'.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rfind(')')
                .map(|i| s[i + 1..].trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

fn signal_group(pid: i32, sig: Signal) {
    // The devnet leads its own process group (pgid == pid); fall back to the single process.
    if killpg(Pid::from_raw(pid), sig).is_err() {
        let _ = kill(Pid::from_raw(pid), sig);
    }
}

/// Stops `pid` and its group. `reaped` is polled to reap our own child (returns true once it exited).
pub(crate) fn terminate(
    pid: i32,
    grace: Duration,
    mut reaped: impl FnMut() -> bool,
) -> Result<(), DevnetError> {
    if pid <= 0 {
        return Err(DevnetError::StopFailed { pid });
    }
    let gone = |reaped: &mut dyn FnMut() -> bool| reaped() || !is_alive(pid);
    if gone(&mut reaped) {
        return Ok(());
    }
    signal_group(pid, Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if gone(&mut reaped) {
            return Ok(());
        }
        std::thread::sleep(POLL);
    }
    signal_group(pid, Signal::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if gone(&mut reaped) {
            return Ok(());
        }
        std::thread::sleep(POLL);
    }
    Err(DevnetError::StopFailed { pid })
}
