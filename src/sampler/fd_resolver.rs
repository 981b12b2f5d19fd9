//! Finds which descriptors a blocked syscall waits on and what each one is (file, socket, pipe, tty...), without touching the filesystems they live on.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use syscalls::Sysno;

use super::mounts::{self, FsClass, MountTable};
use super::observation::{FdKind, FileMount};
use super::offload::Offload;
use super::peers::Peers;
use super::proc_file::{read_once, ProcFile, ReadFailure};

/// At most this many descriptors are resolved for one wait (poll/select/epoll sets can be large).
const MAX_FDS_PER_WAIT: usize = 32;
/// Socket tables are re-read at most this often when an unknown socket shows up.
const SOCKET_TABLE_REFRESH: Duration = Duration::from_millis(200);

/// Which arguments of a blocked syscall name descriptors.
#[derive(Debug, PartialEq, Eq)]
pub enum FdSpec {
    None,
    Fds(Vec<i32>),
    /// epoll_wait on this epoll descriptor: the watched set is in /proc/PID/fdinfo/EPFD.
    Epoll(i32),
    /// poll/ppoll: an array of `struct pollfd` in the process's memory.
    PollArray {
        address: u64,
        count: u64,
    },
    /// select/pselect6: up to three fd_set bitmaps in the process's memory.
    SelectSets {
        nfds: u64,
        sets: [u64; 3],
    },
}

pub fn fd_spec(call: Sysno, args: &[u64; 6]) -> FdSpec {
    use Sysno::*;
    let fd = |i: usize| args[i] as i64 as i32;
    match call {
        read | write | readv | writev | pread64 | pwrite64 | preadv | pwritev | preadv2
        | pwritev2 | recvfrom | recvmsg | recvmmsg | sendto | sendmsg | sendmmsg | accept
        | accept4 | connect | fsync | fdatasync | sync_file_range | fallocate | ftruncate
        | flock | fcntl | getdents64 | ioctl | io_uring_enter | shutdown => {
            FdSpec::Fds(vec![fd(0)])
        }
        sendfile => FdSpec::Fds(vec![fd(0), fd(1)]),
        splice | copy_file_range => FdSpec::Fds(vec![fd(0), fd(2)]),
        tee => FdSpec::Fds(vec![fd(0), fd(1)]),
        epoll_wait | epoll_pwait | epoll_pwait2 => FdSpec::Epoll(fd(0)),
        poll | ppoll => FdSpec::PollArray {
            address: args[0],
            count: args[1],
        },
        select | pselect6 => FdSpec::SelectSets {
            nfds: args[0],
            sets: [args[1], args[2], args[3]],
        },
        _ => FdSpec::None,
    }
}

/// A process's /proc/PID/mem, opened on first need (poll and select keep their sets in memory).
#[derive(Default)]
struct LazyMem {
    opened: Option<Option<ProcFile>>,
}

impl LazyMem {
    fn get(&mut self, pid: i32) -> Option<&ProcFile> {
        self.opened
            .get_or_insert_with(|| ProcFile::open(&PathBuf::from(format!("/proc/{pid}/mem"))).ok())
            .as_ref()
    }
}

/// A file by its mount ID and inode number (from fdinfo): what a stat on a helper thread is
/// asked about, and the key of its answer.
type FileKey = (i32, u64);

/// What one descriptor of a process was found to be, while its link text stays the same.
struct KnownFd {
    link: String,
    kind: FdKind,
    mount: Option<Arc<FileMount>>,
    /// A stat was asked for; until it answers, `kind` is provisional.
    pending: Option<FileKey>,
    /// Worth keeping (its fdinfo was read).
    cacheable: bool,
}

/// What the resolver keeps per process: its memory file (opened lazily), its mount namespace,
/// and what its descriptors were found to be. Dropped with the process, renewed at exec.
#[derive(Default)]
pub struct ProcessFiles {
    mem: LazyMem,
    mount_space: Option<u64>,
    fds: HashMap<i32, KnownFd>,
}

impl ProcessFiles {
    /// The process's mount namespace (read once).
    pub fn mount_space(&mut self, pid: i32) -> u64 {
        *self
            .mount_space
            .get_or_insert_with(|| mounts::mount_namespace(pid))
    }
}

/// What a stat on a helper thread found.
struct TypeAnswer {
    key: FileKey,
    kind: Option<FdKind>,
}

