//! Maps what a thread was blocked in (state letter, syscall, wchan, file descriptors) to a wait kind.

use serde::{Deserialize, Serialize};
use syscalls::Sysno;

use crate::sampler::observation::{FdKind, SyscallState, ThreadState};
use crate::sampler::stops::sleeps_in_freezer;

/// Why a thread was off the CPU. The order is the order of the report's breakdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitKind {
    /// Runnable, but held off the CPU by its cgroup's CPU quota (a container's limit).
    Throttled,
    /// Regular files and block devices: reads, writes, fsync, metadata.
    Disk,
    /// TCP and UDP sockets.
    Network,
    /// Files of a network filesystem: NFS, SMB/CIFS, Ceph, 9p, GlusterFS, Lustre, or a FUSE
    /// filesystem of a network kind (sshfs, s3fs, gcsfuse, rclone...).
    NetworkFs,
    /// Pipes, FIFOs, Unix sockets, System V and POSIX message queues.
    Ipc,
    /// Futexes (mutexes, condition variables, joins, the GIL) and file locks.
    Lock,
    /// Timers: nanosleep, clock_nanosleep, timerfd.
    Sleep,
    /// poll/epoll/select or eventfd with nothing attributable: an event loop or pool with no work.
    EventWait,
    /// wait4/waitid: a parent waiting for a child process (the child's own time is measured).
    Child,
    /// Reading a terminal: waiting for a person.
    Input,
    /// Page faults waiting for memory to be read in.
    Paging,
    /// Stopped from outside: a stop signal or job control (T), a tracer (t), a frozen cgroup.
    /// Like the run-queue, not the program's own time.
    Stopped,
    /// Blocked for a reason none of the above describes (other syscalls).
    Other,
    /// Off the CPU in interruptible sleep (or another state), but the sources that say why
    /// were not readable (no ptrace access, or no descriptor left to read them).
    Unknown,
    /// Off the CPU in uninterruptible sleep (state D), the sources that say why not readable:
    /// usually disk I/O or paging, but not known, so not counted as I/O.
    Uninterruptible,
}

impl WaitKind {
    pub const ALL: [WaitKind; 15] = [
        WaitKind::Throttled,
        WaitKind::Disk,
        WaitKind::Network,
        WaitKind::NetworkFs,
        WaitKind::Ipc,
        WaitKind::Lock,
        WaitKind::Sleep,
        WaitKind::EventWait,
        WaitKind::Child,
        WaitKind::Input,
        WaitKind::Paging,
        WaitKind::Stopped,
        WaitKind::Other,
        WaitKind::Unknown,
        WaitKind::Uninterruptible,
    ];
    pub const COUNT: usize = Self::ALL.len();

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            WaitKind::Throttled => "throttled",
            WaitKind::Disk => "disk",
            WaitKind::Network => "network",
            WaitKind::NetworkFs => "network_fs",
            WaitKind::Ipc => "ipc",
            WaitKind::Lock => "lock",
            WaitKind::Sleep => "sleep",
            WaitKind::EventWait => "event_wait",
            WaitKind::Child => "child",
            WaitKind::Input => "input",
            WaitKind::Paging => "paging",
            WaitKind::Stopped => "stopped",
            WaitKind::Other => "other",
            WaitKind::Unknown => "unknown",
            WaitKind::Uninterruptible => "uninterruptible",
        }
    }

    /// Waits whose reason could not be read: the state letter is all that was known.
    pub fn is_unread(self) -> bool {
        matches!(self, WaitKind::Unknown | WaitKind::Uninterruptible)
    }

    /// Waits that overlapping (threads, async) can hide: the program waits on a device or a peer.
    pub fn is_io(self) -> bool {
        matches!(
            self,
            WaitKind::Disk
                | WaitKind::Network
                | WaitKind::NetworkFs
                | WaitKind::Ipc
                | WaitKind::Paging
        )
    }

    /// Waits that mean "nothing to do": timers, an empty event loop, a person at a terminal.
    pub fn is_idle(self) -> bool {
        matches!(
            self,
            WaitKind::Sleep | WaitKind::EventWait | WaitKind::Input
        )
    }
}

