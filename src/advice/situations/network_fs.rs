//! `io_network_fs`: waiting on the files of a network filesystem.
//!
//! ## What it detects
//! An I/O-bound run whose dominant wait is on files of NFS, SMB/CIFS, Ceph, 9p, GlusterFS,
//! Lustre or a FUSE mount with a network subtype (sshfs, s3fs, gcsfuse, ...).
//!
//! ## Why it matters
//! The file server is the limit: more local concurrency queues behind it, and a stalled
//! server stalls every thread that touches the mount. "Disk" advice (more threads for more
//! I/O in flight) is wrong for it.
//!
//! ## Example
//! A script reading thousands of small files from an NFS home directory.
//!
//! ## Instead
//! Look at the server and the mount (its options, its latency); copy the data local once, or
//! read fewer, larger files.

use super::{pct, AdviceInput, Situation, Sizing};
use crate::advice::expected::Estimate;
use crate::analysis::verdict::WorkloadClass;
use crate::analysis::wait_kind::WaitKind;

pub struct NetworkFs;

impl Situation for NetworkFs {
    fn name(&self) -> &'static str {
        "io_network_fs"
    }

    fn applies(&self, input: &AdviceInput) -> bool {
        input.verdict.class == WorkloadClass::IoBound
            && input.verdict.dominant_wait == Some(WaitKind::NetworkFs)
    }

    fn measured(&self, input: &AdviceInput) -> String {
        let shares = &input.verdict.shares;
        format!(
            "{} of {} was spent waiting on files of a network filesystem (NFS, SMB, a network \
             FUSE...) while only {} was spent computing.",
            pct(shares.io),
            input.own_time(),
            pct(shares.computing)
        )
    }

    fn fallback(&self) -> &'static str {
        "io_disk"
    }

    fn change(&self) -> &'static str {
        "the data read local, or in fewer and larger files"
    }

    fn expected(&self, _input: &AdviceInput, _sizing: &Sizing) -> Estimate {
        Estimate::Unavailable(
            "the file server is the limit, and its capacity cannot be seen from the client".into(),
        )
    }
}
