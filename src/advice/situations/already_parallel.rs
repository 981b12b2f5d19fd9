//! `already_parallel`: a CPU-bound program that already keeps every available core busy.
//!
//! ## What it detects
//! The verdict `cpu-bound` with the tree wanting at least 85 % of the cores available on
//! average: computing, or ready to and waiting for a CPU that other load on the machine holds
//! (threads of a native program, or processes).
//!
//! ## Why it matters
//! More concurrency cannot make it faster on this machine: it only adds switching.
//!
//! ## Example
//! `multiprocessing.Pool(2)` on two cores; `make -j2`.
//!
//! ## Instead
//! Make the work cheaper (profile the hot code) or give it more cores.

use super::{pct, AdviceInput, Situation, Sizing};
use crate::advice::expected::{Band, Estimate};
use crate::analysis::structure::Structure;
use crate::analysis::verdict::WorkloadClass;

/// Using at least this share of the cores is using them all.
pub const ALL_CORES: f64 = 0.85;

pub struct AlreadyParallel;

impl Situation for AlreadyParallel {
    fn name(&self) -> &'static str {
        "already_parallel"
    }

    fn applies(&self, input: &AdviceInput) -> bool {
        input.verdict.class == WorkloadClass::CpuBound
            && input.avg_cores_wanted >= ALL_CORES * input.cores
    }

    fn measured(&self, input: &AdviceInput) -> String {
        let concurrency = input.concurrency;
        let how = match concurrency.structure {
            Structure::Processes => format!("{} processes", concurrency.computing_processes),
            Structure::Threads => format!("{} threads", concurrency.computing_threads),
            Structure::Mixed => format!(
                "{} threads in {} processes",
                concurrency.computing_threads, concurrency.computing_processes
            ),
            Structure::Serial | Structure::EventLoop => "its threads".to_string(),
        };
        format!(
            "{} of {} was spent computing, using {:.2} of {:.0} cores on average \
             (wanting {:.2}) with {how} busy: the program is already parallel and uses the whole \
             machine.",
            pct(input.verdict.shares.computing),
            input.own_time(),
            input.avg_cores,
            input.cores,
            input.avg_cores_wanted
        )
    }

    fn change(&self) -> &'static str {
        "more processes or threads"
    }

    fn expected(&self, input: &AdviceInput, _sizing: &Sizing) -> Estimate {
        Estimate::band(
            Band::unchanged().widened_for(input),
            format!(
                "the program already wants {:.2} of the {:.0} cores: more workers share the \
                 same cores and pay a little for switching",
                input.avg_cores_wanted, input.cores
            ),
        )
    }
}
