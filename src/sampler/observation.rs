//! What the sampler saw at one tick: plain data, recorded as JSON lines for fixtures and replayed by tests.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use syscalls::Sysno;

use super::stacks::StackRead;

/// Everything read from /proc at one sampler tick, for the whole tree.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TickSnapshot {
    /// Nanoseconds since sampling started, taken when the tick began.
    pub at_ns: u64,
    /// Processes seen for the first time (or whose program changed by exec) at this tick.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub new_processes: Vec<ProcessInfo>,
    pub threads: Vec<ThreadObservation>,
    /// Threads (pid, tid) found gone at this tick: their accounts are final.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exited: Vec<(i32, i32)>,
    /// Each process's own CPU counters (utime + stime of /proc/PID/stat), which include its
    /// threads that already exited, seen or not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub process_cpu: Vec<ProcessCpu>,
    /// Cgroups with a CPU quota seen for the first time at this tick.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub new_cgroups: Vec<CgroupInfo>,
    /// The throttling counters of every cgroup with a quota the tree runs under.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cgroups: Vec<CgroupSample>,
    /// A stack read was asked for at this tick: its stacks come in a later snapshot, marked
    /// with this tick's `at_ns`, and are joined to the thread states of this one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stacks_requested: bool,
    /// Stacks (and news of the stack reader) that came back since the last tick.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stacks: Option<StackRead>,
    /// Epoll instances of the tree's processes, each looked at about once a second.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub polls: Vec<ProcessPoll>,
    /// Processes outside the tree that threads of it were first seen talking to at this tick
    /// (a local server at the other end of a socket), with their command lines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outside_peers: Vec<OutsidePeer>,
    /// Filesystem devices (a mount's major:minor) the tree's files were first seen on at this
    /// tick, and the disk behind each, if there is one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub new_devices: Vec<DeviceInfo>,
    /// The busy-time counters of every disk behind those devices (/proc/diskstats).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disks: Vec<DiskSample>,
    /// The accept queue of every TCP listener the tree holds, at the ticks they were read
    /// (about every 200 ms while it holds one; see `sampler::listeners`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listeners: Vec<ListenerSample>,
}

/// A TCP listening socket of the tree and the connections waiting in its accept queue.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ListenerSample {
    /// Its local address ("127.0.0.1:8802", "[::]:80").
    pub address: String,
    /// Connections established and not yet accepted (`rx_queue` of a LISTEN socket).
    pub queued: u32,
    /// The tree's processes that hold it, sorted.
    pub pids: Vec<i32>,
}

/// A filesystem's device (the st_dev of its files, from mountinfo) and the disk whose busy
/// time counts for it, or why there is none.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeviceInfo {
    /// "major:minor", as `FileMount::device`.
    pub device: String,
    /// The disk behind it: its sampler number, name and numbers, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<DiskInfo>,
    /// Why there is no single disk behind it (memory, a network server, several devices...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmeasured: Option<String>,
}

/// A whole disk as /proc/diskstats names it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DiskInfo {
    /// The sampler's number for it, unique within a measurement (several filesystem devices,
    /// such as two partitions, may share one disk).
    pub id: u32,
    /// Its kernel name (sda, nvme0n1, vda, loop0).
    pub name: String,
    /// Its own "major:minor".
    pub major_minor: String,
    /// The block devices between the filesystem and it, top first (a partition, dm-0...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub via: Vec<String>,
    /// /sys/block/NAME/queue/rotational, when readable (virtual disks often claim 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotational: Option<bool>,
}

/// A disk's cumulative counters at one tick (/proc/diskstats; both wrap at 2^32 ms).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct DiskSample {
    pub id: u32,
    /// Milliseconds with at least one request in flight (io_ticks, field 13 of a line).
    pub busy_ms: u32,
    /// Milliseconds of requests in flight, summed over the requests (field 14): its
    /// difference over a time is the mean number in flight.
    pub queue_ms: u32,
}