/// Resolves descriptors to kinds without reaching their filesystems: link texts, fdinfo,
/// mount tables and socket tables; a stat, where only a stat can tell (a FIFO or a device
/// node on a local filesystem), is asked of a helper thread and its answer used from then on.
pub struct FdResolver {
    sockets: HashMap<u64, FdKind>,
    /// A connected TCP socket's inode -> its peer's, for connections whose two ends are both
    /// in this network namespace (loopback).
    tcp_peers: HashMap<u64, u64>,
    sockets_read_at: Option<Instant>,
    peers: Peers,
    buf: Vec<u8>,
    /// Set when a descriptor could not be inspected for lack of permission.
    pub denied: bool,
    pub mounts: MountTable,
    /// Answers of the helper's stats, and the questions still open.
    types: HashMap<FileKey, FdKind>,
    asked: HashSet<FileKey>,
    stats: Offload<TypeAnswer>,
    /// Stats that could not be asked (the helpers were stuck) or found another file.
    unanswered: u64,
    /// The inode of the pipe or socket `kind_of` last resolved.
    last_inode: Option<u64>,
}

impl Default for FdResolver {
    fn default() -> Self {
        FdResolver {
            sockets: HashMap::new(),
            tcp_peers: HashMap::new(),
            sockets_read_at: None,
            peers: Peers::default(),
            buf: Vec::new(),
            denied: false,
            mounts: MountTable::default(),
            types: HashMap::new(),
            asked: HashSet::new(),
            stats: Offload::new("concadvise-stat"),
            unanswered: 0,
            last_inode: None,
        }
    }
}

/// O_DIRECTORY in fdinfo's octal `flags`: opened as a directory (opendir).
const O_DIRECTORY: u32 = 0o200000;
/// O_DSYNC in fdinfo's `flags` (O_SYNC includes it): every write waits for the disk.
const O_DSYNC: u32 = 0o10000;

/// What a blocked syscall waits on.
#[derive(Debug, Default, PartialEq)]
pub struct WaitTargets {
    /// The kinds of the descriptors, each once.
    pub kinds: Vec<FdKind>,
    /// The mount of the first file among them.
    pub mount: Option<Arc<FileMount>>,
    /// For a set (epoll, poll, select): its size, and how many lead to a peer.
    pub watched: u32,
    pub watched_peers: u32,
    /// How many of the descriptors are served ones (listeners, connections, network sockets).
    pub served: u32,
    /// A write to a regular file opened with O_SYNC or O_DSYNC.
    pub fd_sync: bool,
    /// A single descriptor waited on that is a pipe or a socket: its kind and inode, to find
    /// the process at its other end.
    pub conversation: Option<(FdKind, u64)>,
}

/// Whether a descriptor of this kind is a conversation with someone else.
fn leads_to_peer(kind: FdKind) -> bool {
    matches!(
        kind,
        FdKind::TcpSocket
            | FdKind::TcpAccepted
            | FdKind::UdpSocket
            | FdKind::Pipe
            | FdKind::Fifo
            | FdKind::UnixSocket
            | FdKind::UnixAccepted
    )
}

impl FdResolver {
    /// What a blocked syscall waits on: the kinds of its descriptors, the mount of the first
    /// file among them, a set's size and peers, a sync write, a conversation. `letter` is the
    /// thread's state: an interruptible wait on a path of a local filesystem is a FIFO or a
    /// device rather than a file, which only a stat tells.
    // Long because the kinds, the first file's mount, the conversation and the set's share of
    // peers all come from one pass over the descriptors, whose running state they share.
    pub fn resolve(
        &mut self,
        pid: i32,
        call: Sysno,
        args: &[u64; 6],
        files: &mut ProcessFiles,
        letter: char,
    ) -> WaitTargets {
        let spec = fd_spec(call, args);
        let is_set = matches!(
            spec,
            FdSpec::Epoll(_) | FdSpec::PollArray { .. } | FdSpec::SelectSets { .. }
        );
        let fds = match spec {
            FdSpec::None => return WaitTargets::default(),
            FdSpec::Fds(fds) => fds,
            FdSpec::Epoll(epfd) => self.epoll_targets(pid, epfd),
            FdSpec::PollArray { address, count } => match files.mem.get(pid) {
                Some(mem) => poll_fds(mem, address, count),
                None => Vec::new(),
            },
            FdSpec::SelectSets { nfds, sets } => match files.mem.get(pid) {
                Some(mem) => select_fds(mem, nfds, &sets),
                None => Vec::new(),
            },
        };
        self.take_answers();
        let fds: Vec<i32> = fds.into_iter().filter(|fd| *fd >= 0).collect();
        let mut targets = WaitTargets::default();
        let mut resolved = 0u32;
        let mut peers = 0u32;
        for &fd in fds.iter().take(MAX_FDS_PER_WAIT) {
            let (kind, mount) = self.kind_of(pid, fd, files, letter == 'S');
            if targets.mount.is_none() {
                targets.mount = mount;
            }
            // A poll or select on one descriptor (a client waiting for its server's answer,
            // with a timeout) is a conversation too.
            let single = !is_set || fds.len() == 1;
            if single && targets.conversation.is_none() && leads_to_peer(kind) {
                targets.conversation = self.last_inode.map(|inode| (kind, inode));
            }
            resolved += 1;
            peers += u32::from(leads_to_peer(kind));
            targets.served += u32::from(kind.is_served());
            if !targets.kinds.contains(&kind) {
                targets.kinds.push(kind);
            }
        }
        let writes = matches!(
            call,
            Sysno::write | Sysno::writev | Sysno::pwrite64 | Sysno::pwritev | Sysno::pwritev2
        );
        if writes && targets.kinds == [FdKind::RegularFile] {
            if let Some(&fd) = fds.first() {
                targets.fd_sync = self.opened_sync(pid, fd);
            }
        }
        if is_set {
            targets.watched = fds.len() as u32;
            // Past the descriptors resolved, assume the same mix.
            targets.watched_peers = if resolved > 0 {
                (u64::from(peers) * fds.len() as u64 / u64::from(resolved)) as u32
            } else {
                0
            };
        }
        targets
    }

