//! The process the others wait on: a wait-for graph over the tree's pipes, sockets and child waits, followed to where the time is spent.
//!
//! An edge P -> Q carries the thread-seconds P's threads spent blocked on Q: reading or
//! writing a pipe or Unix socket whose other end Q holds, a loopback TCP connection whose
//! peer Q holds, or waiting for Q to exit (wait4/waitid; "any child" is shared among the
//! children alive at that tick). The bottleneck is the process the most waiting points at,
//! followed down while it mostly waits on another process itself, to the one that computes,
//! does real I/O, or is simply slow (a consumer that sleeps). It is reported only when it
//! dominates: its waiters waited at least a fifth of the wall time on it, and at least half
//! of all the waiting between the tree's processes ended there.

use std::collections::{HashMap, HashSet};

use rustc_hash::FxHashMap;

use syscalls::Sysno;

use super::accountant::{Accountant, TickIntervals, TimeSplit};
use super::wait_kind::WaitKind;
use crate::sampler::observation::{SyscallState, ThreadState, TickSnapshot};

/// What a blocked thread waits for, as far as the graph is concerned.
#[derive(Debug, Clone, PartialEq)]
enum Target {
    /// These processes (the other end of a pipe or socket, a named child).
    Processes(Vec<i32>),
    /// Any of its children (wait4(-1, ...)).
    AnyChild,
}

/// Waits that are on another process when they have a target.
fn waits_on_a_process(kind: WaitKind) -> bool {
    matches!(kind, WaitKind::Ipc | WaitKind::Network | WaitKind::Child)
}

#[derive(Debug, Default)]
pub struct BottleneckTracker {
    /// The last target each thread was seen waiting for.
    targets: FxHashMap<(i32, i32), Option<Target>>,
    /// (from, to) -> thread-nanoseconds of waiting.
    edges: HashMap<(i32, i32), f64>,
    /// Of that, by how: [pipes and Unix sockets, network, waiting for it to exit].
    edge_kinds: HashMap<(i32, i32), [f64; 3]>,
    /// The command lines of processes outside the tree the tree talked to.
    outside: HashMap<i32, Vec<String>>,
}

/// The program a command line runs, as people call it: the file name of its first word
/// ("/usr/bin/xz" -> "xz"; a retitled process such as "postgres: user db [local] COMMIT" ->
/// "postgres").
pub fn program_name(command: &[String]) -> Option<&str> {
    let first = command.first()?.split_whitespace().next()?;
    let first = first.trim_end_matches(':');
    Some(first.rsplit('/').next().unwrap_or(first)).filter(|name| !name.is_empty())
}

/// The kind of a bottleneck outside the measured tree.
pub const OUTSIDE: &str = "outside";

/// The process the others wait on.
#[derive(Debug, Clone, PartialEq)]
pub struct Bottleneck {
    pub pid: i32,
    pub command: Vec<String>,
    /// What it spends its own time on: "cpu", or a wait kind; "outside" for a process
    /// outside the measured tree (a local server the program talks to), not measured.
    pub kind: String,
    /// Thread-seconds of others' waits that lead to it.
    pub waited_on_s: f64,
    /// The processes that waited on it (directly or through others), most first.
    pub waiters: Vec<(i32, String, f64)>,
    /// Its own time in its state, thread-seconds.
    pub kind_s: f64,
    /// Its cores used on average while the tree ran.
    pub cores: f64,
    /// How the others waited on it, most first: "through pipes or Unix sockets", "over the
    /// network", "for it to exit".
    pub through: Vec<&'static str>,
    /// Its own threads' time (thread-seconds).
    pub own: TimeSplit,
}

