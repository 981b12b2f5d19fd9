//! `idle`: the program mostly waited on timers, an event loop with nothing to do, or a person.
//!
//! ## What it detects
//! The verdict `idle`: timers, event loops waiting with nothing outstanding and terminal
//! input took most of the wall time (or hardly anything happened at all).
//!
//! ## Why it matters
//! There is no throughput bottleneck for concurrency to remove: a server waiting for clients
//! or a script sleeping between polls is as fast as what it waits for.
//!
//! ## Example
//! `sleep 2`; an asyncio server with no clients.
//!
//! ## Instead
//! Nothing; if it feels slow, look at what it waits for (a timer, a person, a peer).

use super::{pct, AdviceInput, Situation, Sizing};
use crate::advice::expected::{Band, Estimate};
use crate::analysis::verdict::WorkloadClass;

pub struct Idle;

impl Situation for Idle {
    fn name(&self) -> &'static str {
        "idle"
    }

    fn applies(&self, input: &AdviceInput) -> bool {
        input.verdict.class == WorkloadClass::Idle
    }

    fn measured(&self, input: &AdviceInput) -> String {
        let shares = &input.verdict.shares;
        // A server: its loop waits on its clients' connections for their next requests.
        if let Some(found) = input
            .concurrency
            .event_loop
            .as_ref()
            .filter(|found| found.peers > 0 && found.polling_idle_s > found.blocked_s)
        {
            return format!(
                "The event loop (thread {}) serving up to {} connections waited for their next \
                 requests {} of {} and used {:.2} of a core: the server has room for more \
                 load, and its clients, not the server, set the pace.",
                found.tid,
                found.peers,
                pct(shares.idle),
                input.own_time(),
                input.avg_cores
            );
        }
        format!(
            "{} of {} was spent waiting on timers, terminal input or an event loop with nothing \
             to do ({} computing): there is no throughput bottleneck for concurrency to remove.",
            pct(shares.idle + shares.child + shares.other),
            input.own_time(),
            pct(shares.computing)
        )
    }

    fn change(&self) -> &'static str {
        "nothing: there is no throughput bottleneck to remove"
    }

    fn expected(&self, input: &AdviceInput, _sizing: &Sizing) -> Estimate {
        Estimate::band(
            Band::unchanged().widened_for(input),
            "the program waits on timers, a person or an event loop with nothing to do: \
             concurrency cannot make those come sooner"
                .into(),
        )
    }
}