/// The wait kind of a thread at a sample, or `None` if it was running or runnable.
/// Zombies and dead threads are `None` too: they neither run nor wait. A stopped thread (T, t,
/// a frozen cgroup: the sampler says who stopped it, or its wchan is the freezer's) is
/// `Stopped` whatever it was blocked in before.
pub fn classify(state: &ThreadState) -> Option<WaitKind> {
    match state.letter {
        'R' | 'Z' | 'X' | 'x' => return None,
        'T' | 't' => return Some(WaitKind::Stopped),
        _ => {}
    }
    let frozen = state.wchan.as_deref().is_some_and(sleeps_in_freezer);
    if state.stopped_by.is_some() || frozen {
        return Some(WaitKind::Stopped);
    }
    let uninterruptible = state.letter == 'D';
    match &state.syscall {
        SyscallState::Blocked { call, args } => Some(classify_syscall(*call, args, state)),
        // Woken between reading the state letter and the syscall file: it was running.
        SyscallState::Running => None,
        SyscallState::BlockedUnknown { .. } => {
            Some(from_wchan(state).unwrap_or(if uninterruptible {
                WaitKind::Disk
            } else {
                WaitKind::Other
            }))
        }
        SyscallState::OutsideSyscall => Some(if uninterruptible {
            WaitKind::Paging
        } else {
            from_wchan(state).unwrap_or(WaitKind::Other)
        }),
        // Without the syscall, the state letter still tells the two kinds of blocked apart.
        SyscallState::Denied | SyscallState::NotRead => {
            Some(from_wchan(state).unwrap_or(if uninterruptible {
                WaitKind::Uninterruptible
            } else {
                WaitKind::Unknown
            }))
        }
    }
}

fn classify_syscall(call: Sysno, args: &[u64; 6], state: &ThreadState) -> WaitKind {
    use Sysno::*;
    let uninterruptible = state.letter == 'D';
    let by_fds = || fold_fds(&state.fds);
    match call {
        futex | futex_waitv | flock => WaitKind::Lock,
        // F_SETLKW = 7, F_OFD_SETLKW = 38: waiting for a record lock.
        fcntl if args[1] == 7 || args[1] == 38 => WaitKind::Lock,
        nanosleep | clock_nanosleep => WaitKind::Sleep,
        wait4 | waitid => WaitKind::Child,
        rt_sigsuspend | rt_sigtimedwait | pause => WaitKind::EventWait,
        msgrcv | msgsnd | semop | semtimedop | mq_timedreceive | mq_timedsend => WaitKind::Ipc,
        // Flushing a file of a network filesystem waits on its server.
        fsync | fdatasync | sync_file_range | syncfs => match by_fds() {
            Some(WaitKind::NetworkFs) => WaitKind::NetworkFs,
            _ => WaitKind::Disk,
        },
        sync | msync | io_getevents | io_pgetevents => WaitKind::Disk,
        // A server blocked in accept() is waiting for work to arrive, not on a peer.
        accept | accept4 => match by_fds() {
            Some(WaitKind::Ipc) => WaitKind::Ipc,
            _ => WaitKind::EventWait,
        },
        // poll/select/epoll: what the watched descriptors are; none at all is a plain timer.
        poll | ppoll | select | pselect6 | epoll_wait | epoll_pwait | epoll_pwait2 => {
            if watches_nothing(call, args) {
                WaitKind::Sleep
            } else {
                by_fds().unwrap_or(WaitKind::EventWait)
            }
        }
        mmap | munmap | mprotect | madvise | brk | mremap | mlock | mlockall if uninterruptible => {
            WaitKind::Paging
        }
        // Writing to a client that does not read is waiting on that client.
        write | writev | sendto | sendmsg | sendmmsg | sendfile
            if state.fds.contains(&FdKind::TcpAccepted) =>
        {
            WaitKind::Network
        }
        _ => match by_fds() {
            Some(kind) => kind,
            None => from_wchan(state).unwrap_or(if uninterruptible {
                WaitKind::Disk
            } else {
                WaitKind::Other
            }),
        },
    }
}