    /// The processes at the other end of a conversation of process `pid` (see
    /// `WaitTargets::conversation`): those of `tree` that hold the pipe's other end or the
    /// socket's peer; for a loopback TCP connection no process of the tree holds, the process
    /// on this machine that does, when it is visible.
    pub fn peer_processes(
        &mut self,
        pid: i32,
        conversation: (FdKind, u64),
        tree: &[i32],
    ) -> Vec<i32> {
        let (kind, inode) = conversation;
        let others: Vec<i32> = tree.iter().copied().filter(|p| *p != pid).collect();
        match kind {
            FdKind::Pipe | FdKind::Fifo => self.peers.holders_of_pipe(inode, &others),
            // A Unix socket to a process outside the tree (a database server on its local
            // socket): that process, when it is visible.
            FdKind::UnixSocket | FdKind::UnixAccepted => match self.peers.unix_peer(inode) {
                Some(peer) => {
                    let holders = self.peers.holders_of_socket(peer, &others);
                    if holders.is_empty() {
                        self.peers
                            .visible_holder_of_socket(peer)
                            .filter(|holder| *holder != pid)
                            .into_iter()
                            .collect()
                    } else {
                        holders
                    }
                }
                None => Vec::new(),
            },
            FdKind::TcpSocket | FdKind::TcpAccepted => match self.tcp_peers.get(&inode).copied() {
                Some(peer) => {
                    let holders = self.peers.holders_of_socket(peer, &others);
                    if holders.is_empty() {
                        // A server in the process itself (another thread) is no other process.
                        self.peers
                            .visible_holder_of_socket(peer)
                            .filter(|holder| *holder != pid)
                            .into_iter()
                            .collect()
                    } else {
                        holders
                    }
                }
                None => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    /// Whether descriptor `fd` was opened with O_SYNC or O_DSYNC (from its fdinfo).
    fn opened_sync(&mut self, pid: i32, fd: i32) -> bool {
        let path = PathBuf::from(format!("/proc/{pid}/fdinfo/{fd}"));
        read_once(&path, &mut self.buf).is_ok()
            && parse_fdinfo(&String::from_utf8_lossy(&self.buf))
                .is_some_and(|info| info.flags & O_DSYNC != 0)
    }

    /// Lookups that needed a stat and did not get one: refused, unanswered so far, or
    /// answered about another file.
    pub fn unresolved(&mut self) -> u64 {
        self.take_answers();
        self.unanswered + self.stats.pending() as u64
    }

    fn take_answers(&mut self) {
        for answer in self.stats.answers() {
            match answer.kind {
                Some(kind) => {
                    self.types.insert(answer.key, kind);
                }
                None => self.unanswered += 1,
            }
        }
    }

    fn epoll_targets(&mut self, pid: i32, epfd: i32) -> Vec<i32> {
        let path = PathBuf::from(format!("/proc/{pid}/fdinfo/{epfd}"));
        match read_once(&path, &mut self.buf) {
            Ok(()) => parse_epoll_fdinfo(&String::from_utf8_lossy(&self.buf)),
            Err(ReadFailure::Denied) => {
                self.denied = true;
                Vec::new()
            }
            Err(_) => Vec::new(),
        }
    }

    /// What descriptor `fd` of process `pid` is, and the mount of its file if it has one.
    /// Reads only /proc (its readlink does not reach the file's filesystem).
    fn kind_of(
        &mut self,
        pid: i32,
        fd: i32,
        files: &mut ProcessFiles,
        interruptible: bool,
    ) -> (FdKind, Option<Arc<FileMount>>) {
        self.last_inode = None;
        let link = PathBuf::from(format!("/proc/{pid}/fd/{fd}"));
        let target = match fs::read_link(&link) {
            Ok(target) => target,
            Err(error) => {
                if matches!(ReadFailure::from(error), ReadFailure::Denied) {
                    self.denied = true;
                }
                return (FdKind::Unknown, None);
            }
        };
        let target = target.to_string_lossy();
        if let Some(inode) = bracketed_number(&target, "socket:[") {
            self.last_inode = Some(inode);
            let kind = self.socket_kind(pid, fd, inode);
            let unix = matches!(kind, FdKind::UnixSocket | FdKind::UnixAccepted);
            if unix && self.peers.unix_is_self(pid, inode) == Some(true) {
                return (FdKind::SelfPipe, None);
            }
            return (kind, None);
        }
        if let Some(inode) = bracketed_number(&target, "pipe:[") {
            self.last_inode = Some(inode);
            if self.peers.pipe_is_self(pid, inode) == Some(true) {
                return (FdKind::SelfPipe, None);
            }
            return (FdKind::Pipe, None);
        }
        if let Some(kind) = kind_from_link_text(&target) {
            return (kind, None);
        }
        // Namespaces ("net:[...]") and other kernel objects; memfd's hidden mount.
        if !target.starts_with('/') {
            return (FdKind::Other, None);
        }
        if target.starts_with("/memfd:") {
            return (FdKind::RegularFile, None);
        }
        if let Some(known) = files.fds.get_mut(&fd).filter(|known| known.link == target) {
            if let Some(kind) = known.pending.and_then(|key| self.types.get(&key)) {
                known.kind = *kind;
                known.pending = None;
            }
            return (known.kind, known.mount.clone());
        }
        let known = self.path_kind(pid, fd, target.into_owned(), files, interruptible);
        let answer = (known.kind, known.mount.clone());
        if let Some(known) = known.cacheable.then_some(known) {
            files.fds.insert(fd, known);
        }
        answer
    }

    /// What descriptor `fd` with link text `target` (a path) is: its fdinfo's flags and mount
    /// ID, that mount's class; for a FIFO or device suspect on a local filesystem, a stat on
    /// a helper thread (the kind is provisional until it answers).
    // Long because most of it is the table of what each mount class makes of a descriptor, and
    // the stat asked of a helper when the class cannot tell.
    fn path_kind(
        &mut self,
        pid: i32,
        fd: i32,
        target: String,
        files: &mut ProcessFiles,
        interruptible: bool,
    ) -> KnownFd {
        let fdinfo = PathBuf::from(format!("/proc/{pid}/fdinfo/{fd}"));
        let Some(info) = read_once(&fdinfo, &mut self.buf)
            .ok()
            .and_then(|()| parse_fdinfo(&String::from_utf8_lossy(&self.buf)))
        else {
            // Closed meanwhile: nothing to keep.
            return KnownFd {
                link: target,
                kind: FdKind::Unknown,
                mount: None,
                pending: None,
                cacheable: false,
            };
        };
        let space = files.mount_space(pid);
        let mount = self.mounts.by_id(pid, space, info.mnt_id);
        let directory = info.flags & O_DIRECTORY != 0;
        let class = mount.as_ref().map(|m| m.class);
        let file = if directory {
            FdKind::Directory
        } else {
            FdKind::RegularFile
        };
        let (mut kind, needs_stat) = match class {
            // Not in the mount table (outside the process's root): never touched.
            None | Some(FsClass::Fuse) => (file, false),
            Some(FsClass::Network) => (FdKind::NetworkFile, false),
            Some(FsClass::Pseudo) => (FdKind::Other, false),
            Some(FsClass::Devices) => (FdKind::Unknown, true),
            Some(FsClass::Local) if target.starts_with("/dev/") => (FdKind::Unknown, true),
            Some(FsClass::Local) if directory || !interruptible => (file, false),
            // A read that sleeps interruptibly on a local path: a FIFO or a device rather
            // than a file (whose reads sleep uninterruptibly). Until the stat answers, the
            // thread's other clues (wchan) decide.
            Some(FsClass::Local) => (FdKind::Unknown, true),
        };
        let mut pending = None;
        if needs_stat {
            let key = (info.mnt_id, info.ino);
            match self.types.get(&key) {
                Some(answer) => kind = *answer,
                None => {
                    pending = Some(key);
                    self.ask_type(pid, fd, key);
                }
            }
        }
        KnownFd {
            link: target,
            kind,
            mount: mount.map(|m| Arc::clone(&m.named)),
            pending,
            cacheable: true,
        }
    }

    /// Asks a helper thread what file `key` (descriptor `fd` of `pid`) is, once.
    fn ask_type(&mut self, pid: i32, fd: i32, key: FileKey) {
        if !self.asked.insert(key) {
            return;
        }
        let asked = self.stats.submit(move || TypeAnswer {
            key,
            kind: stat_type(pid, fd, key),
        });
        if asked.is_err() {
            self.unanswered += 1;
        }
    }

    /// The kind of socket `inode` (descriptor `fd` of `pid`): its protocol from the socket
    /// itself (see `socket_protocol`), and for TCP and Unix sockets whether it listens or was
    /// accepted, from the namespace's socket tables (re-read at most every 200 ms; a socket
    /// not found meanwhile counts as a connected one). Without the protocol, the tables alone
    /// decide; a socket that none of them lists is another kind (netlink, packet...).
    fn socket_kind(&mut self, pid: i32, fd: i32, inode: u64) -> FdKind {
        if let Some(kind) = self.sockets.get(&inode) {
            return *kind;
        }
        let protocol = socket_protocol(pid, fd, inode);
        let unix = protocol.as_deref().is_some_and(|p| p.starts_with("UNIX"));
        let kind = match protocol.as_deref() {
            Some(p) if p.starts_with("UNIX") => None,
            Some(p) if p.starts_with("UDP") => Some(FdKind::UdpSocket),
            Some(p) if !p.starts_with("TCP") && !p.starts_with("MPTCP") => {
                Some(FdKind::OtherSocket)
            }
            _ => None,
        };
        if let Some(kind) = kind {
            self.sockets.insert(inode, kind);
            return kind;
        }
        let stale = self
            .sockets_read_at
            .is_none_or(|at| at.elapsed() >= SOCKET_TABLE_REFRESH);
        if stale {
            (self.sockets, self.tcp_peers) = read_socket_tables(pid);
            self.sockets_read_at = Some(Instant::now());
        }
        match (self.sockets.get(&inode), protocol) {
            (Some(kind), _) => *kind,
            (None, Some(_)) if unix => FdKind::UnixSocket,
            (None, Some(_)) => FdKind::TcpSocket,
            (None, None) if stale => *self.sockets.entry(inode).or_insert(FdKind::OtherSocket),
            (None, None) => FdKind::Unknown,
        }
    }
}

/// The protocol of socket `inode`, descriptor `fd` of `pid` ("TCP", "UNIX", "UDPv6"...), from
/// its `system.sockprotoname` attribute. Read from a duplicate of the descriptor
/// (pidfd_getfd), checked to be that very socket first: a getxattr through /proc/PID/fd/N
/// would follow whatever the descriptor names by then, and if the program had meanwhile
/// reused it for a file on a hung FUSE or NFS mount, it would wait on that filesystem.
/// `None` where the duplicate is refused (it needs ptrace attach rights) or it is another file.
fn socket_protocol(pid: i32, fd: i32, inode: u64) -> Option<String> {
    use rustix::process::{pidfd_getfd, pidfd_open, Pid, PidfdFlags, PidfdGetfdFlags};
    use std::os::fd::AsRawFd;
    let pidfd = pidfd_open(Pid::from_raw(pid)?, PidfdFlags::empty()).ok()?;
    let dup = pidfd_getfd(&pidfd, fd, PidfdGetfdFlags::empty()).ok()?;
    let ours = fs::read_link(format!("/proc/self/fd/{}", dup.as_raw_fd())).ok()?;
    if ours.to_string_lossy() != format!("socket:[{inode}]") {
        return None;
    }
    let mut name = [0u8; 32];
    let length = rustix::fs::fgetxattr(&dup, "system.sockprotoname", &mut name).ok()?;
    let name = name.get(..length)?;
    Some(
        String::from_utf8_lossy(name)
            .trim_end_matches('\0')
            .to_string(),
    )
}

/// The fields of /proc/PID/fdinfo/N the resolver uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdInfo {
    /// The open flags (fdinfo writes them in octal).
    pub flags: u32,
    pub mnt_id: i32,
    /// The inode number (0 on kernels before 5.14, which do not print it).
    pub ino: u64,
}

/// "pos: 0\nflags: 02100000\nmnt_id: 27\nino: 737\n..."; `None` without flags or mnt_id.
pub fn parse_fdinfo(text: &str) -> Option<FdInfo> {
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    Some(FdInfo {
        flags: u32::from_str_radix(field("flags")?, 8).ok()?,
        mnt_id: field("mnt_id")?.parse().ok()?,
        ino: field("ino").and_then(|ino| ino.parse().ok()).unwrap_or(0),
    })
}

/// On a helper thread: the type of descriptor `fd` of `pid`, if it is still the file `key`
/// that the sampler checked (its mount may be touched). The descriptor is opened with O_PATH
/// through the /proc link (no open of the file itself), checked against `key` in our own
/// fdinfo, and stat'ed with AT_STATX_DONT_SYNC (no round trip to revalidate).
fn stat_type(pid: i32, fd: i32, key: FileKey) -> Option<FdKind> {
    use rustix::fs::{AtFlags, FileType, Mode, OFlags, StatxFlags, CWD};
    let mut buf = Vec::new();
    let same_file = |path: &str, buf: &mut Vec<u8>| {
        read_once(&PathBuf::from(path), buf).is_ok()
            && parse_fdinfo(&String::from_utf8_lossy(buf))
                .is_some_and(|info| (info.mnt_id, info.ino) == key)
    };
    // Still the same file (the descriptor may have been closed and reused meanwhile)?
    if !same_file(&format!("/proc/{pid}/fdinfo/{fd}"), &mut buf) {
        return None;
    }
    let path = rustix::fs::openat(
        CWD,
        format!("/proc/{pid}/fd/{fd}"),
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let ours = format!(
        "/proc/self/fdinfo/{}",
        std::os::fd::AsRawFd::as_raw_fd(&path)
    );
    if !same_file(&ours, &mut buf) {
        return None;
    }
    let stat = rustix::fs::statx(
        &path,
        "",
        AtFlags::EMPTY_PATH | AtFlags::STATX_DONT_SYNC,
        StatxFlags::TYPE,
    )
    .ok()?;
    Some(match FileType::from_raw_mode(u32::from(stat.stx_mode)) {
        FileType::RegularFile => FdKind::RegularFile,
        FileType::Directory => FdKind::Directory,
        FileType::Fifo => FdKind::Fifo,
        FileType::BlockDevice => FdKind::BlockDevice,
        FileType::CharacterDevice => FdKind::CharDevice,
        FileType::Socket => FdKind::UnixSocket,
        _ => FdKind::Other,
    })
}

/// The socket tables of the network namespace `pid` lives in: each socket's kind by inode,
/// and the TCP connections whose two ends are both in it (by inode, each to its peer's).
fn read_socket_tables(pid: i32) -> (HashMap<u64, FdKind>, HashMap<u64, u64>) {
    let mut map = HashMap::new();
    let mut peers = HashMap::new();
    let Ok(process) = procfs::process::Process::new(pid) else {
        return (map, peers);
    };
    let mut by_endpoints = HashMap::new();
    let mut connected = Vec::new();
    let mut listening = Vec::new();
    for table in [process.tcp(), process.tcp6()].into_iter().flatten() {
        for entry in table {
            if entry.state == procfs::net::TcpState::Listen {
                listening.push(entry.local_address);
                map.insert(entry.inode, FdKind::TcpListener);
            } else {
                by_endpoints.insert((entry.local_address, entry.remote_address), entry.inode);
                connected.push((entry.inode, entry.local_address, entry.remote_address));
            }
        }
    }
    for &(inode, local, _) in &connected {
        // A connection whose local end is a listening address was accepted there: its other
        // end is a client.
        let accepted = listening.iter().any(|listener| {
            listener.port() == local.port()
                && (listener.ip() == local.ip() || listener.ip().is_unspecified())
        });
        let kind = if accepted {
            FdKind::TcpAccepted
        } else {
            FdKind::TcpSocket
        };
        map.insert(inode, kind);
    }
    for (inode, local, remote) in connected {
        if let Some(peer) = by_endpoints.get(&(remote, local)) {
            // Inode 0: a socket no process holds any more (TIME_WAIT and the like).
            if inode != 0 && *peer != 0 {
                peers.insert(inode, *peer);
            }
        }
    }
    for table in [process.udp(), process.udp6()].into_iter().flatten() {
        for entry in table {
            map.insert(entry.inode, FdKind::UdpSocket);
        }
    }
    if let Ok(table) = process.unix() {
        for entry in table {
            map.insert(entry.inode, unix_socket_kind(&entry));
        }
    }
    (map, peers)
}

/// A Unix socket's kind from its line in /proc/net/unix. Only a server's stream sockets carry
/// a path there: its listening socket (unconnected) and the connections it accepted (which
/// the kernel lists under the listener's path); a client's connected end has none.
fn unix_socket_kind(entry: &procfs::net::UnixNetEntry) -> FdKind {
    let stream = matches!(
        i32::from(entry.socket_type),
        nix::libc::SOCK_STREAM | nix::libc::SOCK_SEQPACKET
    );
    match (&entry.path, &entry.state) {
        (Some(_), procfs::net::UnixState::UNCONNECTED) if stream => FdKind::UnixListener,
        (Some(_), procfs::net::UnixState::CONNECTED) if stream => FdKind::UnixAccepted,
        _ => FdKind::UnixSocket,
    }
}

/// Kinds that the link text alone tells (pipes, anonymous inodes, terminals).
fn kind_from_link_text(target: &str) -> Option<FdKind> {
    if target.starts_with("pipe:[") {
        return Some(FdKind::Pipe);
    }
    if let Some(anon) = target.strip_prefix("anon_inode:") {
        return Some(match anon.trim_matches(|c| c == '[' || c == ']') {
            "eventpoll" => FdKind::Epoll,
            "eventfd" => FdKind::EventFd,
            "timerfd" => FdKind::TimerFd,
            "signalfd" => FdKind::SignalFd,
            "inotify" => FdKind::Inotify,
            "io_uring" => FdKind::IoUring,
            _ => FdKind::Other,
        });
    }
    let is_terminal = target.starts_with("/dev/pts/")
        || target.starts_with("/dev/tty")
        || target == "/dev/console"
        || target == "/dev/ptmx";
    is_terminal.then_some(FdKind::Terminal)
}

fn bracketed_number(text: &str, prefix: &str) -> Option<u64> {
    text.strip_prefix(prefix)?.strip_suffix(']')?.parse().ok()
}

/// The target descriptors in an epoll descriptor's fdinfo ("tfd:  5 events: 19 data: ...").
pub fn parse_epoll_fdinfo(text: &str) -> Vec<i32> {
    text.lines()
        .filter_map(|line| line.strip_prefix("tfd:"))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .collect()
}

fn poll_fds(mem: &ProcFile, address: u64, count: u64) -> Vec<i32> {
    // struct pollfd { int fd; short events; short revents; }: 8 bytes each.
    let count = count.min(MAX_FDS_PER_WAIT as u64) as usize;
    let mut raw = vec![0u8; count * 8];
    if address == 0 || mem.read_exact_at(&mut raw, address).is_err() {
        return Vec::new();
    }
    raw.chunks_exact(8)
        .map(|entry| i32::from_ne_bytes([entry[0], entry[1], entry[2], entry[3]]))
        .collect()
}

fn select_fds(mem: &ProcFile, nfds: u64, sets: &[u64; 3]) -> Vec<i32> {
    let nfds = nfds.min(1024) as usize;
    let bytes = nfds.div_ceil(64) * 8;
    let mut fds = Vec::new();
    let mut raw = vec![0u8; bytes];
    for &address in sets.iter().filter(|address| **address != 0) {
        if mem.read_exact_at(&mut raw, address).is_err() {
            continue;
        }
        fds.extend(set_bits(&raw, nfds));
    }
    fds.sort_unstable();
    fds.dedup();
    fds
}

/// Descriptor numbers whose bits are set in an fd_set bitmap (little-endian longs).
pub fn set_bits(raw: &[u8], nfds: usize) -> impl Iterator<Item = i32> + '_ {
    (0..nfds)
        .filter(move |fd| raw[fd / 8] & (1 << (fd % 8)) != 0)
        .map(|fd| fd as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoll_fdinfo_lists_target_descriptors() {
        let text = "pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t3109\n\
                    tfd:        5 events:       19 data:                5  pos:0 ino:2a5 sdev:8\n\
                    tfd:        7 events:       19 data:                7  pos:0 ino:2a7 sdev:8\n";
        assert_eq!(parse_epoll_fdinfo(text), vec![5, 7]);
    }

    #[test]
    fn link_texts_that_need_no_stat() {
        assert_eq!(kind_from_link_text("pipe:[1234]"), Some(FdKind::Pipe));
        assert_eq!(
            kind_from_link_text("anon_inode:[eventfd]"),
            Some(FdKind::EventFd)
        );
        assert_eq!(
            kind_from_link_text("anon_inode:inotify"),
            Some(FdKind::Inotify)
        );
        assert_eq!(kind_from_link_text("/dev/pts/3"), Some(FdKind::Terminal));
        assert_eq!(kind_from_link_text("/home/a/data.csv"), None);
        assert_eq!(bracketed_number("socket:[98765]", "socket:["), Some(98765));
    }

    #[test]
    fn fdinfo_fields() {
        let file = "pos:\t0\nflags:\t02100000\nmnt_id:\t27\nino:\t737\n";
        assert_eq!(
            parse_fdinfo(file),
            Some(FdInfo {
                flags: 0o2100000,
                mnt_id: 27,
                ino: 737
            })
        );
        let dir = parse_fdinfo("pos:\t0\nflags:\t02300000\nmnt_id:\t27\n").unwrap();
        assert_ne!(dir.flags & O_DIRECTORY, 0);
        assert_eq!(dir.ino, 0, "older kernels print no ino");
        assert_eq!(parse_fdinfo("pos:\t0\n"), None);
    }

    /// Resolves descriptor `fd` of this process until the answer is final (at most 5 s).
    fn settled_kind(fd: i32, interruptible: bool) -> (Vec<FdKind>, Option<Arc<FileMount>>) {
        let mut resolver = FdResolver::default();
        let mut files = ProcessFiles::default();
        let pid = std::process::id() as i32;
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut seen = Vec::new();
        loop {
            let (kind, mount) = resolver.kind_of(pid, fd, &mut files, interruptible);
            resolver.take_answers();
            seen.push(kind);
            if kind != FdKind::Unknown || Instant::now() > deadline {
                return (seen, mount);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn files_are_told_apart_from_fifos_through_mountinfo_and_a_helper_stat() {
        use std::os::fd::AsRawFd;
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::File::create(dir.path().join("data")).unwrap();
        // A read of a local file sleeps uninterruptibly: a file, no stat needed.
        let (seen, mount) = settled_kind(file.as_raw_fd(), false);
        assert_eq!(seen, vec![FdKind::RegularFile]);
        let mount = mount.expect("the file's mount is named");
        assert!(std::fs::canonicalize(dir.path())
            .unwrap()
            .starts_with(&mount.point));
        assert!(!mount.network);
        // A FIFO looks like a path too: an interruptible wait on it asks the helper, and
        // until it answers, the kind is left to the thread's other clues.
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let fifo = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .unwrap();
        let (seen, _) = settled_kind(fifo.as_raw_fd(), true);
        assert_eq!(seen.last(), Some(&FdKind::Fifo), "{seen:?}");
        assert_eq!(seen.first(), Some(&FdKind::Unknown));
        // opendir opens with O_DIRECTORY, which fdinfo's flags show.
        let directory = rustix::fs::open(
            dir.path(),
            rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::RDONLY,
            rustix::fs::Mode::empty(),
        )
        .unwrap();
        assert_eq!(
            settled_kind(directory.as_raw_fd(), false).0,
            vec![FdKind::Directory]
        );
    }

    /// The inode of this process's socket `fd`.
    fn socket_inode(fd: i32) -> u64 {
        let link = fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
        bracketed_number(&link.to_string_lossy(), "socket:[").unwrap()
    }

    #[test]
    fn sockets_are_told_by_their_protocol_and_the_tables() {
        use std::os::fd::AsRawFd;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let (unix, _peer) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut resolver = FdResolver::default();
        let mut files = ProcessFiles::default();
        let pid = std::process::id() as i32;
        let mut kind = |fd: i32| resolver.kind_of(pid, fd, &mut files, true).0;
        assert_eq!(kind(listener.as_raw_fd()), FdKind::TcpListener);
        assert_eq!(kind(client.as_raw_fd()), FdKind::TcpSocket);
        assert_eq!(kind(udp.as_raw_fd()), FdKind::UdpSocket);
        // Both ends of the pair are this process's: a wake-up channel, not a conversation.
        assert_eq!(kind(unix.as_raw_fd()), FdKind::SelfPipe);
        // The protocol comes from the socket itself, checked to be that socket.
        let fd = unix.as_raw_fd();
        assert_eq!(
            socket_protocol(pid, fd, socket_inode(fd)).as_deref(),
            Some("UNIX-STREAM")
        );
        assert_eq!(socket_protocol(pid, fd, socket_inode(fd) + 1), None);
    }

    #[test]
    fn a_unix_servers_listener_and_accepted_connections_are_told_from_a_clients_socket() {
        use std::os::fd::AsRawFd;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let ours = std::os::unix::net::UnixStream::connect(&path).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        let mut resolver = FdResolver::default();
        let mut files = ProcessFiles::default();
        let pid = std::process::id() as i32;
        let mut kind = |fd: i32| resolver.kind_of(pid, fd, &mut files, true).0;
        assert_eq!(kind(listener.as_raw_fd()), FdKind::UnixListener);
        // Both ends here, so the connection is this process's own wake-up channel...
        assert_eq!(kind(accepted.as_raw_fd()), FdKind::SelfPipe);
        assert_eq!(kind(ours.as_raw_fd()), FdKind::SelfPipe);
        // ...and the kinds the tables give, before that check:
        let (tables, _) = read_socket_tables(pid);
        assert_eq!(
            tables.get(&socket_inode(accepted.as_raw_fd())),
            Some(&FdKind::UnixAccepted)
        );
        assert_eq!(
            tables.get(&socket_inode(ours.as_raw_fd())),
            Some(&FdKind::UnixSocket),
            "a client's end has no path"
        );
    }

    #[test]
    fn sync_open_flags_from_fdinfo() {
        // O_SYNC | O_LARGEFILE | O_WRONLY, as dd oflag=sync opens its output.
        let text = "pos:\t4096\nflags:\t04110001\nmnt_id:\t25\nino:\t1234\n";
        let flags = parse_fdinfo(text).unwrap().flags;
        assert_ne!(flags & O_DSYNC, 0, "O_SYNC (04010000) includes O_DSYNC");
        let plain = parse_fdinfo("flags:\t0100001\nmnt_id:\t25\n").unwrap();
        assert_eq!(plain.flags & O_DSYNC, 0);
    }

    #[test]
    fn select_bitmap_bits() {
        let raw = [0b0010_1000u8, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(set_bits(&raw, 64).collect::<Vec<_>>(), vec![3, 5]);
    }

    #[test]
    fn which_arguments_are_descriptors() {
        assert_eq!(
            fd_spec(Sysno::read, &[4, 0, 0, 0, 0, 0]),
            FdSpec::Fds(vec![4])
        );
        assert_eq!(
            fd_spec(Sysno::epoll_wait, &[9, 0, 0, 0, 0, 0]),
            FdSpec::Epoll(9)
        );
        assert_eq!(fd_spec(Sysno::nanosleep, &[0; 6]), FdSpec::None);
    }
}
