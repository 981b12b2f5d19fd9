//! Who holds the other end of a pipe or a Unix socket: the same process (an event loop's self-pipe) or another.
//!
//! A wait on a pipe or Unix socket is inter-process I/O only when something else is at the
//! other end. asyncio wakes its own loop through a Unix socketpair, libuv and others through a
//! pipe: a loop waiting on those alone is idle, not waiting on IPC. Unix socket peers come from
//! the kernel's sock_diag netlink interface (`UNIX_DIAG_PEER`, what `ss -x` shows), pipes from
//! the process's own descriptor table (both ends held by one process). Neither touches a
//! filesystem: readlink of /proc/PID/fd/N returns the link text only.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_sock_diag::unix::{nlas::Nla, ShowFlags, StateFlags, UnixRequest};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket, SocketAddr};

/// The Unix socket table is dumped again at most this often when an unknown socket shows up.
const UNIX_TABLE_REFRESH: Duration = Duration::from_millis(500);
/// Questions remembered (for when a descriptor table was listed before the question was
/// first asked); forgotten all at once past this many.
const MAX_ASKED: usize = 10_000;
/// Processes with more descriptors than this are not listed (the cost grows with them; their
/// pipes and sockets then count as leading to another process, as before this check existed).
const MAX_LISTED_FDS: usize = 4096;

/// The socket and pipe inodes one process holds, from its descriptor links.
#[derive(Debug, Default)]
struct FdTable {
    sockets: Vec<u64>,
    /// Pipe inodes and how many descriptors of the process refer to each.
    pipes: HashMap<u64, u32>,
    listed_at: Option<Instant>,
    too_many: bool,
}

#[derive(Default)]
pub struct Peers {
    /// Unix socket inode -> its peer's inode (connected sockets only).
    unix_peers: HashMap<u64, u64>,
    unix_read_at: Option<Instant>,
    /// Set once the netlink interface failed (a kernel without sock_diag, a sandbox).
    netlink_unavailable: bool,
    tables: HashMap<i32, FdTable>,
    /// When each (process, inode) was first asked about: a listing older than that may
    /// predate the descriptor, a newer one is the answer.
    asked: HashMap<(i32, u64), Instant>,
    /// Sockets looked for among every process of the machine, and who held them.
    machine_holders: HashMap<u64, Option<i32>>,
    /// When the machine's processes were last listed for a socket: at most one listing per
    /// `MACHINE_SCAN_GAP` (a server taking thousands of loopback connections would
    /// otherwise list them all at every new one).
    machine_scanned_at: Option<Instant>,
}

/// The least time between two listings of every process's descriptors.
const MACHINE_SCAN_GAP: std::time::Duration = std::time::Duration::from_millis(250);

impl Peers {
    /// Whether the Unix socket `inode` of process `pid` is connected to another socket of the
    /// same process; `None` when that cannot be told (no peer known, netlink unavailable).
    pub fn unix_is_self(&mut self, pid: i32, inode: u64) -> Option<bool> {
        let peer = match self.unix_peers.get(&inode) {
            Some(peer) => *peer,
            None => {
                self.refresh_unix_table();
                *self.unix_peers.get(&inode)?
            }
        };
        let table = self.table_knowing(pid, peer, |table, peer| table.sockets.contains(&peer))?;
        Some(table.sockets.contains(&peer))
    }

    /// Whether process `pid` holds both ends of the pipe `inode` (a pipe it writes to wake
    /// itself); `None` when its descriptors cannot be listed.
    pub fn pipe_is_self(&mut self, pid: i32, inode: u64) -> Option<bool> {
        let table =
            self.table_knowing(pid, inode, |table, inode| table.pipes.contains_key(&inode))?;
        Some(table.pipes.get(&inode).is_some_and(|count| *count >= 2))
    }

    /// The peer of a connected Unix socket, by inode.
    pub fn unix_peer(&mut self, inode: u64) -> Option<u64> {
        if !self.unix_peers.contains_key(&inode) {
            self.refresh_unix_table();
        }
        self.unix_peers.get(&inode).copied()
    }

    /// The processes among `candidates` holding the pipe `inode`.
    pub fn holders_of_pipe(&mut self, inode: u64, candidates: &[i32]) -> Vec<i32> {
        candidates
            .iter()
            .copied()
            .filter(|pid| {
                self.table_knowing(*pid, inode, |table, inode| table.pipes.contains_key(&inode))
                    .is_some_and(|table| table.pipes.contains_key(&inode))
            })
            .collect()
    }

