//! `cpu_bound` and `cpu_bound_free_threaded`: the program computes most of the time on fewer cores than it has.
//!
//! ## What it detects
//! The verdict `cpu-bound` (computing at least 60 % of the program's own time) while using
//! under 85 % of the cores, with no sign of threads taking turns on a lock.
//! `cpu_bound_free_threaded` is the same in a free-threaded build of a GIL runtime.
//!
//! ## Why it matters
//! CPU-bound work gains only from parallelism: tasks running at the same instant on several
//! cores. Overlapping waits (async) gains nothing here. In CPython the GIL serialises
//! threads, so only processes help; without a GIL threads run in parallel.
//!
//! ## Example
//! A single-threaded compression or checksum loop on a 2-core machine.
//!
//! ## Instead
//! Split the work into independent pieces for a pool of workers, one per core (the
//! runtime's profile says which kind).

use super::{
    cpu_sizing, parallel_code, parallel_cpu, pct, AdviceInput, CodeAdvice, Situation, Sizing,
};
use crate::advice::expected::Estimate;
use crate::analysis::structure::Structure;
use crate::analysis::verdict::WorkloadClass;

pub struct CpuBound {
    pub free_threaded: bool,
}

impl Situation for CpuBound {
    fn name(&self) -> &'static str {
        if self.free_threaded {
            "cpu_bound_free_threaded"
        } else {
            "cpu_bound"
        }
    }

    fn applies(&self, input: &AdviceInput) -> bool {
        input.verdict.class == WorkloadClass::CpuBound
            && (!self.free_threaded || input.runtime.free_threaded)
    }

    fn measured(&self, input: &AdviceInput) -> String {
        let concurrency = input.concurrency;
        let now = match concurrency.structure {
            Structure::Serial | Structure::EventLoop => String::new(),
            _ if concurrency.computing_threads < 2 => String::new(),
            _ => format!(
                " (already {} computing threads in {} processes)",
                concurrency.computing_threads, concurrency.computing_processes
            ),
        };
        format!(
            "{} of {} was spent computing, using {:.2} of {:.0} cores on average{now}: \
             CPU-bound work gains only from parallelism (tasks running at the same instant on \
             several cores), not from overlapping waits.",
            pct(input.verdict.shares.computing),
            input.own_time(),
            input.avg_cores,
            input.cores
        )
    }

    fn sizing(&self, input: &AdviceInput) -> Sizing {
        cpu_sizing(input)
    }

    fn code(&self, input: &AdviceInput) -> Option<CodeAdvice> {
        parallel_code(input)
    }

    fn change(&self) -> &'static str {
        "the work split among a pool of workers, one per core"
    }

    fn expected(&self, input: &AdviceInput, sizing: &Sizing) -> Estimate {
        parallel_cpu(input, sizing.workers)
    }
}
