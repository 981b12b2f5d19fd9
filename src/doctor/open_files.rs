//! Check "open-files": whether the open-file limit lets the sampler hold a /proc file for
//! every thread of the target.
//!
//! The sampler holds every thread's `schedstat` (read at each tick), and `stat`, `syscall`
//! and `wchan` of the threads that run; one `stat` per process, and a few of its own. It holds
//! at most three quarters of its soft limit (which concadvise raises to the hard limit, so the
//! hard limit is what counts). Past that, the least active threads are read by opening their
//! files for each read: every thread is still followed, but those reads cost about two and a
//! half times as much, so a very large tree may be sampled at a lower rate.

use nix::sys::resource::{getrlimit, Resource};

use super::{Check, State, Target};

pub const NAME: &str = "open-files";

/// Descriptors held per thread at least (its schedstat).
pub const PER_THREAD: u64 = 1;
/// concadvise's own: stdio, the report, the signal pipe, directory listings, reads in passing.
pub const OWN: u64 = 32;
/// Without a PID: a limit that covers fewer threads than this is called limited (JVMs and
/// thread-per-connection servers run thousands).
pub const COMMON_THREADS: u64 = 1024;

/// The open-file limit under which a measurement of `threads` threads in `processes`
/// processes holds a schedstat for each: its descriptors are at most three quarters of it.
pub fn needed(threads: u64, processes: u64) -> u64 {
    (threads * PER_THREAD + processes + OWN) * 4 / 3 + 1
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
    let limit = format!("the open-file limit (soft {soft}, hard {hard}; concadvise raises its soft limit to the hard one and holds at most 3/4 of it)");
    let raise = |to: u64| {
        format!(
            "raise the hard limit to at least {to} before measuring (as root: ulimit -Hn {to}; a \
             systemd unit: LimitNOFILE={to}; docker: --ulimit nofile={to})"
        )
    };
    let cost = "every thread is still followed, but the least active ones are read by opening \
                their files each time, at about 2.5 times the CPU a read (a very large tree may \
                be sampled at a lower rate: sampling.lowered_to_hz)";
    match target {
        Some((pid, threads, processes)) => {
            let need = needed(threads, processes);
            let what = format!(
                "PID {pid}'s tree has {}: holding a file for each thread needs a limit of about \
                 {need}",
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
            let threads = (hard * 3 / 4).saturating_sub(OWN) / PER_THREAD;
            let what = format!("{limit} lets the sampler hold files for about {threads} threads");
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
        // 401 threads in one process: (401 + 1 + 32) x 4/3, and one for the rounding.
        assert_eq!(needed(401, 1), 579);
        let check = verdict(1024, 1024, Some((9, 401, 1)));
        assert_eq!(check.state, State::Ok);
        assert!(
            check.found.contains("401 threads in 1 process"),
            "{check:?}"
        );
        let check = verdict(512, 512, Some((9, 401, 1)));
        assert_eq!(check.state, State::Limited);
        assert!(check.found.contains("every thread is still followed"));
        assert!(check.todo.unwrap().contains("ulimit -Hn 579"));
        // The soft limit does not matter: concadvise raises it.
        assert_eq!(verdict(512, 20000, Some((9, 401, 1))).state, State::Ok);
    }

    #[test]
    fn without_a_pid_the_threads_the_limit_covers() {
        let check = verdict(1024, 20000, None);
        assert_eq!(check.state, State::Ok);
        assert!(check.found.contains("about 14968 threads"), "{check:?}");
        assert_eq!(verdict(1024, 1024, None).state, State::Limited);
    }
}
