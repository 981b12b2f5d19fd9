//! `sequential_processes`: CPU work done by a chain of processes run one after another.
//!
//! ## What it detects
//! A CPU-bound run whose structure is serial while its CPU is spread over many processes
//! (at least three, none with half of it): a shell loop, `make -j1`, a script that calls a
//! compiler or a converter once per file.
//!
//! ## Why it matters
//! The steps are separate processes already: if they are independent, running N of them at
//! once uses N cores with no change to the programs themselves.
//!
//! ## Example
//! `for f in *.c; do cc -O2 -c "$f"; done`
//!
//! ## Instead
//! Run the independent steps side by side: `make -jN`, `xargs -P N`, GNU parallel, or a
//! process pool in the driver script.

use super::{cpu_sizing, parallel_cpu, pct, AdviceInput, Situation, Sizing};
use crate::advice::expected::Estimate;
use crate::analysis::structure::Structure;
use crate::analysis::verdict::WorkloadClass;

/// At least this many processes computed...
const MIN_PROCESSES: usize = 3;
/// ...and none of them did this share of the CPU.
const MAX_SHARE_OF_ONE: f64 = 0.5;

pub struct SequentialProcesses;

impl SequentialProcesses {
    fn busiest_share(input: &AdviceInput) -> (usize, f64) {
        let total: f64 = input.processes.iter().map(|p| p.cpu_s).sum();
        let computing = input
            .processes
            .iter()
            .filter(|p| p.cpu_s >= 0.01 * total)
            .count();
        let busiest = input.processes.first().map_or(0.0, |p| p.cpu_s);
        (computing, if total > 0.0 { busiest / total } else { 1.0 })
    }
}

impl Situation for SequentialProcesses {
    fn name(&self) -> &'static str {
        "sequential_processes"
    }

    fn applies(&self, input: &AdviceInput) -> bool {
        let (computing, busiest) = Self::busiest_share(input);
        input.verdict.class == WorkloadClass::CpuBound
            && input.concurrency.structure == Structure::Serial
            && computing >= MIN_PROCESSES
            && busiest < MAX_SHARE_OF_ONE
    }

    fn measured(&self, input: &AdviceInput) -> String {
        let (computing, busiest) = Self::busiest_share(input);
        format!(
            "{} of {} was spent computing, in {computing} processes run one after \
             another (the busiest did {} of the CPU), using {:.2} of {:.0} cores with about \
             {:.1} activity at a time: the steps are separate processes already, so if they \
             are independent, running several at once needs no change to the programs.",
            pct(input.verdict.shares.computing),
            input.own_time(),
            pct(busiest),
            input.avg_cores,
            input.cores,
            input.concurrency.in_flight
        )
    }

    fn sizing(&self, input: &AdviceInput) -> Sizing {
        cpu_sizing(input)
    }

    fn change(&self) -> &'static str {
        "the independent steps run side by side"
    }

    fn expected(&self, input: &AdviceInput, sizing: &Sizing) -> Estimate {
        parallel_cpu(input, sizing.workers)
    }
}
