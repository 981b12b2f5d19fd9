//! Check "proc": whether the files every measurement reads are there and readable: a
//! process's stat, its threads' schedstat (exact CPU and run-queue time) and children files
//! (to follow the processes it starts), and whether /proc hides other users' processes.

use std::path::Path;

use super::{Check, State, Target};
use crate::sampler::proc_file::{read_once, ReadFailure};

pub const NAME: &str = "proc";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Readable,
    Denied,
    /// The file does not exist: the kernel lacks the feature.
    Absent,
}

/// What was tried, for the target or (without one) for concadvise's own process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcFacts {
    /// "PID 4242" or None for the user's own processes.
    pub pid: Option<i32>,
    pub stat: Access,
    pub schedstat: Access,
    pub children: Access,
    /// The hidepid= option /proc is mounted with, when it is not off.
    pub hidepid: Option<String>,
}

pub fn check(target: Option<&Target>) -> Check {
    let pid = target.map(|t| t.pid);
    let dir = match pid {
        Some(pid) => format!("/proc/{pid}"),
        None => "/proc/self".to_string(),
    };
    let task = format!(
        "{dir}/task/{}",
        pid.unwrap_or_else(|| std::process::id() as i32)
    );
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    verdict(&ProcFacts {
        pid,
        stat: access(&format!("{dir}/stat")),
        schedstat: access(&format!("{task}/schedstat")),
        children: access(&format!("{task}/children")),
        hidepid: hidepid(&mountinfo),
    })
}

fn access(path: &str) -> Access {
    match read_once(Path::new(path), &mut Vec::new()) {
        Ok(()) => Access::Readable,
        Err(ReadFailure::Denied) => Access::Denied,
        Err(ReadFailure::Gone) => Access::Absent,
        Err(ReadFailure::Other(_) | ReadFailure::NoDescriptors) => Access::Denied,
    }
}

/// The hidepid= mount option of /proc in a mountinfo text, unless it is off (0).
pub fn hidepid(mountinfo: &str) -> Option<String> {
    let line = mountinfo.lines().find(|line| {
        let mut fields = line.split_whitespace();
        fields.nth(4) == Some("/proc") && line.contains(" - proc ")
    })?;
    let options = line.split(" - ").nth(1)?.split_whitespace().nth(2)?;
    let value = options
        .split(',')
        .find_map(|option| option.strip_prefix("hidepid="))?;
    (!matches!(value, "0" | "off")).then(|| value.to_string())
}

/// One branch per outcome, worst first; most of its length is the messages.
pub fn verdict(facts: &ProcFacts) -> Check {
    let whose = match facts.pid {
        Some(pid) => format!("PID {pid}'s"),
        None => "your own processes'".to_string(),
    };
    let hidden = facts.hidepid.as_ref().map(|value| {
        format!(
            "/proc is mounted with hidepid={value}: other users' processes are {}",
            if matches!(value.as_str(), "1" | "noaccess") {
                "unreadable"
            } else {
                "invisible"
            }
        )
    });
    if facts.stat != Access::Readable || facts.schedstat == Access::Denied {
        let why = hidden.unwrap_or_else(|| "permission denied".to_string());
        return Check::not_ok(
            NAME,
            State::Missing,
            format!("cannot read {whose} stat and schedstat ({why}): nothing can be measured"),
            "run as the process's user or as root, or remount /proc without hidepid (or with \
             gid= a group you are in)"
                .to_string(),
        );
    }
    if facts.schedstat == Access::Absent {
        return Check::not_ok(
            NAME,
            State::Missing,
            format!(
                "{whose} threads have no schedstat file (a kernel without CONFIG_SCHED_INFO): \
                 their CPU and run-queue time cannot be measured"
            ),
            "use a kernel built with CONFIG_SCHED_INFO (or CONFIG_SCHEDSTATS), as distribution \
             kernels are"
                .to_string(),
        );
    }
    let hidden_note = hidden.map(|h| format!("; {h}")).unwrap_or_default();
    if facts.children != Access::Readable {
        return Check::not_ok(
            NAME,
            State::Limited,
            format!(
                "{whose} stat and schedstat are readable, but their threads' children files \
                 are not (a kernel without CONFIG_PROC_CHILDREN): processes they start are not \
                 followed{hidden_note}"
            ),
            "use a kernel built with CONFIG_PROC_CHILDREN (distribution kernels are), or measure \
             each process by its PID"
                .to_string(),
        );
    }
    Check::ok(
        NAME,
        format!(
            "{whose} stat, schedstat and children files are readable (CPU and run-queue time, \
             and the processes they start){hidden_note}"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(pid: Option<i32>, stat: Access, schedstat: Access, children: Access) -> ProcFacts {
        ProcFacts {
            pid,
            stat,
            schedstat,
            children,
            hidepid: None,
        }
    }

    #[test]
    fn readable_limited_and_missing() {
        use Access::*;
        let check = verdict(&facts(Some(42), Readable, Readable, Readable));
        assert_eq!(check.state, State::Ok);
        assert!(check.found.starts_with("PID 42's stat"), "{check:?}");
        let check = verdict(&facts(None, Readable, Readable, Absent));
        assert_eq!(check.state, State::Limited);
        assert!(check.found.contains("CONFIG_PROC_CHILDREN"));
        let check = verdict(&facts(None, Readable, Absent, Readable));
        assert_eq!(check.state, State::Missing);
        assert!(check.found.contains("CONFIG_SCHED_INFO"));
        let mut hidden = facts(Some(7), Denied, Denied, Denied);
        hidden.hidepid = Some("1".into());
        let check = verdict(&hidden);
        assert_eq!(check.state, State::Missing);
        assert!(check.found.contains("hidepid=1"), "{check:?}");
    }

    #[test]
    fn hidepid_from_mountinfo() {
        let plain = "22 28 0:5 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n";
        assert_eq!(hidepid(plain), None);
        let hidden = "22 28 0:5 / /proc rw,relatime - proc proc rw,hidepid=invisible,gid=27\n";
        assert_eq!(hidepid(hidden).as_deref(), Some("invisible"));
        let off = "22 28 0:5 / /proc rw,relatime - proc proc rw,hidepid=0\n";
        assert_eq!(hidepid(off), None);
        // A bind mount of another proc elsewhere does not count.
        let elsewhere = "30 28 0:5 / /host/proc rw - proc proc rw,hidepid=2\n";
        assert_eq!(hidepid(elsewhere), None);
    }
}