/// Whether the thread waits in a multiplexing call on a set of descriptors, as an event loop
/// does between callbacks: epoll (and io_uring) always, poll and select on two or more
/// descriptors (a blocking socket with a timeout polls just its one).
pub fn is_multiplexing(state: &ThreadState) -> bool {
    use Sysno::*;
    let SyscallState::Blocked { call, .. } = &state.syscall else {
        return false;
    };
    match call {
        epoll_wait | epoll_pwait | epoll_pwait2 | io_uring_enter => true,
        poll | ppoll | select | pselect6 => state.watched >= 2,
        _ => false,
    }
}

/// Whether a disk wait is a sync: the data goes to the device before the call returns
/// (fsync, fdatasync, sync_file_range, msync, sync, syncfs, or a write to a descriptor opened
/// with O_SYNC or O_DSYNC).
pub fn is_sync(state: &ThreadState) -> bool {
    use Sysno::*;
    let SyscallState::Blocked { call, .. } = &state.syscall else {
        return false;
    };
    match call {
        fsync | fdatasync | sync_file_range | msync | sync | syncfs => true,
        write | writev | pwrite64 | pwritev | pwritev2 => state.fd_sync,
        _ => false,
    }
}

/// Whether a disk wait changes a file's metadata: creates, renames, truncates, links or
/// deletes a file or directory. Around syncs this is each commit's own file work (SQLite's
/// rollback journal created and deleted per transaction, a save's temporary file renamed
/// over the old one), which grouping the commits removes with the syncs.
pub fn is_file_metadata_change(state: &ThreadState) -> bool {
    use Sysno::*;
    /// O_CREAT | O_TRUNC.
    const CREATES: u64 = 0o100 | 0o1000;
    let SyscallState::Blocked { call, args } = &state.syscall else {
        return false;
    };
    match call {
        unlink | unlinkat | rename | renameat | renameat2 | truncate | ftruncate | fallocate
        | mkdir | mkdirat | rmdir | link | linkat | symlink | symlinkat | creat => true,
        open => args[1] & CREATES != 0,
        openat => args[2] & CREATES != 0,
        _ => false,
    }
}

/// poll with nfds = 0, or select with no descriptor sets, is a sleep.
fn watches_nothing(call: Sysno, args: &[u64; 6]) -> bool {
    use Sysno::*;
    match call {
        poll | ppoll => args[1] == 0,
        select | pselect6 => args[0] == 0 || (args[1] == 0 && args[2] == 0 && args[3] == 0),
        _ => false,
    }
}

/// The wait kind of one descriptor, if it says anything.
pub fn fd_wait_kind(fd: FdKind) -> Option<WaitKind> {
    Some(match fd {
        FdKind::RegularFile | FdKind::BlockDevice | FdKind::Directory => WaitKind::Disk,
        FdKind::TcpSocket | FdKind::UdpSocket => WaitKind::Network,
        FdKind::NetworkFile => WaitKind::NetworkFs,
        // A server waiting for a client's next request (or connection) waits for work.
        FdKind::TcpListener | FdKind::TcpAccepted | FdKind::UnixListener | FdKind::UnixAccepted => {
            WaitKind::EventWait
        }
        FdKind::Pipe | FdKind::Fifo | FdKind::UnixSocket => WaitKind::Ipc,
        FdKind::Terminal => WaitKind::Input,
        FdKind::TimerFd => WaitKind::Sleep,
        FdKind::Epoll | FdKind::EventFd | FdKind::SignalFd | FdKind::Inotify | FdKind::SelfPipe => {
            WaitKind::EventWait
        }
        FdKind::CharDevice | FdKind::OtherSocket | FdKind::IoUring | FdKind::Other => {
            WaitKind::Other
        }
        FdKind::Unknown => return None,
    })
}

