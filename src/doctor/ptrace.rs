//! Check "ptrace": whether the ptrace-protected files that say what a thread waits on
//! (`syscall`, `wchan`, `fd/`) can be read, and what decides it here: the uid, CAP_SYS_PTRACE,
//! and Yama's ptrace_scope where the kernel has Yama.
//!
//! Yama restricts only ptrace's "attach" mode, which /proc/PID/syscall and reading another
//! process's memory (Python stacks) need: scope 1 limits it to a process's ancestors (so `run`
//! keeps it, `attach` loses it), scope 2 to CAP_SYS_PTRACE, scope 3 forbids it to everyone.

use super::{describe_uid, Check, State, Target, Who};
use crate::target::attach::wait_sources_readable;

pub const NAME: &str = "ptrace";

const YAMA_SCOPE: &str = "/proc/sys/kernel/yama/ptrace_scope";

/// What a measurement loses without ptrace access.
const LOSS: &str = "off-CPU time would be 'unknown' instead of disk, network, lock... (wait \
                    kinds come from syscall, wchan and fd/), and Python stacks cannot be read";

/// Everything the verdict depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PtraceFacts {
    /// Yama's ptrace_scope; None when the kernel has no Yama.
    pub yama: Option<u8>,
    /// "uid 65534 (nobody)": who concadvise runs as.
    pub me: String,
    pub cap_sys_ptrace: bool,
    pub target: Option<TargetAccess>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetAccess {
    pub pid: i32,
    pub owner: String,
    /// Its real, effective and saved uids are all the caller's.
    pub same_user: bool,
    /// It holds capabilities the caller lacks (its CapPrm is not a subset of the caller's CapEff).
    pub more_capable: bool,
    /// Its syscall file could be read just now.
    pub readable: bool,
}

pub fn check(who: &Who, target: Option<&Target>) -> Check {
    let yama = std::fs::read_to_string(YAMA_SCOPE)
        .ok()
        .and_then(|text| parse_yama_scope(&text));
    verdict(&PtraceFacts {
        yama,
        me: who.describe(),
        cap_sys_ptrace: who.cap_sys_ptrace,
        target: target.map(|t| TargetAccess {
            pid: t.pid,
            owner: describe_uid(t.uids[0], t.owner.as_deref()),
            same_user: t.owned_by(who.uid),
            more_capable: t
                .capabilities
                .is_some_and(|caps| caps & !who.capabilities != 0),
            readable: wait_sources_readable(t.pid),
        }),
    })
}

/// "1\n" -> 1. An unreadable or unknown value is treated as no Yama.
pub fn parse_yama_scope(text: &str) -> Option<u8> {
    text.trim().parse().ok().filter(|scope| *scope <= 3)
}

/// What decides here, as one clause.
fn rules(yama: Option<u8>) -> &'static str {
    match yama {
        None => "this kernel has no Yama, so only the uid and CAP_SYS_PTRACE decide",
        Some(0) => "Yama's ptrace_scope is 0, so only the uid and CAP_SYS_PTRACE decide",
        Some(1) => {
            "Yama's ptrace_scope is 1: only a process's ancestors (as under `concadvise run`) or \
             CAP_SYS_PTRACE may read its syscall"
        }
        Some(2) => "Yama's ptrace_scope is 2: only CAP_SYS_PTRACE may read a process's syscall",
        Some(_) => "Yama's ptrace_scope is 3: no process may read another's syscall, not even root",
    }
}

fn capability(facts: &PtraceFacts) -> &'static str {
    if facts.cap_sys_ptrace {
        "with CAP_SYS_PTRACE"
    } else {
        "without CAP_SYS_PTRACE"
    }
}

pub fn verdict(facts: &PtraceFacts) -> Check {
    let rules = rules(facts.yama);
    match &facts.target {
        Some(target) => target_verdict(facts, target, rules),
        None => own_processes_verdict(facts, &facts.me, rules),
    }
}

