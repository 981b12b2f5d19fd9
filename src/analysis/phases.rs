//! Splits the timeline into phases where the kind of work changes and stays changed.

use super::accountant::TimeSplit;
use super::timeline::Timeline;
use super::verdict::{classify, Verdict, WorkloadClass};
use super::wait_kind::WaitKind;

/// A phase shorter than this share of the run (or than `MIN_BUCKETS`) is a blip, not a phase.
const MIN_SHARE: f64 = 0.05;
const MIN_BUCKETS: usize = 3;
/// Phases that take at least this share of the run count when deciding if phases disagree.
pub const SIGNIFICANT_SHARE: f64 = 0.15;

#[derive(Debug, Clone)]
pub struct Phase {
    pub start_ns: f64,
    pub end_ns: f64,
    pub wall: TimeSplit,
    /// Thread CPU time in the phase (can exceed the phase's length with several threads).
    pub cpu_ns: f64,
    pub verdict: Verdict,
}

impl Phase {
    pub fn seconds(&self) -> f64 {
        (self.end_ns - self.start_ns) / 1e9
    }

    pub fn avg_cores(&self) -> f64 {
        self.cpu_ns / 1e9 / self.seconds().max(f64::MIN_POSITIVE)
    }

    /// Up to `count` wait kinds with over 1% of the phase's wall time, largest first.
    pub fn dominant_waits(&self, count: usize) -> Vec<WaitKind> {
        let split = &self.wall;
        let mut kinds: Vec<WaitKind> = WaitKind::ALL
            .into_iter()
            .filter(|kind| split.wait(*kind) > 0.01 * split.total_ns())
            .collect();
        kinds.sort_by(|a, b| split.wait(*b).total_cmp(&split.wait(*a)));
        kinds.truncate(count);
        kinds
    }
}

/// Phases in time order, the last ending at `end_ns` (the end of the run). Each bucket is classified, labels are smoothed with a majority vote
/// over five neighbours, short runs join the phase before them, and each phase is classified
/// again from its summed time.
pub fn detect(timeline: &Timeline, end_ns: f64) -> Vec<Phase> {
    let buckets = timeline.buckets();
    if buckets.is_empty() {
        return Vec::new();
    }
    let raw: Vec<Option<WorkloadClass>> = buckets
        .iter()
        .map(|b| (b.total_ns() > 0.0).then(|| classify(b, u64::MAX).class))
        .collect();
    let smoothed: Vec<Option<WorkloadClass>> = (0..raw.len())
        .map(|i| majority(&raw[i.saturating_sub(2)..(i + 3).min(raw.len())]).or(raw[i]))
        .collect();
    // Runs of equal labels: (label, first bucket, bucket count).
    let mut runs: Vec<(Option<WorkloadClass>, usize, usize)> = Vec::new();
    for (i, label) in smoothed.iter().enumerate() {
        match runs.last_mut() {
            Some(run) if run.0 == *label => run.2 += 1,
            _ => runs.push((*label, i, 1)),
        }
    }
    let min_len = MIN_BUCKETS.max((MIN_SHARE * buckets.len() as f64).ceil() as usize);
    let mut merged: Vec<(Option<WorkloadClass>, usize, usize)> = Vec::new();
    for run in runs {
        let only_one = merged.len() == 1;
        match merged.last_mut() {
            Some(last) if run.2 < min_len || last.0 == run.0 => last.2 += run.2,
            // A short first run joins the next phase instead.
            Some(last) if last.2 < min_len && only_one => {
                *last = (run.0, last.1, last.2 + run.2);
            }
            _ => merged.push(run),
        }
    }
    let width = timeline.bucket_ns();
    merged
        .into_iter()
        .map(|(_, first, count)| {
            let mut wall = TimeSplit::default();
            buckets[first..first + count]
                .iter()
                .for_each(|b| wall.add(b));
            Phase {
                start_ns: first as f64 * width,
                end_ns: ((first + count) as f64 * width).min(end_ns.max(first as f64 * width)),
                cpu_ns: timeline.cpu_ns()[first..first + count].iter().sum(),
                verdict: classify(&wall, u64::MAX),
                wall,
            }
        })
        .collect()
}

