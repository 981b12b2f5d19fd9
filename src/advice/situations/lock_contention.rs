//! `lock_contention`: threads that serialise on one lock instead of running in parallel.
//!
//! ## What it detects
//! A CPU-bound run whose busy threads took turns on about one core without a GIL to blame
//! (see `gil_contention`), or a mixed run in which locks took over a fifth of the wall time.
//!
//! ## Why it matters
//! More threads would only queue on the same lock; the critical section is the serial part
//! that Amdahl's law says bounds the speedup.
//!
//! ## Example
//! Four threads that each hold one mutex while they compute.
//!
//! ## Instead
//! Shorten the critical sections, shard the shared state, or give each worker its own data and
//! merge at the end.

use super::gil_contention::serialized_reason;
use super::{hotspots_named, AdviceInput, CodeAdvice, Situation, Sizing};
use crate::advice::expected::Estimate;
use crate::analysis::code::CodeState;
use crate::analysis::verdict::WorkloadClass;
use crate::analysis::wait_kind::WaitKind;

/// In a mixed run, locks taking this share of the wall time are the story.
const LOCK_SHARE: f64 = 0.2;

pub struct LockContention;

impl Situation for LockContention {
    fn name(&self) -> &'static str {
        "lock_contention"
    }

    fn applies(&self, input: &AdviceInput) -> bool {
        match input.verdict.class {
            WorkloadClass::CpuBound => input.serialized.is_some(),
            WorkloadClass::Mixed => input.verdict.shares.lock > LOCK_SHARE,
            _ => false,
        }
    }

    fn measured(&self, input: &AdviceInput) -> String {
        serialized_reason(input)
    }

    /// The line where the threads wait for the lock.
    fn code(&self, input: &AdviceInput) -> Option<CodeAdvice> {
        let hotspots = input.hotspots(CodeState::Wait(WaitKind::Lock));
        let top = hotspots.first()?;
        Some(CodeAdvice {
            reason: format!(
                "Where the threads waited for the lock: {}.",
                hotspots_named(&hotspots, "lock")
            ),
            how: format!(
                "They wait at {}: shorten what runs while that lock is held, or give each \
                 thread its own copy of what it guards.",
                top.place()
            ),
        })
    }

    fn change(&self) -> &'static str {
        "shorter critical sections, or data of its own for each worker"
    }

    fn expected(&self, _input: &AdviceInput, _sizing: &Sizing) -> Estimate {
        Estimate::Unavailable(
            "how much shorter the critical sections get is up to the change itself: one run \
             cannot tell"
                .into(),
        )
    }
}