/// For a PID: readable or not, and for not, the one remedy that fits why (most of its length
/// is the messages).
fn target_verdict(facts: &PtraceFacts, target: &TargetAccess, rules: &str) -> Check {
    let relation = if target.same_user {
        format!("it runs as you, {}", target.owner)
    } else {
        format!(
            "it runs as {}, you as {} {}",
            target.owner,
            facts.me,
            capability(facts)
        )
    };
    if target.readable {
        return Check::ok(
            NAME,
            format!(
                "PID {}'s syscall, wchan and fd/ are readable: {relation}; {rules}",
                target.pid
            ),
        );
    }
    let todo = match facts.yama {
        Some(3) => "nothing but a reboot lowers ptrace_scope 3: measure on another machine",
        _ if facts.cap_sys_ptrace => {
            if target.more_capable {
                "it holds capabilities concadvise lacks, and the kernel (or a security module: \
                 SELinux, AppArmor, Landlock) refuses it even with CAP_SYS_PTRACE: measure the \
                 program started under `concadvise run` instead"
            } else {
                "refused even with CAP_SYS_PTRACE: a security module (SELinux, AppArmor, \
                 Landlock) forbids it; measure the program started under `concadvise run` \
                 instead"
            }
        }
        Some(2) => "give concadvise CAP_SYS_PTRACE (sudo, or docker run --cap-add SYS_PTRACE)",
        Some(1) if target.same_user => {
            "start the program under `concadvise run` (an ancestor may read it), or as root \
             sysctl kernel.yama.ptrace_scope=0, or give concadvise CAP_SYS_PTRACE"
        }
        _ if target.same_user && target.more_capable => {
            "it holds capabilities concadvise lacks: only CAP_SYS_PTRACE reads it; run \
             concadvise as root"
        }
        _ if target.same_user => {
            "it is not dumpable (setuid, or it called prctl(PR_SET_DUMPABLE, 0)): only \
             CAP_SYS_PTRACE reads it; run concadvise as root"
        }
        _ => {
            "run concadvise as the process's user or as root (in a container, with --cap-add \
             SYS_PTRACE)"
        }
    };
    Check::not_ok(
        NAME,
        State::Limited,
        format!(
            "PID {}'s syscall, wchan and fd/ are not readable: {relation}; {rules}. So {LOSS}",
            target.pid
        ),
        todo.to_string(),
    )
}

