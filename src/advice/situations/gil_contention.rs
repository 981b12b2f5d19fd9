//! `gil_contention`: CPython threads that want the CPU but take turns on the interpreter lock.
//!
//! ## What it detects
//! A CPU-bound run in a runtime with a GIL (not a free-threaded build) where two or more
//! threads of one process each computed a tenth of the wall time, together used about one
//! core, spent a fifth of their time parked on futexes and switched often (see
//! `analysis::contention`).
//!
//! ## Why it matters
//! Only one thread at a time runs Python code: however many threads there are, they do not
//! compute in parallel.
//!
//! ## Example
//! Four `threading.Thread`s each running a pure-Python loop.
//!
//! ## Instead
//! Move the CPU-bound work to processes (`ProcessPoolExecutor`), or to an extension that
//! releases the GIL, or run a free-threaded build.

use super::{
    cpu_sizing, parallel_code, parallel_cpu, pct, AdviceInput, CodeAdvice, Situation, Sizing,
};
use crate::advice::expected::Estimate;
use crate::analysis::verdict::WorkloadClass;

pub struct GilContention;

impl Situation for GilContention {
    fn name(&self) -> &'static str {
        "gil_contention"
    }

    fn applies(&self, input: &AdviceInput) -> bool {
        input.verdict.class == WorkloadClass::CpuBound
            && input.serialized.is_some()
            && input.has_gil()
    }

    fn measured(&self, input: &AdviceInput) -> String {
        serialized_reason(input)
    }

    fn sizing(&self, input: &AdviceInput) -> Sizing {
        cpu_sizing(input)
    }

    fn code(&self, input: &AdviceInput) -> Option<CodeAdvice> {
        parallel_code(input)
    }

    fn change(&self) -> &'static str {
        "the CPU-bound work in processes instead of threads"
    }

    fn expected(&self, input: &AdviceInput, sizing: &Sizing) -> Estimate {
        parallel_cpu(input, sizing.workers)
    }
}

/// Threads that took turns: how many, the cores they used, their lock share and switches.
pub fn serialized_reason(input: &AdviceInput) -> String {
    match input.serialized {
        Some(s) => format!(
            "{} threads wanted the CPU but together used {:.2} cores, spending {} of their time \
             parked on futexes and switching {:.0} times a second each: the threads did not \
             run in parallel, they took turns.",
            s.threads,
            s.cores_used,
            pct(s.lock_share),
            s.switches_per_s
        ),
        None => format!(
            "{} of the wall time every thread waited on a lock: the threads serialise on shared \
             state.",
            pct(input.verdict.shares.lock)
        ),
    }
}
