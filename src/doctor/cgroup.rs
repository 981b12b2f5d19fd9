//! Check "cgroup": the cgroup version, and whether the target's CPU quota and throttling
//! counters can be read (a container's CPU limit, and the time it held the program off the CPU).

use super::{Check, State, Target};
use crate::target::cgroup::{cpu_cgroup, CgroupProblem, CgroupVersion, CpuCgroup};

pub const NAME: &str = "cgroup";

const LOSS: &str = "a CPU quota (a container's CPU limit) and the time it holds the program off \
                    the CPU cannot be measured";

pub fn check(target: Option<&Target>) -> Check {
    let pid = target.map_or(std::process::id() as i32, |t| t.pid);
    let whose = match target {
        Some(t) => format!("PID {}'s", t.pid),
        None => "concadvise's (and so `run`'s)".to_string(),
    };
    verdict(&whose, &cpu_cgroup(pid))
}

pub fn verdict(whose: &str, cgroup: &Result<CpuCgroup, CgroupProblem>) -> Check {
    let cgroup = match cgroup {
        Ok(cgroup) => cgroup,
        Err(problem) => {
            let why = match problem {
                CgroupProblem::Gone => "the process exited".to_string(),
                CgroupProblem::NoCpuController(why) | CgroupProblem::Unreadable(why) => why.clone(),
            };
            return Check::not_ok(
                NAME,
                State::Limited,
                format!("cannot find {whose} CPU cgroup ({why}): {LOSS}"),
                "in a container, mount the cgroup filesystem read-only at /sys/fs/cgroup (docker \
                 and podman do by default)"
                    .to_string(),
            );
        }
    };
    let version = match cgroup.version {
        CgroupVersion::V1 => "cgroup v1",
        CgroupVersion::V2 => "cgroup v2",
    };
    let place = format!("{version}, {whose} cgroup {}", cgroup.path);
    let quota = match &cgroup.quota {
        Ok(None) => "no CPU quota".to_string(),
        Ok(Some(quota)) => format!(
            "a CPU quota of {:.2} cores (set by {})",
            quota.cores(),
            quota.set_by.display()
        ),
        Err(why) => return unreadable(&place, why),
    };
    let counters = match &cgroup.throttling {
        Ok(Some(t)) => format!(
            "throttling counters readable (throttled in {} of {} periods, {:.2} s so far)",
            t.throttled_periods,
            t.periods,
            t.throttled_ns as f64 / 1e9
        ),
        Ok(None) => match cgroup.quota {
            Ok(Some(_)) => {
                return unreadable(&place, "its cpu.stat has no throttling counters");
            }
            _ => "no throttling counters (none are kept where no quota can apply)".to_string(),
        },
        Err(why) => return unreadable(&place, why),
    };
    Check::ok(NAME, format!("{place}: {quota}; {counters}"))
}

fn unreadable(place: &str, why: &str) -> Check {
    Check::not_ok(
        NAME,
        State::Limited,
        format!("{place}: cannot read its CPU limits ({why}): {LOSS}"),
        "make the cgroup's cpu.max / cpu.cfs_quota_us and cpu.stat readable (they are \
         world-readable unless a mount or policy hides them)"
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::cgroup::{CpuQuota, Throttling};
    use std::path::PathBuf;

    fn cgroup(
        quota: Result<Option<CpuQuota>, String>,
        throttling: Result<Option<Throttling>, String>,
    ) -> Result<CpuCgroup, CgroupProblem> {
        Ok(CpuCgroup {
            version: CgroupVersion::V2,
            path: "/app.service".into(),
            dir: PathBuf::from("/sys/fs/cgroup/app.service"),
            quota,
            throttling,
        })
    }

    fn half_core() -> CpuQuota {
        CpuQuota {
            quota_us: 50_000,
            period_us: 100_000,
            set_by: PathBuf::from("/sys/fs/cgroup/app.service"),
        }
    }

    #[test]
    fn quota_and_counters_readable() {
        let throttling = Throttling {
            periods: 20,
            throttled_periods: 10,
            throttled_ns: 1_040_000_000,
            of: PathBuf::from("/sys/fs/cgroup/app.service"),
        };
        let check = verdict(
            "PID 7's",
            &cgroup(Ok(Some(half_core())), Ok(Some(throttling))),
        );
        assert_eq!(check.state, State::Ok);
        assert!(check.found.contains("cgroup v2"));
        assert!(check.found.contains("0.50 cores"));
        assert!(
            check.found.contains("10 of 20 periods, 1.04 s"),
            "{check:?}"
        );
        let check = verdict("PID 7's", &cgroup(Ok(None), Ok(None)));
        assert_eq!(check.state, State::Ok);
        assert!(check.found.contains("no CPU quota"));
    }

    #[test]
    fn unreadable_or_absent_is_limited() {
        let check = verdict(
            "PID 7's",
            &cgroup(Err("cpu.max: Permission denied".into()), Ok(None)),
        );
        assert_eq!(check.state, State::Limited);
        assert!(check.found.contains("Permission denied"));
        let check = verdict("PID 7's", &cgroup(Ok(Some(half_core())), Ok(None)));
        assert_eq!(check.state, State::Limited);
        let check = verdict(
            "PID 7's",
            &Err(CgroupProblem::NoCpuController("no cgroup mounted".into())),
        );
        assert_eq!(check.state, State::Limited);
        assert!(check.todo.unwrap().contains("/sys/fs/cgroup"));
    }
}
