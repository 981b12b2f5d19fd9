//! `stopped`: the program was held from outside for most of the run.
//!
//! ## What it detects
//! The verdict `stopped`: threads in state T (a stop signal, job control's Ctrl-Z) or t
//! (stopped by a tracer), or in a frozen cgroup, for at least half the wall time.
//!
//! ## Why it matters
//! Stopped time says nothing about what the program needs: it ran for too little of the
//! measurement to judge it, and no concurrency changes how long someone else holds it.
//!
//! ## Example
//! `kill -STOP` for two seconds; a debugger sitting at a breakpoint.
//!
//! ## Instead
//! Measure again while nothing holds it (the summary says who stopped it).

use super::{pct, AdviceInput, Situation, Sizing};
use crate::advice::expected::{Band, Estimate};
use crate::analysis::verdict::WorkloadClass;

pub struct Stopped;

impl Situation for Stopped {
    fn name(&self) -> &'static str {
        "stopped"
    }

    fn applies(&self, input: &AdviceInput) -> bool {
        input.verdict.class == WorkloadClass::Stopped
    }

    fn measured(&self, input: &AdviceInput) -> String {
        format!(
            "The program was stopped from outside (a stop signal or Ctrl-Z, a debugger or \
             tracer, or a frozen cgroup) for {} of the {:.1} s wall time: stopped time says \
             nothing about what it needs.",
            pct(input.verdict.shares.stopped),
            input.wall_s
        )
    }

    fn fallback(&self) -> &'static str {
        "idle"
    }

    fn change(&self) -> &'static str {
        "nothing: measure again while nothing holds the program"
    }

    fn expected(&self, _input: &AdviceInput, _sizing: &Sizing) -> Estimate {
        Estimate::band(
            Band::unchanged(),
            "no concurrency changes how long the program is held from outside".into(),
        )
    }
}