fn majority(labels: &[Option<WorkloadClass>]) -> Option<WorkloadClass> {
    let present: Vec<WorkloadClass> = labels.iter().flatten().copied().collect();
    let count = |class: WorkloadClass| present.iter().filter(|c| **c == class).count();
    present
        .iter()
        .copied()
        .max_by_key(|class| count(*class))
        .filter(|class| 2 * count(*class) > present.len())
}

/// Whether significant phases want different things: a CPU-bound phase and an I/O-bound one,
/// each a significant share of the run. Idle, mixed and unknown phases want nothing definite
/// (a stretch where the GIL's waits outweighed computing on a busy machine is mixed, and must
/// not make a CPU-bound run mixed); the whole run's shares decide then.
pub fn disagree(phases: &[Phase]) -> bool {
    let total: f64 = phases.iter().map(|p| p.wall.total_ns()).sum();
    let mut classes: Vec<WorkloadClass> = phases
        .iter()
        .filter(|p| {
            matches!(
                p.verdict.class,
                WorkloadClass::CpuBound | WorkloadClass::IoBound
            )
        })
        .filter(|p| p.wall.total_ns() >= SIGNIFICANT_SHARE * total)
        .map(|p| p.verdict.class)
        .collect();
    classes.sort_by_key(|c| *c as u8);
    classes.dedup();
    classes.len() >= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A timeline of 100 ms ticks: `spec` is a list of (seconds, wall split of one tick).
    fn timeline(spec: &[(f64, TimeSplit)]) -> Timeline {
        let mut timeline = Timeline::default();
        let mut at = 0u64;
        for (seconds, tick) in spec {
            for _ in 0..(seconds * 10.0).round() as usize {
                at += 100_000_000;
                timeline.add(at, tick, tick.cpu_ns);
            }
        }
        timeline
    }

    const TICK: f64 = 100e6;

    #[test]
    fn sleep_then_compute_then_disk_is_three_phases_that_disagree() {
        let sleep = TimeSplit::with_waits(0.0, &[(WaitKind::Sleep, TICK)]);
        let cpu = TimeSplit::with_waits(TICK, &[]);
        let disk = TimeSplit::with_waits(0.4 * TICK, &[(WaitKind::Disk, 0.6 * TICK)]);
        let phases = detect(&timeline(&[(1.0, sleep), (1.0, cpu), (1.0, disk)]), 3e9);
        let classes: Vec<_> = phases.iter().map(|p| p.verdict.class).collect();
        assert_eq!(
            classes,
            [
                WorkloadClass::Idle,
                WorkloadClass::CpuBound,
                WorkloadClass::IoBound
            ]
        );
        assert!((phases[1].start_ns - 1e9).abs() < 1.5e8);
        assert!(disagree(&phases));
    }

    #[test]
    fn a_mixed_stretch_beside_a_cpu_bound_one_is_no_disagreement() {
        let cpu = TimeSplit::with_waits(TICK, &[]);
        let contended = TimeSplit::with_waits(0.5 * TICK, &[(WaitKind::Lock, 0.5 * TICK)]);
        let phases = detect(&timeline(&[(1.0, contended), (2.0, cpu)]), 3e9);
        let classes: Vec<_> = phases.iter().map(|p| p.verdict.class).collect();
        assert_eq!(classes, [WorkloadClass::Mixed, WorkloadClass::CpuBound]);
        assert!(!disagree(&phases));
    }

    #[test]
    fn a_blip_is_not_a_phase() {
        let cpu = TimeSplit::with_waits(TICK, &[]);
        let sleep = TimeSplit::with_waits(0.0, &[(WaitKind::Sleep, TICK)]);
        let phases = detect(&timeline(&[(2.0, cpu), (0.1, sleep), (2.0, cpu)]), 4.1e9);
        assert_eq!(phases.len(), 1);
        assert!(!disagree(&phases));
    }

    #[test]
    fn an_idle_start_does_not_make_a_cpu_bound_run_mixed() {
        let cpu = TimeSplit::with_waits(TICK, &[]);
        let sleep = TimeSplit::with_waits(0.0, &[(WaitKind::Sleep, TICK)]);
        let phases = detect(&timeline(&[(1.0, sleep), (4.0, cpu)]), 5e9);
        assert_eq!(phases.len(), 2);
        assert!(!disagree(&phases));
    }
}