    /// The processes among `candidates` holding the socket `inode`.
    pub fn holders_of_socket(&mut self, inode: u64, candidates: &[i32]) -> Vec<i32> {
        candidates
            .iter()
            .copied()
            .filter(|pid| {
                self.table_knowing(*pid, inode, |table, inode| table.sockets.contains(&inode))
                    .is_some_and(|table| table.sockets.contains(&inode))
            })
            .collect()
    }

    /// The process on this machine holding socket `inode`, among those whose descriptors this
    /// user may list: looked for once per socket (it lists every process's descriptors).
    pub fn visible_holder_of_socket(&mut self, inode: u64) -> Option<i32> {
        if let Some(known) = self.machine_holders.get(&inode) {
            return *known;
        }
        if self
            .machine_scanned_at
            .is_some_and(|at| at.elapsed() < MACHINE_SCAN_GAP)
        {
            // Asked again at a later tick.
            return None;
        }
        self.machine_scanned_at = Some(Instant::now());
        if self.machine_holders.len() >= MAX_ASKED {
            self.machine_holders.clear();
        }
        let found = std::fs::read_dir("/proc").ok().and_then(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                .find(|pid| {
                    let mut table = FdTable::default();
                    list_descriptors(*pid, &mut table);
                    table.sockets.contains(&inode)
                })
        });
        self.machine_holders.insert(inode, found);
        found
    }

    /// Forgets a process that left the tree.
    pub fn forget(&mut self, pid: i32) {
        self.tables.remove(&pid);
        self.asked.retain(|(asked_pid, _), _| *asked_pid != pid);
    }

    /// The process's descriptor table, listed again if it does not know `inode` and was
    /// listed before the first question about it (each inode costs at most one listing);
    /// `None` when it cannot be listed.
    fn table_knowing(
        &mut self,
        pid: i32,
        inode: u64,
        knows: impl Fn(&FdTable, u64) -> bool,
    ) -> Option<&FdTable> {
        if self.asked.len() >= MAX_ASKED {
            self.asked.clear();
        }
        let first_asked = *self.asked.entry((pid, inode)).or_insert_with(Instant::now);
        let table = self.tables.entry(pid).or_default();
        let predates_question = table.listed_at.is_none_or(|at| at < first_asked);
        if table.listed_at.is_none() || (!knows(table, inode) && predates_question) {
            list_descriptors(pid, table);
        }
        (!table.too_many && table.listed_at.is_some()).then_some(&*table)
    }

    fn refresh_unix_table(&mut self) {
        if self.netlink_unavailable {
            return;
        }
        let fresh = self
            .unix_read_at
            .is_some_and(|at| at.elapsed() < UNIX_TABLE_REFRESH);
        if fresh {
            return;
        }
        self.unix_read_at = Some(Instant::now());
        match dump_unix_peers() {
            Ok(peers) => self.unix_peers = peers,
            Err(_) => self.netlink_unavailable = true,
        }
    }
}

/// Lists /proc/PID/fd into `table` (its socket and pipe inodes).
fn list_descriptors(pid: i32, table: &mut FdTable) {
    let dir = PathBuf::from(format!("/proc/{pid}/fd"));
    table.sockets.clear();
    table.pipes.clear();
    table.listed_at = Some(Instant::now());
    let Ok(entries) = std::fs::read_dir(&dir) else {
        // Gone, or no permission: nothing known.
        table.listed_at = None;
        return;
    };
    let mut count = 0;
    for entry in entries.flatten() {
        count += 1;
        if count > MAX_LISTED_FDS {
            table.too_many = true;
            return;
        }
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let target = target.to_string_lossy();
        if let Some(inode) = bracketed(&target, "socket:[") {
            table.sockets.push(inode);
        } else if let Some(inode) = bracketed(&target, "pipe:[") {
            *table.pipes.entry(inode).or_insert(0) += 1;
        }
    }
    table.too_many = false;
}

fn bracketed(text: &str, prefix: &str) -> Option<u64> {
    text.strip_prefix(prefix)?.strip_suffix(']')?.parse().ok()
}

