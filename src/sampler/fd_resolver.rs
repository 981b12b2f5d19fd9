//! Finds which descriptors a blocked syscall waits on and what each one is (file, socket, pipe, tty...).

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use syscalls::Sysno;

use super::observation::FdKind;
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
pub struct LazyMem {
    opened: Option<Option<ProcFile>>,
}

impl LazyMem {
    fn get(&mut self, pid: i32) -> Option<&ProcFile> {
        self.opened
            .get_or_insert_with(|| ProcFile::open(&PathBuf::from(format!("/proc/{pid}/mem"))).ok())
            .as_ref()
    }
}

/// Resolves descriptors to kinds; keeps a cache of socket inodes per network namespace read.
#[derive(Default)]
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
    /// The inode of the pipe or socket `kind_of` last resolved.
    last_inode: Option<u64>,
}

/// What a blocked syscall waits on.
#[derive(Debug, Default, PartialEq)]
pub struct WaitTargets {
    /// The kinds of the descriptors, each once.
    pub kinds: Vec<FdKind>,
    /// For a set (epoll, poll, select): its size, and how many lead to a peer.
    pub watched: u32,
    pub watched_peers: u32,
    /// A write to a regular file opened with O_SYNC or O_DSYNC.
    pub fd_sync: bool,
    /// A single descriptor waited on that is a pipe or a socket: its kind and inode, to find
    /// the process at its other end.
    pub conversation: Option<(FdKind, u64)>,
}

/// O_DSYNC (O_SYNC includes it): from the open flags in /proc/PID/fdinfo/N, in octal.
const O_DSYNC: u64 = 0o10000;

/// The open flags in an fdinfo text ("flags:\t0100001").
pub fn fdinfo_flags(text: &str) -> Option<u64> {
    let value = text.lines().find_map(|line| line.strip_prefix("flags:"))?;
    u64::from_str_radix(value.trim(), 8).ok()
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
    )
}

