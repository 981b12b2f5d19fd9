//! `mixed`: neither computing nor waiting on I/O dominates (the situation when no other applies).
//!
//! ## What it detects
//! Anything the other situations do not: typically a run where computing and I/O each take a
//! large share, or whose phases want different things (then each phase is advised alone).
//!
//! ## Why it matters
//! One model rarely fits both halves; overlapping the waits and parallelising the
//! computation are different changes.
//!
//! ## Example
//! A job that downloads, then crunches, then uploads.
//!
//! ## Instead
//! Look at the phases; start with the part that takes the most wall time.

use super::{cpu_sizing, parallel_code, pct, AdviceInput, CodeAdvice, Situation, Sizing};
use crate::advice::expected::Estimate;

pub struct Mixed;

impl Situation for Mixed {
    fn name(&self) -> &'static str {
        "mixed"
    }

    fn applies(&self, _input: &AdviceInput) -> bool {
        true
    }

    fn measured(&self, input: &AdviceInput) -> String {
        let shares = &input.verdict.shares;
        format!(
            "Neither computing ({}) nor waiting on I/O ({}) dominates {}.",
            pct(shares.computing),
            pct(shares.io),
            input.own_time()
        )
    }

    fn sizing(&self, input: &AdviceInput) -> Sizing {
        cpu_sizing(input)
    }

    fn code(&self, input: &AdviceInput) -> Option<CodeAdvice> {
        parallel_code(input)
    }

    fn change(&self) -> &'static str {
        "the phase that takes the most time made concurrent its own way"
    }

    fn expected(&self, _input: &AdviceInput, _sizing: &Sizing) -> Estimate {
        Estimate::Unavailable(
            "neither computing nor waiting dominates: what a change buys depends on which part \
             it touches"
                .into(),
        )
    }
}