/// For a wait on several descriptors, the one that says most about the program: a connected
/// socket outranks a pipe (an event loop's self-pipe), which outranks a timer or an eventfd.
fn fold_fds(fds: &[FdKind]) -> Option<WaitKind> {
    const RANK: [WaitKind; 8] = [
        WaitKind::Network,
        WaitKind::NetworkFs,
        WaitKind::Disk,
        WaitKind::Ipc,
        WaitKind::Input,
        WaitKind::Other,
        WaitKind::EventWait,
        WaitKind::Sleep,
    ];
    let kinds: Vec<WaitKind> = fds.iter().filter_map(|fd| fd_wait_kind(*fd)).collect();
    if kinds.len() > 1 && kinds.iter().all(|k| *k == WaitKind::Sleep) {
        return Some(WaitKind::Sleep);
    }
    RANK.into_iter().find(|rank| kinds.contains(rank))
}

/// Kernel functions a thread sleeps in, for when the syscall file is missing or says too little.
fn from_wchan(state: &ThreadState) -> Option<WaitKind> {
    let wchan = state.wchan.as_deref()?;
    const TABLE: &[(&str, WaitKind)] = &[
        // Network filesystems' clients (before "folio_wait": theirs is a network wait).
        ("nfs", WaitKind::NetworkFs),
        ("rpc_wait", WaitKind::NetworkFs),
        ("cifs", WaitKind::NetworkFs),
        ("smb2_", WaitKind::NetworkFs),
        ("ceph", WaitKind::NetworkFs),
        ("p9_client", WaitKind::NetworkFs),
        ("ptlrpc", WaitKind::NetworkFs),
        ("futex", WaitKind::Lock),
        ("nanosleep", WaitKind::Sleep),
        ("hrtimer", WaitKind::Sleep),
        ("do_wait", WaitKind::Child),
        ("kernel_wait", WaitKind::Child),
        ("pipe_", WaitKind::Ipc),
        ("unix_", WaitKind::Ipc),
        ("sk_wait", WaitKind::Network),
        ("tcp_", WaitKind::Network),
        ("inet_", WaitKind::Network),
        ("udp_", WaitKind::Network),
        ("n_tty", WaitKind::Input),
        ("tty_", WaitKind::Input),
        ("ep_poll", WaitKind::EventWait),
        ("do_sys_poll", WaitKind::EventWait),
        ("do_select", WaitKind::EventWait),
        ("filemap_fault", WaitKind::Paging),
        ("do_page_fault", WaitKind::Paging),
        ("handle_mm_fault", WaitKind::Paging),
        ("swap", WaitKind::Paging),
        ("folio_wait", WaitKind::Disk),
        ("wait_on_page", WaitKind::Disk),
        ("io_schedule", WaitKind::Disk),
        ("bit_wait_io", WaitKind::Disk),
        ("blk_", WaitKind::Disk),
        ("jbd2", WaitKind::Disk),
        ("ext4", WaitKind::Disk),
        ("xfs", WaitKind::Disk),
        ("btrfs", WaitKind::Disk),
        ("file_write_and_wait", WaitKind::Disk),
    ];
    TABLE
        .iter()
        .find(|(needle, _)| wchan.contains(needle))
        .map(|(_, kind)| *kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocked(letter: char, call: Sysno, args: [u64; 6], fds: Vec<FdKind>) -> ThreadState {
        ThreadState {
            letter,
            syscall: SyscallState::Blocked { call, args },
            wchan: None,
            fds,
            watched: 0,
            watched_peers: 0,
            fd_sync: false,
            peers: Vec::new(),
            mount: None,
            stopped_by: None,
            served: None,
        }
    }

    #[test]
    fn deleting_renaming_and_creating_files_change_metadata_but_opening_one_does_not() {
        let call = |call, args| is_file_metadata_change(&blocked('D', call, args, vec![]));
        assert!(call(Sysno::unlink, [0; 6]));
        assert!(call(Sysno::renameat2, [0; 6]));
        assert!(call(Sysno::ftruncate, [0; 6]));
        // openat(dirfd, path, O_RDWR | O_CREAT) creates; O_RDWR alone only opens.
        assert!(call(Sysno::openat, [0, 0, 0o102, 0, 0, 0]));
        assert!(!call(Sysno::openat, [0, 0, 0o2, 0, 0, 0]));
        assert!(!call(Sysno::fdatasync, [0; 6]));
        assert!(!call(Sysno::pwrite64, [0; 6]));
    }

    #[test]
    fn running_and_zombie_threads_do_not_wait() {
        assert_eq!(classify(&ThreadState::running()), None);
        let mut zombie = ThreadState::running();
        zombie.letter = 'Z';
        assert_eq!(classify(&zombie), None);
    }

    #[test]
    fn reads_are_classified_by_what_the_descriptor_is() {
        let read = |fd| classify(&blocked('S', Sysno::read, [3, 0, 0, 0, 0, 0], vec![fd]));
        assert_eq!(read(FdKind::TcpSocket), Some(WaitKind::Network));
        assert_eq!(read(FdKind::UnixSocket), Some(WaitKind::Ipc));
        assert_eq!(read(FdKind::Pipe), Some(WaitKind::Ipc));
        assert_eq!(read(FdKind::Terminal), Some(WaitKind::Input));
        assert_eq!(read(FdKind::RegularFile), Some(WaitKind::Disk));
        assert_eq!(read(FdKind::EventFd), Some(WaitKind::EventWait));
        assert_eq!(read(FdKind::TimerFd), Some(WaitKind::Sleep));
    }

    #[test]
    fn unresolved_descriptor_falls_back_to_state_letter() {
        let d = blocked(
            'D',
            Sysno::pwrite64,
            [9, 0, 0, 0, 0, 0],
            vec![FdKind::Unknown],
        );
        assert_eq!(classify(&d), Some(WaitKind::Disk));
        let s = blocked('S', Sysno::ioctl, [9, 0, 0, 0, 0, 0], vec![]);
        assert_eq!(classify(&s), Some(WaitKind::Other));
    }

    #[test]
    fn syscalls_that_say_it_all() {
        let k = |call, args| classify(&blocked('S', call, args, vec![]));
        assert_eq!(k(Sysno::futex, [0; 6]), Some(WaitKind::Lock));
        assert_eq!(k(Sysno::clock_nanosleep, [0; 6]), Some(WaitKind::Sleep));
        assert_eq!(k(Sysno::wait4, [0; 6]), Some(WaitKind::Child));
        assert_eq!(k(Sysno::fdatasync, [0; 6]), Some(WaitKind::Disk));
        assert_eq!(k(Sysno::fcntl, [3, 7, 0, 0, 0, 0]), Some(WaitKind::Lock));
        assert_eq!(
            k(Sysno::poll, [0x1000, 0, 100, 0, 0, 0]),
            Some(WaitKind::Sleep)
        );
        assert_eq!(
            k(Sysno::select, [0, 0, 0, 0, 0x1000, 0]),
            Some(WaitKind::Sleep)
        );
    }

    #[test]
    fn event_loops_are_attributed_to_what_they_watch() {
        let epoll = |fds| classify(&blocked('S', Sysno::epoll_wait, [4, 0, 8, 0, 0, 0], fds));
        // asyncio client: a self-pipe (unix socket pair) plus a connected TCP socket.
        assert_eq!(
            epoll(vec![FdKind::UnixSocket, FdKind::TcpSocket]),
            Some(WaitKind::Network)
        );
        // idle server: only a listening socket.
        assert_eq!(epoll(vec![FdKind::TcpListener]), Some(WaitKind::EventWait));
        // a server with clients connected, waiting for their next requests.
        assert_eq!(
            epoll(vec![
                FdKind::SelfPipe,
                FdKind::TcpListener,
                FdKind::TcpAccepted
            ]),
            Some(WaitKind::EventWait)
        );
        let recv = |call| {
            classify(&blocked(
                'S',
                call,
                [5, 0, 0, 0, 0, 0],
                vec![FdKind::TcpAccepted],
            ))
        };
        assert_eq!(recv(Sysno::recvfrom), Some(WaitKind::EventWait));
        assert_eq!(recv(Sysno::sendto), Some(WaitKind::Network));
        // asyncio server with no clients: its listener and its self-pipe (a socketpair).
        assert_eq!(
            epoll(vec![FdKind::SelfPipe, FdKind::TcpListener]),
            Some(WaitKind::EventWait)
        );
        // nothing registered or not resolvable.
        assert_eq!(epoll(vec![]), Some(WaitKind::EventWait));
        assert_eq!(epoll(vec![FdKind::TimerFd]), Some(WaitKind::Sleep));
        let accept = blocked(
            'S',
            Sysno::accept4,
            [3, 0, 0, 0, 0, 0],
            vec![FdKind::TcpListener],
        );
        assert_eq!(classify(&accept), Some(WaitKind::EventWait));
    }

    #[test]
    fn outside_a_syscall_in_d_state_is_paging() {
        let state = ThreadState {
            letter: 'D',
            syscall: SyscallState::OutsideSyscall,
            wchan: Some("folio_wait_bit_common".into()),
            fds: vec![],
            watched: 0,
            watched_peers: 0,
            fd_sync: false,
            peers: Vec::new(),
            mount: None,
            stopped_by: None,
            served: None,
        };
        assert_eq!(classify(&state), Some(WaitKind::Paging));
    }

    #[test]
    fn denied_sources_give_unknown_unless_wchan_speaks() {
        let mut state = ThreadState {
            letter: 'S',
            syscall: SyscallState::Denied,
            wchan: None,
            fds: vec![],
            watched: 0,
            watched_peers: 0,
            fd_sync: false,
            peers: Vec::new(),
            mount: None,
            stopped_by: None,
            served: None,
        };
        assert_eq!(classify(&state), Some(WaitKind::Unknown));
        state.letter = 'D';
        assert_eq!(classify(&state), Some(WaitKind::Uninterruptible));
        state.letter = 'S';
        state.wchan = Some("hrtimer_nanosleep".into());
        assert_eq!(classify(&state), Some(WaitKind::Sleep));
    }

    #[test]
    fn stopped_threads_are_stopped_whatever_they_were_blocked_in() {
        let mut state = blocked(
            'T',
            Sysno::read,
            [3, 0, 0, 0, 0, 0],
            vec![FdKind::TcpSocket],
        );
        assert_eq!(classify(&state), Some(WaitKind::Stopped));
        state.letter = 't';
        assert_eq!(classify(&state), Some(WaitKind::Stopped));
        // A task of a frozen cgroup v1 is frozen in place: D, still in its nanosleep.
        let mut frozen = blocked('D', Sysno::clock_nanosleep, [0; 6], vec![]);
        frozen.wchan = Some("hrtimer_nanosleep".into());
        assert_eq!(classify(&frozen), Some(WaitKind::Sleep));
        frozen.stopped_by = Some(crate::sampler::observation::Stopper::FrozenCgroup {
            cgroup: "/batch".into(),
        });
        assert_eq!(classify(&frozen), Some(WaitKind::Stopped));
        // Without the sampler's word, the freezer's own wait says it.
        let mut trapped = blocked('S', Sysno::read, [0; 6], vec![]);
        trapped.wchan = Some("do_freezer_trap".into());
        assert_eq!(classify(&trapped), Some(WaitKind::Stopped));
        trapped.wchan = Some("__refrigerator".into());
        assert_eq!(classify(&trapped), Some(WaitKind::Stopped));
    }

    #[test]
    fn files_of_a_network_filesystem_are_network_fs_waits() {
        let on = |call, fd| classify(&blocked('D', call, [3, 0, 0, 0, 0, 0], vec![fd]));
        assert_eq!(
            on(Sysno::read, FdKind::NetworkFile),
            Some(WaitKind::NetworkFs)
        );
        assert_eq!(
            on(Sysno::fsync, FdKind::NetworkFile),
            Some(WaitKind::NetworkFs)
        );
        assert_eq!(on(Sysno::fsync, FdKind::RegularFile), Some(WaitKind::Disk));
        let mut unresolved = blocked('D', Sysno::newfstatat, [0; 6], vec![]);
        unresolved.wchan = Some("rpc_wait_bit_killable".into());
        assert_eq!(classify(&unresolved), Some(WaitKind::NetworkFs));
        unresolved.wchan = Some("nfs_wait_bit_killable".into());
        assert_eq!(classify(&unresolved), Some(WaitKind::NetworkFs));
    }
}