/// Every connected Unix socket of this network namespace and its peer, by inode, from one
/// sock_diag dump.
fn dump_unix_peers() -> std::io::Result<HashMap<u64, u64>> {
    let mut socket = sock_diag_socket()?;
    let mut peers = HashMap::new();
    let request = SockDiagMessage::UnixRequest(UnixRequest {
        state_flags: StateFlags::all(),
        inode: 0,
        show_flags: ShowFlags::PEER,
        cookie: [0xff; 8],
    });
    sock_diag_dump(&mut socket, request, |answer| {
        if let SockDiagMessage::UnixResponse(response) = answer {
            let inode = u64::from(response.header.inode);
            for nla in &response.nlas {
                if let Nla::Peer(peer) = nla {
                    peers.insert(inode, u64::from(*peer));
                }
            }
        }
    })?;
    Ok(peers)
}

/// A sock_diag netlink socket, connected to the kernel.
pub fn sock_diag_socket() -> std::io::Result<Socket> {
    let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    Ok(socket)
}

/// Sends one dump request on `socket` and hands each answer to `each`, until the dump ends.
pub fn sock_diag_dump(
    socket: &mut Socket,
    request: SockDiagMessage,
    mut each: impl FnMut(&SockDiagMessage),
) -> std::io::Result<()> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let mut packet = NetlinkMessage::new(header, request.into());
    packet.finalize();
    let mut bytes = vec![0; packet.buffer_len()];
    packet.serialize(&mut bytes[..]);
    socket.send(&bytes[..], 0)?;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let size = socket.recv(&mut &mut buffer[..], 0)?;
        if size == 0 {
            return Ok(());
        }
        let mut offset = 0;
        while offset < size {
            let message = <NetlinkMessage<SockDiagMessage>>::deserialize(&buffer[offset..size])
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            let length = message.header.length as usize;
            match message.payload {
                NetlinkPayload::InnerMessage(answer) => each(&answer),
                NetlinkPayload::Done(_) => return Ok(()),
                NetlinkPayload::Error(error) => {
                    return Err(std::io::Error::other(format!("sock_diag: {error:?}")))
                }
                _ => {}
            }
            if length == 0 {
                break;
            }
            offset += length;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::net::UnixStream;

    fn inode_of(stream: &UnixStream) -> u64 {
        use std::os::fd::AsRawFd;
        let link = std::fs::read_link(format!("/proc/self/fd/{}", stream.as_raw_fd())).unwrap();
        bracketed(&link.to_string_lossy(), "socket:[").unwrap()
    }

    #[test]
    fn a_socketpair_held_by_one_process_is_its_own() {
        let (a, _b) = UnixStream::pair().unwrap();
        let me = std::process::id() as i32;
        let mut peers = Peers::default();
        assert_eq!(peers.unix_is_self(me, inode_of(&a)), Some(true));
    }

    #[test]
    fn a_pipe_whose_two_ends_one_process_holds_is_its_own() {
        let (reader, _writer) = nix::unistd::pipe().unwrap();
        let inode = std::fs::metadata(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&reader)
        ))
        .unwrap()
        .ino();
        let me = std::process::id() as i32;
        assert_eq!(Peers::default().pipe_is_self(me, inode), Some(true));
    }

    #[test]
    fn a_socket_connected_to_another_process_is_not_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peer.sock");
        let mut server = std::process::Command::new("python3")
            .arg("-c")
            .arg(
                "import socket, sys, time\n\
                 s = socket.socket(socket.AF_UNIX)\n\
                 s.bind(sys.argv[1]); s.listen(1)\n\
                 c, _ = s.accept(); time.sleep(5)",
            )
            .arg(&path)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let stream = loop {
            match UnixStream::connect(&path) {
                Ok(stream) => break stream,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) => panic!("python3 never listened: {e}"),
            }
        };
        // The server's accept() must have happened for the peer to show in its table.
        std::thread::sleep(Duration::from_millis(200));
        let me = std::process::id() as i32;
        let mut peers = Peers::default();
        assert_eq!(peers.unix_is_self(me, inode_of(&stream)), Some(false));
        server.kill().unwrap();
        server.wait().unwrap();
    }

    #[test]
    fn link_texts_give_inodes() {
        assert_eq!(bracketed("pipe:[42]", "pipe:["), Some(42));
        assert_eq!(bracketed("socket:[7]", "pipe:["), None);
    }
}