/// A process outside the tree that the tree talks to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutsidePeer {
    pub pid: i32,
    /// Its command line (empty when it could not be read).
    pub command: Vec<String>,
}

/// A process's epoll instance: it runs an event loop, serving this many descriptors. Of a
/// process with several, the one that serves (holds its sockets), else the largest.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct ProcessPoll {
    pub pid: i32,
    /// Descriptors registered in it...
    pub watched: u32,
    /// ...and those that lead to a peer (connections, pipes to other processes).
    pub peers: u32,
    /// Its descriptor number (absent in recordings made before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epfd: Option<i32>,
    /// It holds a listener, or two connections or network sockets or more (`serves_many`):
    /// the poller the program serves from, as opposed to one a runtime keeps for itself or
    /// makes for a moment (on a child's pipes), or a worker's on its one connection.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub serves: bool,
}

/// A cgroup whose CPU quota limits processes of the tree: the tightest quota among the
/// cgroup a process is in and its ancestors (the one in force).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CgroupInfo {
    /// The sampler's number for it, unique within a measurement.
    pub id: u32,
    /// Its path in the cgroup hierarchy ("/kubepods/pod1/ctr", "/system.slice/app.service").
    pub path: String,
    /// 1 or 2.
    pub version: u8,
    /// quota / period: the cores' worth of CPU time it may use.
    pub quota_cores: f64,
    pub period_ns: u64,
}

/// A cgroup's cumulative counters at one tick.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct CgroupSample {
    pub id: u32,
    /// Periods in which it was throttled (cpu.stat nr_throttled).
    pub nr_throttled: u64,
    /// Time throttled, ns (v1 throttled_time; v2 throttled_usec x 1000).
    pub throttled_ns: u64,
    /// CPU the whole cgroup used, ns (v2 cpu.stat usage_usec, v1 cpuacct.usage), when
    /// readable: it counts processes outside the tree too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_ns: Option<u64>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct ProcessCpu {
    pub pid: i32,
    pub cpu_ns: u64,
    /// Started after sampling began: all of its CPU belongs to the measurement.
    pub born_during: bool,
}

impl TickSnapshot {
    pub fn clear(&mut self) {
        self.outside_peers.clear();
        self.new_processes.clear();
        self.threads.clear();
        self.exited.clear();
        self.process_cpu.clear();
        self.new_cgroups.clear();
        self.cgroups.clear();
        self.polls.clear();
        self.stacks_requested = false;
        self.stacks = None;
        self.new_devices.clear();
        self.disks.clear();
        self.listeners.clear();
    }
}

/// Facts about a process, read once when it is first seen and again after an exec.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProcessInfo {
    pub pid: i32,
    /// Start time in clock ticks after boot: with the PID, the process's identity.
    #[serde(default)]
    pub start_ticks: u64,
    pub ppid: i32,
    pub command: Vec<String>,
    /// Target of /proc/PID/exe, when readable.
    #[serde(default)]
    pub exe: Option<String>,
    /// Shared objects mapped into the process (file names only), for runtime detection.
    #[serde(default)]
    pub libraries: Vec<String>,
    /// The executable has a .go.buildinfo section (a Go program).
    #[serde(default)]
    pub go_buildinfo: bool,
    /// The cgroup whose CPU quota is in force for it (see `CgroupInfo`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<u32>,
}

/// How the thread was first seen: it tells the accountant where its first interval starts.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Sighting {
    /// Seen before: the interval runs from the previous observation.
    Continuing,
    /// First sight of a thread born during sampling, at this time (ns since sampling started):
    /// its whole CPU and run-queue counters belong to the measurement.
    BornAt(u64),
    /// First sight of a thread that existed before sampling (attach): only a baseline.
    Baseline,
}

