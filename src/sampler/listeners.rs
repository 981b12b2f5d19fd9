//! The accept queues of the tree's TCP listeners: how many connections wait to be accepted, read from the kernel's socket diagnostics every `QUEUE_PERIOD`.
//!
//! A synchronous server whose workers are all busy looks idle from its threads (they sleep or
//! wait in their handler) while its clients queue at the listener: the kernel completes their
//! handshakes and keeps them in the listening socket's accept queue until a worker calls
//! accept. For a socket in LISTEN state, the receive queue the kernel reports is the length
//! of that queue (`sk_ack_backlog`): `idiag_rqueue` of a sock_diag answer, `rx_queue` in
//! /proc/net/tcp{,6}.
//!
//! Which listeners are the tree's: each process's descriptor links (`socket:[INODE]`, at most
//! `MAX_SCANNED` of them) are read on first sight and again every `SCAN_PERIOD`. The
//! listening sockets of its network namespace come from one sock_diag dump filtered to the
//! LISTEN state by the kernel (what `ss -lt` asks): a few dozen answers however many
//! connections the machine has, where /proc/net/tcp lists every connection and TIME_WAIT
//! entry (1500 lines under a load of 100 connections a second: 3 ms a read, measured).
//! sock_diag answers for concadvise's own namespace only, so a tree in another one (a
//! container seen from the host) is read from its /proc/PID/net/tcp{,6} instead. Listeners
//! are read every `QUEUE_PERIOD` while the tree holds one, at most every `SCAN_PERIOD` while
//! it holds other sockets (one may start listening), never while it holds none. Only /proc
//! and netlink are read: no descriptor is followed to its file.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_packet_sock_diag::SockDiagMessage;

use super::observation::{ListenerSample, TickSnapshot};
use super::peers::{sock_diag_dump, sock_diag_socket};

/// The accept queues are read this often while the tree holds a listener.
const QUEUE_PERIOD: Duration = Duration::from_millis(200);
/// Each process's descriptors are looked at again this often, and the listeners read this
/// often while the tree holds sockets none of which listens.
const SCAN_PERIOD: Duration = Duration::from_secs(1);
/// At most this many of a process's descriptors are read (listeners are opened early and
/// have low numbers).
const MAX_SCANNED: usize = 1024;

/// The sockets a process holds, and its network namespace.
#[derive(Default)]
struct HeldSockets {
    inodes: Vec<u64>,
    /// The namespace's inode (`/proc/PID/ns/net`), or `None` when it cannot be read.
    namespace: Option<u64>,
    scanned_at: Option<Instant>,
}

/// A listening TCP socket of a network namespace.
struct Listening {
    inode: u64,
    address: SocketAddr,
    queued: u32,
}

#[derive(Default)]
pub struct ListenerReader {
    processes: HashMap<i32, HeldSockets>,
    /// The tree's listening sockets at the last read.
    listening: HashSet<u64>,
    read_at: Option<Instant>,
    /// concadvise's own network namespace (read once), and whether sock_diag failed.
    own_namespace: Option<Option<u64>>,
    netlink_unavailable: bool,
}

impl ListenerReader {
    /// Scans the descriptors of the processes that are due, and reads the accept queues of
    /// the listeners among them when it is time, into the snapshot.
    pub fn read(&mut self, pids: impl Iterator<Item = i32>, snapshot: &mut TickSnapshot) {
        for pid in pids {
            let held = self.processes.entry(pid).or_default();
            if held.scanned_at.is_some_and(|at| at.elapsed() < SCAN_PERIOD) {
                continue;
            }
            held.scanned_at = Some(Instant::now());
            held.inodes = socket_inodes(pid);
            held.namespace = network_namespace(pid);
        }
        let holds_listener = self
            .held()
            .any(|(_, inode)| self.listening.contains(&inode));
        let period = if holds_listener {
            QUEUE_PERIOD
        } else {
            SCAN_PERIOD
        };
        let due =
            self.held().next().is_some() && self.read_at.is_none_or(|at| at.elapsed() >= period);
        if due {
            self.read_at = Some(Instant::now());
            self.read_queues(snapshot);
        }
    }

    /// Forgets a process that ended.
    pub fn forget(&mut self, pid: i32) {
        self.processes.remove(&pid);
    }

    /// Every (pid, socket inode) the tree holds.
    fn held(&self) -> impl Iterator<Item = (i32, u64)> + '_ {
        self.processes
            .iter()
            .flat_map(|(pid, held)| held.inodes.iter().map(move |inode| (*pid, *inode)))
    }

    /// Reads the listening sockets of each network namespace the tree's sockets are in and
    /// records the accept queue of every one the tree holds.
    fn read_queues(&mut self, snapshot: &mut TickSnapshot) {
        let mut holders: HashMap<u64, Vec<i32>> = HashMap::new();
        // One process per namespace (a process whose namespace is unknown stands for its own).
        let mut namespaces: HashMap<Option<u64>, Vec<i32>> = HashMap::new();
        for (pid, held) in &self.processes {
            if held.inodes.is_empty() {
                continue;
            }
            namespaces.entry(held.namespace).or_default().push(*pid);
            for inode in &held.inodes {
                holders.entry(*inode).or_default().push(*pid);
            }
        }
        let own = *self
            .own_namespace
            .get_or_insert_with(|| network_namespace(std::process::id() as i32));
        self.listening.clear();
        for (namespace, pids) in namespaces {
            let representatives = if namespace.is_some() {
                &pids[..1]
            } else {
                &pids[..]
            };
            for pid in representatives {
                for listening in self.listening_in(*pid, namespace.is_some() && namespace == own) {
                    let Some(pids) = holders.get_mut(&listening.inode) else {
                        continue;
                    };
                    self.listening.insert(listening.inode);
                    pids.sort_unstable();
                    snapshot.listeners.push(ListenerSample {
                        address: listening.address.to_string(),
                        queued: listening.queued,
                        pids: pids.clone(),
                    });
                }
            }
        }
        snapshot.listeners.sort_by(|a, b| a.address.cmp(&b.address));
        snapshot.listeners.dedup();
    }

    /// The listening TCP sockets of the network namespace `pid` is in: from sock_diag when it
    /// is concadvise's own (`ours`), else (or when sock_diag fails) from its /proc tables.
    fn listening_in(&mut self, pid: i32, ours: bool) -> Vec<Listening> {
        if ours && !self.netlink_unavailable {
            match dump_tcp_listeners() {
                Ok(listening) => return listening,
                Err(_) => self.netlink_unavailable = true,
            }
        }
        listeners_from_tables(pid)
    }
}