impl Bottleneck {
    /// "cat and wc waited 50.2 s on xz through pipes or Unix sockets; xz spent 25.4 s on the
    /// CPU (1.00 cores)".
    pub fn reason(&self) -> String {
        let me = program_name(&self.command).unwrap_or_default().to_string();
        let mut waiters: Vec<String> = Vec::new();
        for (pid, waiter, _) in &self.waiters {
            // Same program on both sides (a forked worker): the PIDs tell them apart.
            let shown = if *waiter == me {
                format!("{waiter} (pid {pid})")
            } else {
                waiter.clone()
            };
            if !waiters.contains(&shown) && waiters.len() < 4 {
                waiters.push(shown);
            }
        }
        let who = match waiters.as_slice() {
            [] => "the other processes".to_string(),
            [one] => one.clone(),
            [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
        };
        if self.kind == OUTSIDE {
            let process = if me.is_empty() {
                format!("process {}", self.pid)
            } else {
                format!("{me} (pid {})", self.pid)
            };
            return format!(
                "{who} waited {:.1} s on {process} {}, which is outside the measured tree: \
                 what it does was not measured. It is the one to look at: measure it with \
                 concadvise attach {}.",
                self.waited_on_s,
                self.through.join(" and "),
                self.pid
            );
        }
        let doing = match self.kind.as_str() {
            "cpu" => format!(
                "spent {:.1} s on the CPU ({:.2} cores)",
                self.kind_s, self.cores
            ),
            kind => format!(
                "spent most of its time in {kind} waits ({:.1} s)",
                self.kind_s
            ),
        };
        format!(
            "{who} waited {:.1} s on {me} (pid {}) {}; {me} {doing}: it is the stage the others \
             wait on.",
            self.waited_on_s,
            self.pid,
            self.through.join(" and "),
        )
    }
}

impl BottleneckTracker {
    pub fn ingest(
        &mut self,
        snapshot: &TickSnapshot,
        tick: &TickIntervals,
        accountant: &Accountant,
    ) {
        for peer in &snapshot.outside_peers {
            self.outside.insert(peer.pid, peer.command.clone());
        }
        // The tree's live processes, for a wait on any child (built only when one is).
        let mut alive: Option<HashSet<i32>> = None;
        for interval in &tick.threads {
            let key = (interval.pid, interval.tid);
            let Some(observation) = snapshot.threads.get(interval.observation) else {
                continue;
            };
            if let Some(state) = &observation.state {
                self.targets
                    .insert(key, wait_target(state, interval.wait_after));
            }
            let Some(Some(target)) = self.targets.get(&key) else {
                continue;
            };
            let by_kind = [WaitKind::Ipc, WaitKind::Network, WaitKind::Child]
                .map(|kind| interval.split.wait(kind));
            let waited: f64 = by_kind.iter().sum();
            if waited <= 0.0 {
                continue;
            }
            let to: Vec<i32> = match target {
                Target::Processes(pids) => pids.clone(),
                Target::AnyChild => alive
                    .get_or_insert_with(|| snapshot.threads.iter().map(|t| t.pid).collect())
                    .iter()
                    .copied()
                    .filter(|pid| accountant.ppid_of(*pid) == Some(interval.pid))
                    .collect(),
            };
            let parts = to.len().max(1) as f64;
            for pid in to {
                if pid != interval.pid {
                    *self.edges.entry((interval.pid, pid)).or_insert(0.0) += waited / parts;
                    let kinds = self.edge_kinds.entry((interval.pid, pid)).or_default();
                    for (total, ns) in kinds.iter_mut().zip(by_kind) {
                        *total += ns / parts;
                    }
                }
            }
        }
        for key in &snapshot.exited {
            self.targets.remove(key);
        }
    }

    /// Whether a thread's last known wait is on another process of the tree (its other end
    /// is a process the accountant follows, or it waits for a child): not an activity of its
    /// own, as the process it waits on is counted already.
    pub fn waits_on_tree(&self, pid: i32, tid: i32, accountant: &Accountant) -> bool {
        match self.targets.get(&(pid, tid)) {
            Some(Some(Target::Processes(pids))) => pids
                .iter()
                .all(|peer| accountant.process_info(*peer).is_some()),
            Some(Some(Target::AnyChild)) => true,
            _ => false,
        }
    }

