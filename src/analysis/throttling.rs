//! CPU quotas: when a cgroup held its threads off the CPU, tick by tick, so the accountant can call that time `throttled`.
//!
//! A thread of a cgroup at its quota is runnable but not allowed to run until the next
//! period. Depending on the kernel that time shows in schedstat as run-queue wait, or not at
//! all (the thread reads `R` at both samples while its CPU counter stands still). Either way
//! it is not computing, and not the machine's other load: it is the container's limit.
//!
//! A cgroup is *throttling* at a tick when, over the last quota period, it used at least 90 %
//! of its quota (from its own usage counter where readable, else from its threads in the tree)
//! or its `nr_throttled` counter moved. Then every thread of it that was runnable and not
//! running during the tick was throttled: its run-queue wait, and the time it was seen
//! runnable without running. Otherwise the cgroup's own throttled-time counter, when it moved,
//! is shared among those threads, never more than each one waited. (Run-queue wait of a
//! cgroup at its quota that other load caused is counted as throttled too: at its quota it
//! could not have run anyway.)

use std::collections::{HashMap, VecDeque};

use crate::sampler::observation::{CgroupInfo, CgroupSample};

/// At least this share of the quota used over a period is "at its quota".
const AT_QUOTA: f64 = 0.9;

#[derive(Debug, Clone)]
struct Group {
    info: CgroupInfo,
    previous: Option<CgroupSample>,
    /// (tick end, CPU used in the tick) over the last period.
    window: VecDeque<(u64, f64)>,
    /// When nr_throttled last moved.
    throttled_at_ns: Option<u64>,
    /// Throttled time by the cgroup's own counter over the measurement.
    counted_ns: f64,
}

/// What one cgroup did in one tick.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GroupTick {
    /// At its quota: all the runnable time its threads did not run was throttled.
    pub at_quota: bool,
    /// Its throttled-time counter's advance in the tick.
    pub counted_ns: f64,
}

#[derive(Debug, Clone, Default)]
pub struct Throttling {
    groups: HashMap<u32, Group>,
}

