//! `io_network`, `io_ipc`, `paging`, `io_disk`: a program that waits on one thing at a time.
//!
//! ## What it detects
//! The verdict `io-bound` (waiting on disk, network, pipes or paging at least half of the
//! program's own time, more than it computes) with about one wait in flight at a time; the
//! situation is named by the wait with the most wall time (disk for anything else).
//!
//! ## Why it matters
//! I/O-bound work gains from overlapping its waits, not from more cores: "use asyncio when
//! you can, threading when you must" (must: the libraries block). Disk files have no real
//! asynchronous path in asyncio (it hands them to threads). Paging is a memory shortage,
//! which more workers would make worse.
//!
//! ## Example
//! A loop of `urllib.request.urlopen` calls to a slow server; 4 KiB writes each fsync'ed.
//!
//! ## Instead
//! Overlap the waits: an event loop with an async client, or a thread pool of about the size
//! the formula gives (the runtime's profile says which).

use super::disk_saturated::{held_to_disk, sizing_held_to_disk};
use super::{
    hotspots_named, io_sizing, overlapped_io, pct, unnamed_code, AdviceInput, CodeAdvice,
    Situation, Sizing,
};
use crate::advice::expected::Estimate;
use crate::analysis::code::CodeState;
use crate::analysis::verdict::WorkloadClass;
use crate::analysis::wait_kind::WaitKind;

pub struct IoBound {
    name: &'static str,
    /// The dominant wait this one is for; `None`: any (the catch-all, disk).
    kind: Option<WaitKind>,
    sized: bool,
}

impl IoBound {
    pub const NETWORK: IoBound = IoBound {
        name: "io_network",
        kind: Some(WaitKind::Network),
        sized: true,
    };
    pub const IPC: IoBound = IoBound {
        name: "io_ipc",
        kind: Some(WaitKind::Ipc),
        sized: true,
    };
    pub const PAGING: IoBound = IoBound {
        name: "paging",
        kind: Some(WaitKind::Paging),
        sized: false,
    };
    pub const DISK: IoBound = IoBound {
        name: "io_disk",
        kind: None,
        sized: true,
    };
}

impl Situation for IoBound {
    fn name(&self) -> &'static str {
        self.name
    }

    fn applies(&self, input: &AdviceInput) -> bool {
        input.verdict.class == WorkloadClass::IoBound
            && self
                .kind
                .is_none_or(|kind| input.verdict.dominant_wait == Some(kind))
    }

    fn measured(&self, input: &AdviceInput) -> String {
        let shares = &input.verdict.shares;
        format!(
            "{} of {} was spent waiting on I/O (mostly {}) while only {} was spent computing, \
             about one wait at a time: I/O-bound work gains from overlapping its waits, not from \
             more cores.",
            pct(shares.io),
            input.own_time(),
            input.verdict.dominant_wait.map_or("other", WaitKind::name),
            pct(shares.computing)
        )
    }

    fn sizing(&self, input: &AdviceInput) -> Sizing {
        if self.sized {
            sizing_held_to_disk(input, io_sizing(input, 1.0))
        } else {
            Sizing::default()
        }
    }

    /// The function whose waits to overlap: the user's frame the waiting threads were in.
    fn code(&self, input: &AdviceInput) -> Option<CodeAdvice> {
        let kind = input.verdict.dominant_wait?;
        let hotspots = input.hotspots(CodeState::Wait(kind));
        let top = hotspots.first()?;
        let innermost = if top.innermost == top.place() {
            String::new()
        } else {
            format!(" (innermost: {})", top.innermost)
        };
        let unnamed = unnamed_code(&top.function).filter(|_| input.is_python());
        let how = if let Some(where_it_runs) = unnamed {
            format!(
                "The waits to overlap are those of {}, which runs {where_it_runs}: move the \
                 code of one call (one request, one query) into a function, then run several \
                 calls of it at once (asyncio.gather over an async version of it, or \
                 pool.map(function, items) on a ThreadPoolExecutor).",
                top.place()
            )
        } else if input.is_python() {
            format!(
                "The waits to overlap are those of {}: run several calls of {} at once \
                 (asyncio.gather over an async version of it, or pool.map({}, items) on a \
                 ThreadPoolExecutor).",
                top.place(),
                top.function,
                top.function
            )
        } else {
            format!(
                "The waits to overlap are those of {}: run several of them at once.",
                top.place()
            )
        };
        Some(CodeAdvice {
            reason: format!(
                "Where it waited on {}: {}{innermost}.",
                kind.name(),
                hotspots_named(&hotspots, kind.name())
            ),
            how,
        })
    }

    fn change(&self) -> &'static str {
        "the waits overlapped (several requests in flight at once)"
    }

    fn expected(&self, input: &AdviceInput, sizing: &Sizing) -> Estimate {
        let peer = match self.kind {
            Some(WaitKind::Network) => "server",
            Some(WaitKind::Ipc) => "peer process",
            Some(_) => "device",
            None => "disk",
        };
        if !self.sized {
            return Estimate::Unavailable(
                "paging ends when the working set fits in memory: how much it shrinks is up to \
                 the change"
                    .into(),
            );
        }
        held_to_disk(input, overlapped_io(input, sizing, 1.0, peer))
    }
}