/// The listening TCP sockets (IPv4 and IPv6) of concadvise's network namespace, from one
/// sock_diag dump per family filtered to the LISTEN state.
fn dump_tcp_listeners() -> std::io::Result<Vec<Listening>> {
    let mut socket = sock_diag_socket()?;
    let mut listening = Vec::new();
    for (family, socket_id) in [
        (nix::libc::AF_INET as u8, SocketId::new_v4()),
        (nix::libc::AF_INET6 as u8, SocketId::new_v6()),
    ] {
        let request = SockDiagMessage::InetRequest(InetRequest {
            family,
            protocol: nix::libc::IPPROTO_TCP as u8,
            extensions: ExtensionFlags::empty(),
            states: StateFlags::LISTEN,
            socket_id,
        });
        sock_diag_dump(&mut socket, request, |answer| {
            if let SockDiagMessage::InetResponse(response) = answer {
                let header = &response.header;
                listening.push(Listening {
                    inode: u64::from(header.inode),
                    address: SocketAddr::new(
                        header.socket_id.source_address,
                        header.socket_id.source_port,
                    ),
                    queued: header.recv_queue,
                });
            }
        })?;
    }
    Ok(listening)
}

/// The listening TCP sockets of `pid`'s network namespace, from /proc/PID/net/tcp{,6}.
fn listeners_from_tables(pid: i32) -> Vec<Listening> {
    let Ok(process) = procfs::process::Process::new(pid) else {
        return Vec::new();
    };
    [process.tcp(), process.tcp6()]
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.state == procfs::net::TcpState::Listen)
        .map(|entry| Listening {
            inode: entry.inode,
            address: entry.local_address,
            queued: entry.rx_queue,
        })
        .collect()
}

/// The inodes of the sockets among the first `MAX_SCANNED` descriptors of `pid`, from their
/// link texts (`socket:[INODE]`; reading a link follows nothing).
fn socket_inodes(pid: i32) -> Vec<u64> {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let mut inodes: Vec<u64> = entries
        .flatten()
        .take(MAX_SCANNED)
        .filter_map(|entry| {
            let target = std::fs::read_link(entry.path()).ok()?;
            socket_inode(target.to_str()?)
        })
        .collect();
    inodes.sort_unstable();
    inodes.dedup();
    inodes
}

/// "socket:[12345]" -> 12345.
pub fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The inode of the network namespace `pid` lives in ("net:[4026531840]").
fn network_namespace(pid: i32) -> Option<u64> {
    let link = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok()?;
    link.to_str()?
        .strip_prefix("net:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;

    #[test]
    fn the_tables_say_the_same_as_sock_diag() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let _client = TcpStream::connect(address).unwrap();
        let find = |all: Vec<Listening>| {
            all.into_iter()
                .find(|l| l.address == address)
                .map(|l| l.queued)
        };
        assert_eq!(find(dump_tcp_listeners().unwrap()), Some(1));
        assert_eq!(
            find(listeners_from_tables(std::process::id() as i32)),
            Some(1)
        );
    }

    #[test]
    fn socket_links() {
        assert_eq!(socket_inode("socket:[737]"), Some(737));
        assert_eq!(socket_inode("pipe:[737]"), None);
        assert_eq!(socket_inode("/tmp/socket:[1]"), None);
    }

    #[test]
    fn a_listeners_accept_queue_is_read_every_queue_period() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        // Three connections the kernel completes and queues; nobody accepts them.
        let _clients: Vec<TcpStream> = (0..3)
            .map(|_| TcpStream::connect(address).unwrap())
            .collect();
        let mut reader = ListenerReader::default();
        let pid = std::process::id() as i32;
        let mut snapshot = TickSnapshot::default();
        // The first read finds the listener.
        reader.read(std::iter::once(pid), &mut snapshot);
        let ours: Vec<_> = snapshot
            .listeners
            .iter()
            .filter(|l| l.address == address.to_string())
            .collect();
        assert_eq!(ours.len(), 1, "{:?}", snapshot.listeners);
        assert_eq!(ours[0].queued, 3);
        assert_eq!(ours[0].pids, vec![pid]);
        // Within QUEUE_PERIOD nothing more is read.
        let mut again = TickSnapshot::default();
        reader.read(std::iter::once(pid), &mut again);
        assert!(again.listeners.is_empty());
        std::thread::sleep(QUEUE_PERIOD);
        reader.read(std::iter::once(pid), &mut again);
        assert!(again
            .listeners
            .iter()
            .any(|l| l.address == address.to_string()));
    }
}