impl Throttling {
    pub fn note(&mut self, infos: &[CgroupInfo]) {
        for info in infos {
            self.groups.entry(info.id).or_insert_with(|| Group {
                info: info.clone(),
                previous: None,
                window: VecDeque::new(),
                throttled_at_ns: None,
                counted_ns: 0.0,
            });
        }
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Each cgroup's state in the tick ending at `at_ns`, from its counters and, for those
    /// without a usage counter, the CPU its threads in the tree used (`tree_usage_ns`).
    pub fn tick(
        &mut self,
        at_ns: u64,
        samples: &[CgroupSample],
        tree_usage_ns: &HashMap<u32, f64>,
    ) -> HashMap<u32, GroupTick> {
        let mut ticks = HashMap::new();
        for sample in samples {
            let Some(group) = self.groups.get_mut(&sample.id) else {
                continue;
            };
            let previous = group.previous.replace(*sample);
            let Some(previous) = previous else {
                continue;
            };
            let usage_ns = match (sample.usage_ns, previous.usage_ns) {
                (Some(now), Some(before)) => now.saturating_sub(before) as f64,
                _ => tree_usage_ns.get(&sample.id).copied().unwrap_or(0.0),
            };
            if sample.nr_throttled > previous.nr_throttled {
                group.throttled_at_ns = Some(at_ns);
            }
            let counted_ns = sample.throttled_ns.saturating_sub(previous.throttled_ns) as f64;
            group.counted_ns += counted_ns;
            let period = group.info.period_ns.max(1);
            group.window.push_back((at_ns, usage_ns));
            while group
                .window
                .front()
                .is_some_and(|(at, _)| at_ns.saturating_sub(*at) > period)
            {
                group.window.pop_front();
            }
            let covered = match group.window.front() {
                Some((first, _)) => (at_ns.saturating_sub(*first) as f64).max(1.0),
                None => 1.0,
            };
            // The first tick of the window closed at `first`: what it used came before.
            let used: f64 = group.window.iter().skip(1).map(|(_, ns)| ns).sum();
            let allowed = group.info.quota_cores * covered;
            let recently_throttled = group
                .throttled_at_ns
                .is_some_and(|at| at_ns.saturating_sub(at) < period);
            let at_quota =
                (group.window.len() > 1 && used >= AT_QUOTA * allowed) || recently_throttled;
            ticks.insert(
                sample.id,
                GroupTick {
                    at_quota,
                    counted_ns,
                },
            );
        }
        ticks
    }

    /// The tightest quota among the cgroups the tree ran under, and that cgroup.
    pub fn tightest(&self) -> Option<&CgroupInfo> {
        self.groups
            .values()
            .map(|g| &g.info)
            .min_by(|a, b| a.quota_cores.total_cmp(&b.quota_cores))
    }

    pub fn get(&self, id: u32) -> Option<&CgroupInfo> {
        self.groups.get(&id).map(|g| &g.info)
    }

    /// Throttled time by the cgroups' own counters over the measurement.
    pub fn counted_ns(&self) -> f64 {
        self.groups.values().map(|g| g.counted_ns).sum()
    }
}

/// A thread (pid, tid) and nanoseconds of its time.
pub type ThreadNs = ((i32, i32), f64);

/// How much of each thread's waiting for the CPU (`candidates`) in one cgroup and tick was
/// throttling.
pub fn allowances(tick: GroupTick, candidates: &[ThreadNs]) -> Vec<ThreadNs> {
    let total: f64 = candidates.iter().map(|(_, ns)| ns).sum();
    candidates
        .iter()
        .map(|(key, candidate)| {
            let allowed = if tick.at_quota {
                *candidate
            } else if total > 0.0 {
                (tick.counted_ns * candidate / total).min(*candidate)
            } else {
                0.0
            };
            (*key, allowed)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn group(quota_cores: f64) -> CgroupInfo {
        CgroupInfo {
            id: 1,
            path: "/limited".into(),
            version: 1,
            quota_cores,
            period_ns: 100 * MS,
        }
    }

    fn sample(nr_throttled: u64, throttled_ns: u64) -> CgroupSample {
        CgroupSample {
            id: 1,
            nr_throttled,
            throttled_ns,
            usage_ns: None,
        }
    }

    #[test]
    fn a_cgroup_using_its_half_core_is_at_its_quota_even_in_the_ticks_it_does_not_run() {
        let mut throttling = Throttling::default();
        throttling.note(&[group(0.5)]);
        let mut at_quota_ticks = 0;
        // 10 ms ticks: 50 ms running, 50 ms held, as CFS does with 50 ms of a 100 ms period;
        // the counters do not move (as on kernels that account throttling as run delay).
        for tick in 0..100u64 {
            let used = if tick % 10 < 5 { 10.0 * MS as f64 } else { 0.0 };
            let usage = HashMap::from([(1, used)]);
            let ticks = throttling.tick(tick * 10 * MS, &[sample(0, 0)], &usage);
            if ticks.get(&1).is_some_and(|t| t.at_quota) {
                at_quota_ticks += 1;
            }
        }
        assert!(at_quota_ticks >= 85, "{at_quota_ticks}");
    }

    #[test]
    fn a_cgroup_far_below_its_quota_is_not_throttling_unless_its_counters_say_so() {
        let mut throttling = Throttling::default();
        throttling.note(&[group(2.0)]);
        for tick in 0..50u64 {
            let usage = HashMap::from([(1, 2.0 * MS as f64)]);
            let ticks = throttling.tick(tick * 10 * MS, &[sample(0, 0)], &usage);
            assert!(!ticks.get(&1).is_some_and(|t| t.at_quota));
        }
        let usage = HashMap::from([(1, 2.0 * MS as f64)]);
        let ticks = throttling.tick(500 * MS, &[sample(1, 3 * MS)], &usage);
        let tick = ticks[&1];
        assert!(tick.at_quota);
        assert_eq!(tick.counted_ns, 3e6);
        assert_eq!(throttling.counted_ns(), 3e6);
    }

    #[test]
    fn a_counted_throttle_is_shared_by_what_each_thread_waited_and_never_exceeds_it() {
        let tick = GroupTick {
            at_quota: false,
            counted_ns: 6.0,
        };
        let shares = allowances(tick, &[((1, 1), 2.0), ((1, 2), 10.0)]);
        assert_eq!(shares, vec![((1, 1), 1.0), ((1, 2), 5.0)]);
        let all = allowances(
            GroupTick {
                at_quota: true,
                counted_ns: 0.0,
            },
            &[((1, 1), 2.0)],
        );
        assert_eq!(all, vec![((1, 1), 2.0)]);
    }
}