    /// The bottleneck of the run, if one process dominates the waiting.
    pub fn conclude(&self, accountant: &Accountant, wall_ns: f64) -> Option<Bottleneck> {
        let graph = Graph::new(&self.edges);
        let own = own_time(accountant);
        let (start, _) = graph
            .incoming
            .iter()
            .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(a.0)))?;
        // Follow down while the process mostly waits on another one itself.
        let mut path = vec![*start];
        let mut node = *start;
        while let Some((next, waited)) = graph.heaviest_out(node) {
            let total = own.get(&node).map_or(0.0, |t| t.total);
            if waited < 0.5 * total || path.contains(&next) {
                break;
            }
            path.push(next);
            node = next;
        }
        let waited_on_ns: f64 = path.iter().map(|p| graph.incoming[p]).sum();
        let all_ns: f64 = self.edges.values().sum();
        if waited_on_ns < 0.2 * wall_ns || waited_on_ns < 0.5 * all_ns {
            return None;
        }
        let waiters = self.waiters(&path, accountant);
        let info = accountant.process_info(node);
        let time = own.get(&node).cloned().unwrap_or_default();
        Some(Bottleneck {
            pid: node,
            command: match info {
                Some(info) => info.command.clone(),
                None => self.outside.get(&node).cloned().unwrap_or_default(),
            },
            kind: if info.is_some() {
                time.dominant.clone()
            } else {
                OUTSIDE.to_string()
            },
            waited_on_s: waited_on_ns / 1e9,
            waiters,
            kind_s: time.dominant_ns / 1e9,
            cores: if wall_ns > 0.0 {
                time.cpu_ns / wall_ns
            } else {
                0.0
            },
            through: self.ways(&path, waited_on_ns),
            own: time.split,
        })
    }

    /// The processes outside `path` that waited on it, the longest waiting first: pid, program
    /// name, seconds.
    fn waiters(&self, path: &[i32], accountant: &Accountant) -> Vec<(i32, String, f64)> {
        let mut waiters: HashMap<i32, f64> = HashMap::new();
        for ((from, to), ns) in &self.edges {
            if path.contains(to) && !path.contains(from) {
                *waiters.entry(*from).or_insert(0.0) += ns;
            }
        }
        let name = |pid: i32| {
            accountant
                .process_info(pid)
                .and_then(|info| program_name(&info.command).map(str::to_string))
                .unwrap_or_else(|| pid.to_string())
        };
        let mut waiters: Vec<(i32, String, f64)> = waiters
            .into_iter()
            .map(|(pid, ns)| (pid, name(pid), ns / 1e9))
            .collect();
        waiters.sort_by(|a, b| b.2.total_cmp(&a.2));
        waiters
    }

    /// How the others waited on `path` (pipes, the network, its exit), the most first: each
    /// way that carried over 5 % of the `waited_on_ns`.
    fn ways(&self, path: &[i32], waited_on_ns: f64) -> Vec<&'static str> {
        let mut through = [0.0f64; 3];
        for (edge, kinds) in &self.edge_kinds {
            if path.contains(&edge.1) && !path.contains(&edge.0) {
                for (total, ns) in through.iter_mut().zip(kinds) {
                    *total += ns;
                }
            }
        }
        let mut ways: Vec<(&'static str, f64)> = [
            "through pipes or Unix sockets",
            "over the network",
            "for it to exit",
        ]
        .into_iter()
        .zip(through)
        .filter(|(_, ns)| *ns > 0.05 * waited_on_ns)
        .collect();
        ways.sort_by(|a, b| b.1.total_cmp(&a.1));
        ways.into_iter().map(|(way, _)| way).collect()
    }
}

/// The processes a thread in `state` waits on, ending the interval in wait `wait_after`: its
/// peers, or the child its wait4/waitid names.
fn wait_target(state: &ThreadState, wait_after: Option<WaitKind>) -> Option<Target> {
    match (&state.syscall, wait_after) {
        (_, Some(kind)) if !waits_on_a_process(kind) => None,
        (_, _) if !state.peers.is_empty() => Some(Target::Processes(state.peers.clone())),
        (SyscallState::Blocked { call, args }, Some(WaitKind::Child)) => child_target(*call, args),
        _ => None,
    }
}

/// The child a wait4/waitid waits for.
fn child_target(call: Sysno, args: &[u64; 6]) -> Option<Target> {
    let pid = match call {
        // wait4(pid, ...): > 0 one child; -1 any; 0 or < -1 a process group: any of them.
        Sysno::wait4 => args[0] as i64 as i32,
        // waitid(idtype, id, ...): P_PID = 1 names one child.
        Sysno::waitid if args[0] == 1 => args[1] as i64 as i32,
        Sysno::waitid => -1,
        _ => return None,
    };
    Some(if pid > 0 {
        Target::Processes(vec![pid])
    } else {
        Target::AnyChild
    })
}

struct Graph {
    incoming: HashMap<i32, f64>,
    outgoing: HashMap<i32, Vec<(i32, f64)>>,
}

impl Graph {
    fn new(edges: &HashMap<(i32, i32), f64>) -> Graph {
        let mut incoming = HashMap::new();
        let mut outgoing: HashMap<i32, Vec<(i32, f64)>> = HashMap::new();
        for ((from, to), ns) in edges {
            *incoming.entry(*to).or_insert(0.0) += ns;
            outgoing.entry(*from).or_default().push((*to, *ns));
        }
        Graph { incoming, outgoing }
    }