impl FdResolver {
    /// The kinds of the descriptors a blocked syscall waits on. `mem` is the process's
    /// /proc/PID/mem, opened lazily by the caller, for poll/select sets.
    pub fn resolve(
        &mut self,
        pid: i32,
        call: Sysno,
        args: &[u64; 6],
        mem: &mut LazyMem,
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
            FdSpec::PollArray { address, count } => match mem.get(pid) {
                Some(mem) => poll_fds(mem, address, count),
                None => Vec::new(),
            },
            FdSpec::SelectSets { nfds, sets } => match mem.get(pid) {
                Some(mem) => select_fds(mem, nfds, &sets),
                None => Vec::new(),
            },
        };
        let fds: Vec<i32> = fds.into_iter().filter(|fd| *fd >= 0).collect();
        let mut targets = WaitTargets::default();
        let mut resolved = 0u32;
        let mut peers = 0u32;
        for &fd in fds.iter().take(MAX_FDS_PER_WAIT) {
            let kind = self.kind_of(pid, fd);
            if !is_set && targets.conversation.is_none() && leads_to_peer(kind) {
                targets.conversation = self.last_inode.map(|inode| (kind, inode));
            }
            resolved += 1;
            peers += u32::from(leads_to_peer(kind));
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
            FdKind::UnixSocket => match self.peers.unix_peer(inode) {
                Some(peer) => self.peers.holders_of_socket(peer, &others),
                None => Vec::new(),
            },
            FdKind::TcpSocket | FdKind::TcpAccepted => match self.tcp_peers.get(&inode).copied() {
                Some(peer) => {
                    let holders = self.peers.holders_of_socket(peer, &others);
                    if holders.is_empty() {
                        self.peers
                            .visible_holder_of_socket(peer)
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
            && fdinfo_flags(&String::from_utf8_lossy(&self.buf))
                .is_some_and(|flags| flags & O_DSYNC != 0)
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

    /// What descriptor `fd` of process `pid` is.
    pub fn kind_of(&mut self, pid: i32, fd: i32) -> FdKind {
        self.last_inode = None;
        let link = PathBuf::from(format!("/proc/{pid}/fd/{fd}"));
        let target = match fs::read_link(&link) {
            Ok(target) => target,
            Err(error) => {
                if matches!(ReadFailure::from(error), ReadFailure::Denied) {
                    self.denied = true;
                }
                return FdKind::Unknown;
            }
        };
        let target = target.to_string_lossy();
        if let Some(inode) = bracketed_number(&target, "socket:[") {
            self.last_inode = Some(inode);
            let kind = self.socket_kind(pid, inode, &link);
            if kind == FdKind::UnixSocket && self.peers.unix_is_self(pid, inode) == Some(true) {
                return FdKind::SelfPipe;
            }
            return kind;
        }
        if let Some(inode) = bracketed_number(&target, "pipe:[") {
            self.last_inode = Some(inode);
            if self.peers.pipe_is_self(pid, inode) == Some(true) {
                return FdKind::SelfPipe;
            }
            return FdKind::Pipe;
        }
        if let Some(kind) = kind_from_link_text(&target) {
            return kind;
        }
        match fs::metadata(&link) {
            Ok(meta) => {
                let file_type = meta.file_type();
                if file_type.is_file() {
                    FdKind::RegularFile
                } else if file_type.is_dir() {
                    FdKind::Directory
                } else if file_type.is_fifo() {
                    FdKind::Fifo
                } else if file_type.is_block_device() {
                    FdKind::BlockDevice
                } else if file_type.is_char_device() {
                    FdKind::CharDevice
                } else {
                    FdKind::Other
                }
            }
            // "/path (deleted)" and the like: a file that was unlinked while open.
            Err(_) if target.starts_with('/') && !target.starts_with("/dev/") => {
                FdKind::RegularFile
            }
            Err(_) => FdKind::Unknown,
        }
    }

    /// The kind of socket behind `link`: its protocol from the sockprotoname attribute, and
    /// for TCP whether it listens, from the namespace's socket table (re-read at most every
    /// 200 ms; a socket not found meanwhile counts as connected).
    fn socket_kind(&mut self, pid: i32, inode: u64, link: &Path) -> FdKind {
        if let Some(kind) = self.sockets.get(&inode) {
            return *kind;
        }
        let protocol = xattr::get_deref(link, "system.sockprotoname")
            .ok()
            .flatten()
            .map(|name| {
                String::from_utf8_lossy(&name)
                    .trim_end_matches('\0')
                    .to_string()
            });
        match protocol.as_deref() {
            Some(p) if p.starts_with("UNIX") => return FdKind::UnixSocket,
            Some(p) if p.starts_with("UDP") => return FdKind::UdpSocket,
            Some(p) if !p.starts_with("TCP") && !p.starts_with("MPTCP") => {
                return FdKind::OtherSocket
            }
            _ => {}
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
            (None, Some(_)) => FdKind::TcpSocket,
            // Neither the attribute nor the tables know it (netlink, packet...).
            (None, None) if stale => *self.sockets.entry(inode).or_insert(FdKind::OtherSocket),
            (None, None) => FdKind::Unknown,
        }
    }
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
            map.insert(entry.inode, FdKind::UnixSocket);
        }
    }
    (map, peers)
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
    fn open_flags_from_fdinfo() {
        // O_SYNC | O_LARGEFILE | O_WRONLY, as dd oflag=sync opens its output.
        let text = "pos:\t4096\nflags:\t04110001\nmnt_id:\t25\nino:\t1234\n";
        let flags = fdinfo_flags(text).unwrap();
        assert_ne!(flags & O_DSYNC, 0, "O_SYNC (04010000) includes O_DSYNC");
        assert_eq!(
            fdinfo_flags("flags:\t0100001\n").map(|f| f & O_DSYNC),
            Some(0)
        );
        assert_eq!(fdinfo_flags("pos: 0\n"), None);
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
