//! Check "open-files": whether the open-file limit lets the sampler hold its /proc files for
//! every thread of the target.
//!
//! The sampler holds `stat` and `schedstat` of every thread from its first sight, and
//! `syscall` and `wchan` once the thread blocks (most threads of a big program do): four
//! descriptors a thread, one per process (its `stat`), and a few of its own. concadvise raises
//! its soft limit to the hard limit itself, so the hard limit is what counts. Past it, a new
//! thread cannot be followed at all (`sampling.threads_untracked`) and a followed one's
//! syscall cannot be opened, so its waits read as 'unknown' (measured: 401 blocked threads
//! need 1610 descriptors; at a limit of 1024, 574 of 785 thread-seconds were 'unknown').

use nix::sys::resource::{getrlimit, Resource};

use super::{Check, State, Target};

pub const NAME: &str = "open-files";

/// Descriptors held per thread once it has blocked.
pub const PER_THREAD: u64 = 4;
/// concadvise's own: stdio, the report, the signal pipe, directory listings, reads in passing.
pub const OWN: u64 = 32;
/// Without a PID: a limit that covers fewer threads than this is called limited (JVMs and
/// thread-per-connection servers run hundreds).
pub const COMMON_THREADS: u64 = 256;

/// Descriptors a measurement of `threads` threads in `processes` processes holds at most.
pub fn needed(threads: u64, processes: u64) -> u64 {
    threads * PER_THREAD + processes + OWN
}

pub fn check(target: Option<&Target>) -> Check {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap_or((0, 0));
    verdict(
        soft,
        hard,
        target.map(|t| (t.pid, t.threads, t.tree.len() as u64)),
    )
}

/// `target`: its PID, the threads and processes of its tree.
pub fn verdict(soft: u64, hard: u64, target: Option<(i32, u64, u64)>) -> Check {
    let limit = format!("the open-file limit (soft {soft}, hard {hard}; concadvise raises its soft limit to the hard one)");
    let raise = |to: u64| {
        format!(
            "raise the hard limit to at least {to} before measuring (as root: ulimit -Hn {to}; a \
             systemd unit: LimitNOFILE={to}; docker: --ulimit nofile={to})"
        )
    };
    let cost = "threads past it are not followed at all (their time is missing from the report, \
                which counts them in sampling.threads_untracked) and threads whose syscall file \
                cannot be opened have their waits reported as 'unknown'";
    match target {
        Some((pid, threads, processes)) => {
            let need = needed(threads, processes);
            let what = format!(
                "PID {pid}'s tree has {}: holding {PER_THREAD} files a thread needs about {need} \
                 descriptors",
                counted(threads, processes)
            );
            if hard >= need {
                Check::ok(NAME, format!("{what}; {limit} allows that"))
            } else {
                Check::not_ok(
                    NAME,
                    State::Limited,
                    format!("{what}, above {limit}: {cost}"),
                    raise(need),
                )
            }
        }
        None => {
            let threads = hard.saturating_sub(OWN) / PER_THREAD;
            let what = format!(
                "{limit} lets the sampler hold files for about {threads} threads ({PER_THREAD} a thread)"
            );
            if threads >= COMMON_THREADS {
                Check::ok(NAME, what)
            } else {
                Check::not_ok(
                    NAME,
                    State::Limited,
                    format!("{what}: in a program with more, {cost}"),
                    raise(needed(COMMON_THREADS * 4, 1)),
                )
            }
        }
    }
}

/// "1 thread in 1 process", "401 threads in 2 processes".
fn counted(threads: u64, processes: u64) -> String {
    let thread = if threads == 1 { "thread" } else { "threads" };
    let process = if processes == 1 {
        "process"
    } else {
        "processes"
    };
    format!("{threads} {thread} in {processes} {process}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_against_what_the_target_needs() {
        // 401 blocked threads, as measured: 1637 needed; 1700 was enough, 1024 was not.
        assert_eq!(needed(401, 1), 1637);
        let check = verdict(1700, 1700, Some((9, 401, 1)));
        assert_eq!(check.state, State::Ok);
        assert!(
            check.found.contains("401 threads in 1 process"),
            "{check:?}"
        );
        let check = verdict(1024, 1024, Some((9, 401, 1)));
        assert_eq!(check.state, State::Limited);
        assert!(check.found.contains("threads_untracked"));
        assert!(check.todo.unwrap().contains("ulimit -Hn 1637"));
        // The soft limit does not matter: concadvise raises it.
        assert_eq!(verdict(1024, 20000, Some((9, 401, 1))).state, State::Ok);
    }

    #[test]
    fn without_a_pid_the_threads_the_limit_covers() {
        let check = verdict(1024, 20000, None);
        assert_eq!(check.state, State::Ok);
        assert!(check.found.contains("about 4992 threads"), "{check:?}");
        assert_eq!(verdict(1024, 1024, None).state, State::Limited);
    }
}