/// One thread at one tick.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ThreadObservation {
    pub pid: i32,
    pub tid: i32,
    /// When this thread's counters were read (ns since sampling started).
    pub at_ns: u64,
    pub sighting: Sighting,
    /// Thread name, present on first sight and when it changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comm: Option<String>,
    /// Cumulative on-CPU nanoseconds (schedstat field 1).
    pub cpu_ns: u64,
    /// Cumulative nanoseconds spent runnable but waiting for a CPU (schedstat field 2).
    pub runqueue_ns: u64,
    /// Cumulative number of times the thread was scheduled onto a CPU (schedstat field 3).
    #[serde(default)]
    pub timeslices: u64,
    /// What the thread was doing; absent when it has not run since its previous observation
    /// (its counters did not move), so it is still in the state seen then. Boxed: most
    /// observations of a large tree have none, and a snapshot holds one per thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<Box<ThreadState>>,
}

/// What a thread was doing at the instant of the sample.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ThreadState {
    /// The state letter of /proc/PID/task/TID/stat (R, S, D, T, Z, ...).
    pub letter: char,
    pub syscall: SyscallState,
    /// Kernel function the thread sleeps in (/proc/PID/task/TID/wchan), when readable and not "0".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wchan: Option<String>,
    /// What the file descriptors the blocking call waits on are (first argument, or the set
    /// watched by poll/select/epoll).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fds: Vec<FdKind>,
    /// For a wait on a set of descriptors (epoll, poll, select): how many the set holds...
    #[serde(default, skip_serializing_if = "is_zero")]
    pub watched: u32,
    /// ...and how many of them lead to a peer (a connected TCP or UDP socket, a pipe or Unix
    /// socket to another process): the waits an event loop overlaps. Estimated from the
    /// first descriptors resolved when the set is large.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub watched_peers: u32,
    /// The descriptor written to was opened with O_SYNC or O_DSYNC: each write waits for the
    /// device.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fd_sync: bool,
    /// For a blocking read or write on one pipe or socket: the processes holding its other end
    /// (in the tree; for a loopback TCP connection, any visible process).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<i32>,
    /// The mount of the first file among those descriptors (a regular file, directory or
    /// block device), from /proc/PID/mountinfo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount: Option<Arc<FileMount>>,
    /// Who stopped the thread, when it was stopped (state T or t, or a frozen cgroup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_by: Option<Stopper>,
    /// How many of the descriptors waited on are served ones (`FdKind::is_served`; absent
    /// in recordings made before it was counted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served: Option<u32>,
}

/// See `ThreadState::serves_many`; without a count (older recordings), any served descriptor.
pub fn serves_many(kinds: &[FdKind], served: Option<u32>) -> bool {
    let listens = kinds
        .iter()
        .any(|kind| matches!(kind, FdKind::TcpListener | FdKind::UnixListener));
    match served {
        Some(count) => listens || count >= 2,
        None => kinds.iter().any(|kind| kind.is_served()),
    }
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}

impl ThreadState {
    /// Whether the set it waits on serves many: a listener (every client to come), or two
    /// connections or more. A process that serves one connection from its poller (a
    /// PostgreSQL backend, a prefork worker) is one worker of many, not an event loop.
    pub fn serves_many(&self) -> bool {
        serves_many(&self.fds, self.served)
    }

    pub fn running() -> Self {
        ThreadState {
            letter: 'R',
            syscall: SyscallState::NotRead,
            wchan: None,
            fds: Vec::new(),
            watched: 0,
            watched_peers: 0,
            fd_sync: false,
            peers: Vec::new(),
            mount: None,
            stopped_by: None,
            served: None,
        }
    }
}

