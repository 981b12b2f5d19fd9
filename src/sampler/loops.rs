//! The epoll instances of the tree's processes, looked at once a second: how many descriptors each watches and how many lead to a peer.
//!
//! An event loop that always has work ready (a server under load, or one blocked by a
//! synchronous call between requests) never sleeps in its poller, so no sample finds it
//! there. Its epoll instance still says it is a loop and how many connections it serves.
//! Of several instances (Node keeps some for its own threads, and a synchronous child call
//! makes one for a moment) the one holding sockets is the program's. Only /proc is read: the
//! process's fd links (at most `MAX_SCANNED` of them) and the instances' fdinfo, resolved
//! like any poll set.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use syscalls::Sysno;

use super::fd_resolver::{FdResolver, ProcessFiles};
use super::observation::{serves_many, ProcessPoll, TickSnapshot};

/// Each process's instance is looked at again this often...
const PERIOD: Duration = Duration::from_secs(1);
/// ...and at most this many of its descriptors are read to find one.
const MAX_SCANNED: usize = 256;

#[derive(Default)]
struct Watched {
    /// The instance last chosen, and whether it served then.
    epfd: Option<i32>,
    serves: bool,
    looked_at: Option<Instant>,
}

#[derive(Default)]
pub struct LoopScanner {
    processes: HashMap<i32, Watched>,
}

impl LoopScanner {
    /// Looks at the epoll instance of each process that is due, into the snapshot.
    pub fn scan<'a>(
        &mut self,
        processes: impl Iterator<Item = (i32, &'a mut ProcessFiles)>,
        resolver: &mut FdResolver,
        snapshot: &mut TickSnapshot,
    ) {
        for (pid, files) in processes {
            let watched = self.processes.entry(pid).or_default();
            if watched.looked_at.is_some_and(|at| at.elapsed() < PERIOD) {
                continue;
            }
            watched.looked_at = Some(Instant::now());
            // A serving instance is kept; until one serves, every instance is looked at
            // again (a server makes its listener's after the runtime's own ones).
            let known = watched
                .epfd
                .filter(|_| watched.serves)
                .and_then(|epfd| look(pid, epfd, resolver, files))
                .filter(|poll| poll.serves);
            let Some(poll) = known.or_else(|| {
                epoll_fds(pid)
                    .into_iter()
                    .filter_map(|epfd| look(pid, epfd, resolver, files))
                    .max_by_key(|poll| (poll.serves, poll.watched))
            }) else {
                watched.epfd = None;
                continue;
            };
            watched.epfd = poll.epfd;
            watched.serves = poll.serves;
            snapshot.polls.push(poll);
        }
    }

    pub fn forget(&mut self, pid: i32) {
        self.processes.remove(&pid);
    }
}

/// What epoll instance `epfd` of process `pid` holds; `None` when it holds nothing (closed
/// meanwhile, or a runtime's instance not in use).
fn look(
    pid: i32,
    epfd: i32,
    resolver: &mut FdResolver,
    files: &mut ProcessFiles,
) -> Option<ProcessPoll> {
    let args = [epfd as u64, 0, 0, 0, 0, 0];
    let targets = resolver.resolve(pid, Sysno::epoll_wait, &args, files, 'S');
    if targets.watched == 0 && targets.kinds.is_empty() {
        return None;
    }
    Some(ProcessPoll {
        pid,
        watched: targets.watched,
        peers: targets.watched_peers,
        epfd: Some(epfd),
        serves: serves_many(&targets.kinds, Some(targets.served)),
    })
}

/// The epoll descriptors of a process, among its first `MAX_SCANNED`.
fn epoll_fds(pid: i32) -> Vec<i32> {
    let dir = PathBuf::from(format!("/proc/{pid}/fd"));
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut fds: Vec<i32> = entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort_unstable();
    fds.into_iter()
        .take(MAX_SCANNED)
        .filter(|fd| {
            std::fs::read_link(dir.join(fd.to_string()))
                .is_ok_and(|target| target.as_os_str() == "anon_inode:[eventpoll]")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_asyncio_process_has_an_epoll_instance_and_a_sleep_has_none() {
        let mut child = std::process::Command::new("python3")
            .args([
                "-c",
                "import asyncio, sys\nasync def m():\n    print('up', flush=True)\n    \
                 await asyncio.sleep(5)\nasyncio.run(m())",
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        assert!(!epoll_fds(child.id() as i32).is_empty());
        child.kill().unwrap();
        child.wait().unwrap();
        let mut sleeper = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        assert!(epoll_fds(sleeper.id() as i32).is_empty());
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();
    }
}