/// Without a PID: what `run` (the program is concadvise's descendant) and `attach` to the
/// user's own processes will be able to read.
fn own_processes_verdict(facts: &PtraceFacts, me: &str, rules: &str) -> Check {
    let cap = facts.cap_sys_ptrace;
    let others = if cap {
        "other users' too, with CAP_SYS_PTRACE"
    } else {
        "other users' need CAP_SYS_PTRACE, which you lack"
    };
    match facts.yama {
        Some(3) => Check::not_ok(
            NAME,
            State::Limited,
            format!("{rules}: under `run` and `attach` alike, {LOSS}"),
            "nothing but a reboot lowers ptrace_scope 3: measure on another machine".to_string(),
        ),
        Some(2) if !cap => Check::not_ok(
            NAME,
            State::Limited,
            format!("{rules}, and you ({me}) lack it: under `run` and `attach` alike, {LOSS}"),
            "give concadvise CAP_SYS_PTRACE (sudo, or docker run --cap-add SYS_PTRACE)".to_string(),
        ),
        Some(1) if !cap => Check::not_ok(
            NAME,
            State::Limited,
            format!(
                "{rules}: `run` reads the programs it starts, but under `attach` to a process \
                 that is not its descendant, {LOSS}"
            ),
            "measure with `concadvise run`, or as root sysctl kernel.yama.ptrace_scope=0, or \
             give concadvise CAP_SYS_PTRACE"
                .to_string(),
        ),
        _ => Check::ok(
            NAME,
            format!(
                "the syscall, wchan and fd/ of processes running as you, {me}, are readable \
                 under `run` and `attach`; {others} ({rules})"
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(yama: Option<u8>, cap: bool, target: Option<TargetAccess>) -> PtraceFacts {
        PtraceFacts {
            yama,
            me: "uid 1000 (dev)".into(),
            cap_sys_ptrace: cap,
            target,
        }
    }

    fn target(same_user: bool, readable: bool) -> TargetAccess {
        TargetAccess {
            pid: 42,
            owner: if same_user {
                "uid 1000".into()
            } else {
                "uid 0 (root)".into()
            },
            same_user,
            more_capable: false,
            readable,
        }
    }

    #[test]
    fn yama_scope_files_parse() {
        // The file's content for each scope, as the kernel writes it.
        for (text, scope) in [("0\n", 0), ("1\n", 1), ("2\n", 2), ("3\n", 3)] {
            assert_eq!(parse_yama_scope(text), Some(scope));
        }
        assert_eq!(parse_yama_scope("7\n"), None);
        assert_eq!(parse_yama_scope(""), None);
    }

    #[test]
    fn without_yama_only_uid_and_capability_decide() {
        let check = verdict(&facts(None, false, None));
        assert_eq!(check.state, State::Ok);
        assert!(check.found.contains("no Yama"), "{check:?}");
        assert!(check.found.contains("which you lack"));
        let check = verdict(&facts(None, false, Some(target(false, false))));
        assert_eq!(check.state, State::Limited);
        assert!(
            check
                .found
                .contains("it runs as uid 0 (root), you as uid 1000 (dev) without"),
            "{check:?}"
        );
        assert!(check.found.contains("'unknown'") && check.found.contains("Python stacks"));
        assert!(check
            .todo
            .unwrap()
            .contains("as the process's user or as root"));
    }

    #[test]
    fn each_yama_scope_without_a_pid() {
        // Scope 0: as without Yama.
        let check = verdict(&facts(Some(0), false, None));
        assert_eq!(check.state, State::Ok);
        assert!(check.found.contains("ptrace_scope is 0"));
        // Scope 1: `run` keeps its wait kinds, `attach` loses them unless CAP_SYS_PTRACE.
        let check = verdict(&facts(Some(1), false, None));
        assert_eq!(check.state, State::Limited);
        assert!(check.found.contains("`run` reads the programs it starts"));
        assert!(check.todo.unwrap().contains("ptrace_scope=0"));
        assert_eq!(verdict(&facts(Some(1), true, None)).state, State::Ok);
        // Scope 2: only CAP_SYS_PTRACE, under run too.
        let check = verdict(&facts(Some(2), false, None));
        assert_eq!(check.state, State::Limited);
        assert!(check.found.contains("under `run` and `attach` alike"));
        assert_eq!(verdict(&facts(Some(2), true, None)).state, State::Ok);
        // Scope 3: nobody, not even with the capability.
        let check = verdict(&facts(Some(3), true, None));
        assert_eq!(check.state, State::Limited);
        assert!(check.todo.unwrap().contains("reboot"));
    }

    #[test]
    fn each_yama_scope_for_a_process_of_ones_own_that_cannot_be_read() {
        let todo = |scope| {
            verdict(&facts(Some(scope), false, Some(target(true, false))))
                .todo
                .unwrap()
        };
        assert!(todo(0).contains("not dumpable"));
        assert!(todo(1).contains("concadvise run"));
        assert!(todo(2).contains("CAP_SYS_PTRACE"));
        assert!(todo(3).contains("reboot"));
        // Refused although concadvise has CAP_SYS_PTRACE (this machine's PID 1 holds
        // capabilities concadvise lacks): say so rather than "run as root".
        let mut protected = target(true, false);
        protected.more_capable = true;
        let todo = verdict(&facts(None, true, Some(protected))).todo.unwrap();
        assert!(todo.contains("even with CAP_SYS_PTRACE"), "{todo}");
        assert!(!todo.contains("run concadvise as root"));
        // Readable: ok whatever the scope, saying why.
        for scope in 0..=3 {
            let check = verdict(&facts(Some(scope), true, Some(target(false, true))));
            assert_eq!(check.state, State::Ok);
            assert!(check.found.contains("with CAP_SYS_PTRACE"), "{check:?}");
        }
    }
}
