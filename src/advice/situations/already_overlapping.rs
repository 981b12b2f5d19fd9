//! `already_async` and `already_threaded`: an I/O-bound program that already overlaps its waits.
//!
//! ## What it detects
//! The verdict `io-bound` with two or more activities in flight on average: an event loop
//! waiting on several peers (`already_async`), or threads or processes blocked on I/O side
//! by side (`already_threaded`).
//!
//! ## Why it matters
//! "Use async" or "use threads" is what it already does. The question left is how far to go:
//! the pool-size formula gives the number in flight that would keep the cores busy, and once
//! many requests are in flight the peer (the server, the database, the disk) is the likely
//! limit, which more concurrency on this side cannot raise.
//!
//! ## Example
//! `asyncio.gather` over ten requests at a time; `ThreadPoolExecutor(8)` doing HTTP.
//!
//! ## Instead
//! Raise the number in flight step by step (a semaphore, the pool size) and measure each
//! step (`concadvise scale`); stop where throughput stops growing.

use super::disk_saturated::{held_to_disk, sizing_held_to_disk};
use super::{io_sizing, overlapped_io, pct, AdviceInput, Situation, Sizing};
use crate::advice::expected::Estimate;
use crate::analysis::structure::Structure;
use crate::analysis::verdict::WorkloadClass;

/// On average at least this many activities in flight is "already overlapping".
pub const OVERLAPPING: f64 = 2.0;

pub struct AlreadyOverlapping {
    /// The async flavour (an event loop), else threads or processes.
    pub event_loop: bool,
}

impl Situation for AlreadyOverlapping {
    fn name(&self) -> &'static str {
        if self.event_loop {
            "already_async"
        } else {
            "already_threaded"
        }
    }

    fn applies(&self, input: &AdviceInput) -> bool {
        let concurrency = input.concurrency;
        let looping = concurrency.structure == Structure::EventLoop;
        input.verdict.class == WorkloadClass::IoBound
            && concurrency.in_flight >= OVERLAPPING
            && looping == self.event_loop
    }

    fn measured(&self, input: &AdviceInput) -> String {
        let concurrency = input.concurrency;
        let shape = if self.event_loop {
            let runtime = input
                .event_loop_runtime
                .map_or("", |runtime| runtime.name.as_str());
            format!("already async: one {runtime} event loop had")
        } else {
            match concurrency.structure {
                Structure::Processes => format!(
                    "already concurrent: {} processes had",
                    concurrency.busy_processes
                ),
                _ => format!(
                    "already concurrent: {} busy threads had",
                    concurrency.busy_threads
                ),
            }
        };
        format!(
            "{} of {} was spent waiting on I/O (mostly {}), and the program is {shape} about \
             {:.1} waits in flight on average (peak {}): its waits already overlap, so the \
             question is how far to go, not whether to.",
            pct(input.verdict.shares.io),
            input.own_time(),
            input
                .verdict
                .dominant_wait
                .map_or("other", |kind| kind.name()),
            concurrency.in_flight,
            concurrency.peak_in_flight
        )
    }

    fn sizing(&self, input: &AdviceInput) -> Sizing {
        let in_flight = input.concurrency.in_flight;
        let mut sizing = io_sizing(input, in_flight);
        if let (Some(text), Some(workers)) = (sizing.text.as_mut(), sizing.workers) {
            let factor = f64::from(workers) / in_flight.max(1.0);
            text.push_str(&if factor > 1.5 {
                format!(
                    " That is {factor:.0}x today's {in_flight:.1} in flight: more could help only \
                     as long as the peer keeps up, which a client cannot see; raise it in steps \
                     and measure (concadvise scale)."
                )
            } else {
                format!(
                    " Today's {in_flight:.1} in flight is already about that: more concurrency \
                     on this side will not make it faster; the peer or the link is the limit."
                )
            });
        }
        sizing_held_to_disk(input, sizing)
    }

    fn change(&self) -> &'static str {
        "more requests in flight"
    }

    fn expected(&self, input: &AdviceInput, sizing: &Sizing) -> Estimate {
        held_to_disk(
            input,
            overlapped_io(input, sizing, input.concurrency.in_flight, "server"),
        )
    }
}
