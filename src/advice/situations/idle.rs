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