    fn heaviest_out(&self, node: i32) -> Option<(i32, f64)> {
        self.outgoing
            .get(&node)?
            .iter()
            .copied()
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
    }
}

/// A process's own time: all its threads' thread-seconds, and what took most of it.
#[derive(Debug, Clone, Default)]
struct OwnTime {
    split: TimeSplit,
    total: f64,
    cpu_ns: f64,
    dominant: String,
    dominant_ns: f64,
}

fn own_time(accountant: &Accountant) -> HashMap<i32, OwnTime> {
    let mut splits: HashMap<i32, TimeSplit> = HashMap::new();
    for thread in accountant.threads() {
        splits.entry(thread.pid).or_default().add(&thread.time);
    }
    splits
        .into_iter()
        .map(|(pid, split)| {
            let mut dominant = ("cpu".to_string(), split.cpu_ns);
            for kind in WaitKind::ALL {
                if split.wait(kind) > dominant.1 {
                    dominant = (kind.name().to_string(), split.wait(kind));
                }
            }
            (
                pid,
                OwnTime {
                    split,
                    total: split.total_ns(),
                    cpu_ns: split.cpu_ns,
                    dominant: dominant.0,
                    dominant_ns: dominant.1,
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_graph_is_followed_to_the_process_that_does_the_work() {
        // a waits on b, b mostly waits on c: c is where the time goes.
        let edges = HashMap::from([((1, 2), 5.0), ((2, 3), 9.0)]);
        let graph = Graph::new(&edges);
        assert_eq!(graph.incoming[&3], 9.0);
        assert_eq!(graph.heaviest_out(2), Some((3, 9.0)));
        assert_eq!(graph.heaviest_out(3), None);
    }

    use crate::sampler::observation::{
        ProcessInfo, Sighting, ThreadObservation, ThreadState, TickSnapshot,
    };

    /// A process `pid` (child of `ppid`) running `name`.
    fn process(pid: i32, ppid: i32, name: &str) -> ProcessInfo {
        ProcessInfo {
            pid,
            start_ticks: 0,
            ppid,
            command: vec![name.to_string()],
            exe: None,
            libraries: vec![],
            go_buildinfo: false,
            cgroup: None,
        }
    }

    /// What a one-thread process does in a tick: compute, or block on `call` with `peers`.
    enum Doing {
        Compute,
        Blocked(Sysno, [u64; 6], Vec<i32>),
    }

    /// Feeds `ticks` 10 ms ticks in which each (pid, doing) does the same; processes are
    /// announced at the first tick. Returns the accountant and the tracker.
    // Long because it builds each tick's snapshot in full (processes, states, exits): a test
    // fixture in one place.
    fn feed(
        processes: &[ProcessInfo],
        doing: &[(i32, Doing)],
        ticks: u64,
        exits_at: &[(i32, u64)],
    ) -> (Accountant, BottleneckTracker) {
        let mut accountant = Accountant::default();
        let mut tracker = BottleneckTracker::default();
        let mut cpu: HashMap<i32, u64> = HashMap::new();
        for tick in 0..=ticks {
            let at_ns = tick * 10_000_000;
            let mut snapshot = TickSnapshot {
                at_ns,
                new_processes: if tick == 0 {
                    processes.to_vec()
                } else {
                    vec![]
                },
                ..TickSnapshot::default()
            };
            for (pid, what) in doing {
                if exits_at.iter().any(|(p, t)| p == pid && tick > *t) {
                    continue;
                }
                let state = match what {
                    Doing::Compute => {
                        *cpu.entry(*pid).or_insert(0) += if tick == 0 { 0 } else { 10_000_000 };
                        ThreadState::running()
                    }
                    Doing::Blocked(call, args, peers) => ThreadState {
                        letter: 'S',
                        syscall: SyscallState::Blocked {
                            call: *call,
                            args: *args,
                        },
                        fds: vec![crate::sampler::observation::FdKind::Pipe],
                        peers: peers.clone(),
                        ..ThreadState::running()
                    },
                };
                snapshot.threads.push(ThreadObservation {
                    pid: *pid,
                    tid: *pid,
                    at_ns,
                    sighting: if tick == 0 {
                        Sighting::BornAt(0)
                    } else {
                        Sighting::Continuing
                    },
                    comm: None,
                    cpu_ns: cpu.get(pid).copied().unwrap_or(0),
                    runqueue_ns: 0,
                    timeslices: tick,
                    state: Some(Box::new(state)),
                });
            }
            for (pid, t) in exits_at {
                if tick == t + 1 {
                    snapshot.exited.push((*pid, *pid));
                }
            }
            accountant.ingest(&snapshot);
            tracker.ingest(&snapshot, &accountant.last_tick, &accountant);
        }
        (accountant, tracker)
    }

    const READ: Sysno = Sysno::read;

    #[test]
    fn a_pipeline_waits_on_its_computing_stage() {
        let (accountant, tracker) = feed(
            &[
                process(1, 0, "sh"),
                process(2, 1, "cat"),
                process(3, 1, "xz"),
                process(4, 1, "wc"),
            ],
            &[
                (1, Doing::Blocked(Sysno::wait4, [u64::MAX; 6], vec![])),
                (2, Doing::Blocked(Sysno::write, [1; 6], vec![3])),
                (3, Doing::Compute),
                (4, Doing::Blocked(READ, [0; 6], vec![3])),
            ],
            100,
            &[],
        );
        let found = tracker.conclude(&accountant, 1e9).unwrap();
        assert_eq!(found.command, ["xz"]);
        assert_eq!(found.kind, "cpu");
        // cat and wc all along, and a third of the shell's wait on its three children.
        assert!((found.waited_on_s - 2.33).abs() < 0.05, "{found:?}");
        assert!(found.reason().contains("cat"), "{}", found.reason());
    }

    #[test]
    fn processes_waiting_on_each_other_end_at_one_and_do_not_loop() {
        // 1 and 2 wait on each other (a cycle); 3 waits on 1.
        let (accountant, tracker) = feed(
            &[process(1, 0, "a"), process(2, 0, "b"), process(3, 0, "c")],
            &[
                (1, Doing::Blocked(READ, [0; 6], vec![2])),
                (2, Doing::Blocked(READ, [0; 6], vec![1])),
                (3, Doing::Blocked(READ, [0; 6], vec![1])),
            ],
            100,
            &[],
        );
        let found = tracker.conclude(&accountant, 1e9).unwrap();
        assert!([1, 2].contains(&found.pid), "{found:?}");
    }

    #[test]
    fn waits_on_a_process_that_exited_still_count_and_a_pipe_to_nobody_counts_for_none() {
        // 2 waits on 3, which exits halfway; 4 waits on a pipe whose other end left the tree
        // (no peers known): no edge.
        let (accountant, tracker) = feed(
            &[
                process(2, 0, "reader"),
                process(3, 0, "writer"),
                process(4, 0, "lonely"),
            ],
            &[
                (2, Doing::Blocked(READ, [0; 6], vec![3])),
                (3, Doing::Compute),
                (4, Doing::Blocked(READ, [0; 6], vec![])),
            ],
            100,
            &[(3, 50)],
        );
        let found = tracker.conclude(&accountant, 1e9).unwrap();
        assert_eq!(found.pid, 3);
        assert!(!tracker.edges.keys().any(|(from, _)| *from == 4));
    }

    #[test]
    fn no_process_dominates_when_hardly_anyone_waits() {
        let (accountant, tracker) = feed(
            &[process(1, 0, "a"), process(2, 0, "b")],
            &[(1, Doing::Compute), (2, Doing::Compute)],
            100,
            &[],
        );
        assert!(tracker.conclude(&accountant, 1e9).is_none());
    }

    #[test]
    fn child_waits_name_a_child_or_any() {
        let one = child_target(Sysno::wait4, &[42, 0, 0, 0, 0, 0]);
        assert_eq!(one, Some(Target::Processes(vec![42])));
        let any = child_target(Sysno::wait4, &[u64::MAX, 0, 0, 0, 0, 0]);
        assert_eq!(any, Some(Target::AnyChild));
        let by_id = child_target(Sysno::waitid, &[1, 7, 0, 0, 0, 0]);
        assert_eq!(by_id, Some(Target::Processes(vec![7])));
    }

    #[test]
    fn program_names_are_the_first_word_s_file_name() {
        let name = |args: &[&str]| {
            program_name(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
                .map(str::to_string)
        };
        assert_eq!(name(&["/usr/bin/xz", "-6"]).as_deref(), Some("xz"));
        assert_eq!(
            name(&["postgres: postgres db [local] COMMIT"]).as_deref(),
            Some("postgres")
        );
        assert_eq!(name(&[]), None);
        assert_eq!(name(&[""]), None);
    }
}
