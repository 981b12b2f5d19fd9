//! `cpu_quota`: a CPU-bound program held at its container's CPU limit.
//!
//! ## What it detects
//! A cgroup CPU quota (cgroup v1 `cpu.cfs_quota_us`, v2 `cpu.max`; the tightest among the
//! program's cgroup and its ancestors) while the program wanted the CPU (computing or
//! throttled at least 60 % of its own time), used at least 85 % of the quota on average, and
//! was held off the CPU by it (`throttled`) at least a tenth of its time.
//!
//! ## Why it matters
//! Kubernetes and Docker run most services under a quota. The quota is the bottleneck: more
//! processes or threads share the same quota, so they add switching and nothing else. Advice
//! that ignores it tells a throttled pod to add processes.
//!
//! ## Example
//! A CPython loop in a cgroup limited to half a core: it computes half the time and is
//! throttled the other half.
//!
//! ## Instead
//! Raise the limit (the pod's `resources.limits.cpu`, `docker run --cpus`), or make the work
//! cheaper. Requests near the limit also help the scheduler place the pod.

use super::{pct, AdviceInput, Situation, Sizing};
use crate::advice::expected::{Band, Estimate};
use crate::analysis::verdict::WorkloadClass;

/// Throttled at least this share of the program's own time...
const THROTTLED: f64 = 0.1;
/// ...while using at least this share of the quota.
const AT_QUOTA: f64 = 0.85;

pub struct CpuQuota;

impl Situation for CpuQuota {
    fn name(&self) -> &'static str {
        "cpu_quota"
    }

    fn applies(&self, input: &AdviceInput) -> bool {
        input.limits.quota.as_ref().is_some_and(|quota| {
            input.verdict.class == WorkloadClass::CpuBound
                && input.verdict.shares.throttled >= THROTTLED
                && input.avg_cores >= AT_QUOTA * quota.cores
        })
    }

    fn measured(&self, input: &AdviceInput) -> String {
        let Some(quota) = input.limits.quota.as_ref() else {
            return String::new();
        };
        let shares = &input.verdict.shares;
        format!(
            "The program's cgroup ({}) may use {:.2} cores of CPU time (its CPU quota); it used \
             {:.2} on average, computing {} of the wall time and held off the CPU by the quota \
             (throttled) {}: the container's CPU limit is the bottleneck, not the program's \
             concurrency.",
            quota.cgroup,
            quota.cores,
            input.avg_cores,
            pct(shares.computing),
            pct(shares.throttled)
        )
    }

    fn sizing(&self, input: &AdviceInput) -> Sizing {
        let cores = input.limits.quota.as_ref().map_or(1.0, |q| q.cores);
        Sizing {
            workers: Some(cores.ceil().max(1.0) as u32),
            ceiling: Some(1.0),
            text: Some(format!(
                "Speedup ceiling: 1.0x. More processes or threads share the same {cores:.2} \
                 cores of quota; only a higher limit (each added core of quota allows about one \
                 more core of work, as far as the machine has cores) or cheaper work makes it \
                 faster."
            )),
        }
    }

    fn change(&self) -> &'static str {
        "more processes or threads under the same quota"
    }

    fn expected(&self, input: &AdviceInput, _sizing: &Sizing) -> Estimate {
        let cores = input.limits.quota.as_ref().map_or(1.0, |q| q.cores);
        // The CPU more workers cost to start and to switch (a quarter of the run's at one
        // core: x0.8) takes longer under a quota of less than a core: 1/cores as long.
        let unchanged = Band::unchanged();
        let low = 1.0 / (1.0 + (1.0 / unchanged.low - 1.0) / cores.clamp(0.1, 1.0));
        Estimate::band(
            Band::new(unchanged.speedup, low, unchanged.high).widened_for(input),
            format!(
                "the cgroup may use {cores:.2} cores and uses them: more workers share the same \
                 quota and pay a little for starting and switching, stretched by a quota under \
                 one core"
            ),
        )
    }
}