/// The mount a file lives on, as /proc/PID/mountinfo describes it (never from a stat).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct FileMount {
    /// Where it is mounted, as the process sees it.
    pub point: String,
    /// The filesystem type, with a FUSE subtype: ext4, nfs4, cifs, fuse.sshfs.
    pub fs_type: String,
    /// What is mounted: a device, `server:/export`, a FUSE daemon's name.
    #[serde(default)]
    pub source: String,
    /// major:minor of the filesystem (the st_dev of its files).
    #[serde(default)]
    pub device: String,
    /// A network filesystem: NFS, SMB, Ceph, 9p, GlusterFS, Lustre, or FUSE of a network kind.
    #[serde(default)]
    pub network: bool,
    /// Mounted with online discard (`discard`, `discard=sync`): deleting a file's blocks
    /// waits for the device to trim them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub discard: bool,
}

/// Who or what stopped a thread.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case", tag = "by")]
pub enum Stopper {
    /// A stop signal: SIGSTOP, or job control (Ctrl-Z, SIGTTIN, SIGTTOU).
    Signal,
    /// A tracer (a debugger, strace) holds it stopped: TracerPid of its status, and its name.
    Tracer {
        pid: i32,
        #[serde(default)]
        name: String,
    },
    /// Its cgroup is frozen (cgroup v1 freezer.state FROZEN, or v2 cgroup.events frozen 1).
    FrozenCgroup { cgroup: String },
}

/// The content of /proc/PID/task/TID/syscall.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum SyscallState {
    /// Not read: the thread was running, or unchanged since the last tick.
    NotRead,
    /// "running": the thread was on a CPU in user space.
    Running,
    /// Blocked inside a system call with these arguments.
    Blocked {
        #[serde(with = "sysno_by_name")]
        call: Sysno,
        args: [u64; 6],
    },
    /// A syscall number this build does not know.
    BlockedUnknown { nr: i64 },
    /// "-1 SP PC": blocked outside any system call (a page fault, for instance).
    OutsideSyscall,
    /// The file could not be read for lack of permission (ptrace access).
    Denied,
}

/// What kind of file a file descriptor refers to.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum FdKind {
    RegularFile,
    BlockDevice,
    Terminal,
    CharDevice,
    Pipe,
    /// A pipe or Unix socket whose other end the same process holds (an event loop's
    /// self-pipe, which asyncio makes from a Unix socketpair): waking itself, not IPC.
    SelfPipe,
    Fifo,
    TcpSocket,
    TcpListener,
    /// A TCP connection accepted from a listening socket of the same address: its other end
    /// is a client, and waiting to read from it is a server waiting for its next request.
    TcpAccepted,
    UdpSocket,
    UnixSocket,
    /// A listening Unix stream socket: waiting on it is a server waiting for a client.
    UnixListener,
    /// A Unix stream connection accepted from a listening socket (the kernel lists it under
    /// the listener's path): its other end is a client, and waiting to read from it is a
    /// server waiting for its next request.
    UnixAccepted,
    OtherSocket,
    Epoll,
    EventFd,
    TimerFd,
    SignalFd,
    Inotify,
    IoUring,
    Directory,
    /// A regular file or directory on a network filesystem (see `FileMount::network`).
    NetworkFile,
    Other,
    /// The descriptor could not be resolved (closed meanwhile, or no permission).
    Unknown,
}

impl FdKind {
    /// A listener, a connection accepted from one, or a network socket: what a program
    /// serves or talks to the world on. A Unix socket to another process is not one: like a
    /// pipe, it is a channel to a local process (libuv's pipes to a child are socketpairs).
    pub fn is_served(self) -> bool {
        matches!(
            self,
            FdKind::TcpSocket
                | FdKind::TcpListener
                | FdKind::TcpAccepted
                | FdKind::UdpSocket
                | FdKind::UnixListener
                | FdKind::UnixAccepted
        )
    }
}

/// Syscalls are recorded by name so fixtures read the same on every architecture.
mod sysno_by_name {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};
    use syscalls::Sysno;

    pub fn serialize<S: Serializer>(call: &Sysno, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(call.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Sysno, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse()
            .map_err(|_| D::Error::custom(format!("unknown syscall name {name:?}")))
    }
}
