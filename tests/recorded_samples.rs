//! The pure pipeline (wait kinds, accounting, verdict, advice) on /proc samples recorded from
//! real runs with `--record-samples`: deterministic, no process is launched.
//!
//! Fixtures in tests/fixtures/samples/, recorded on a 2-core x86_64 VM:
//! cpu_loop (workload cpu 1 s), sleep (sleep 1), disk_fdatasync (workload disk 1 s),
//! net_client (workload net-client to a 100 ms server), shell_child_cpu (sh -c 'workload cpu; true'),
//! lock_contention (workload locks, 4 threads), asyncio_client (python asyncio client of that server),
//! denied_sleep (`attach` run as user nobody to a root-owned `sleep`: syscall and wchan hidden),
//! go_program (`docker --help`: the docker client is a Go binary),
//! gil_threads (examples/python/gil_threads.py with 3 threads for 1 s),
//! asyncio_blocked_loop (examples/python/blocked_loop.py 3), asyncio_gather
//! (examples/python/async_client.py, 10 in flight to a 100 ms line server), asyncio_idle_server
//! (examples/python/async_server.py 1), thread_pool_http (examples/python/pool_client.py with 8
//! threads to a 200 ms HTTP server), process_pool (examples/python/process_pool.py 16 2),
//! node_blocked_loop (examples/node/blocked_loop.js 1.2), xz_pipeline (sh -c 'cat F F | xz -T1 |
//! wc -c' on 1.5 MB), socketpair_consumer (examples/python/socketpair_pipeline.py 300),
//! cpu_quota_half_core (workload cpu 1.2 s in a cgroup v1 with cfs_quota_us 50000 of 100000),
//! sqlite_autocommit (sqlite3 running 300 autocommit INSERTs), disk_saturated (workload
//! direct-writes 1 s on an ext4 loop device over /dev/shm that eight 256 KiB O_DIRECT writers
//! outside the tree kept busy), disk_own_writes (the same program on that disk alone); with
//! Python stacks (py-spy, CPython 3.11): python_blocked_loop_stacks
//! (examples/python/blocked_loop.py 3), python_thread_pool_stacks
//! (examples/python/pool_client.py, 48 requests on 4 threads to a 100 ms HTTP server).
//! Servers under load, attached for 1.6 s (Node 20, `wrk -t2 -c20`; CPython 3.11,
//! examples/python/load_generator.py with 20 clients): node_exec_sync_server (a handler
//! running `execSync('sleep 0.03')`), node_busy_handler_server (a 30 ms busy loop),
//! node_atomics_wait_server (`Atomics.wait` for 30 ms), node_awaiting_server (awaiting a 30 ms
//! setTimeout), one-line `http.createServer` programs with the handlers of
//! examples/node/line_server.js; asyncio_subprocess_run_server
//! (examples/python/sleepy_server.py in its subprocess mode). Attached for 1 s:
//! python_sync_server_at_capacity (examples/python/sync_server.py with its two worker
//! processes, under 16 reconnecting clients of examples/python/load_generator.py).
//! Attached for 2 s: uvicorn_healthy_server (uvicorn 0.54 from PyPI, an ASGI handler awaiting
//! a 20 ms asyncio.sleep, under `wrk -t2 -c20`: 915 requests a second, its loop 7% busy).
//! Attached for 1.5 s: postgres_backends_under_pgbench (PostgreSQL 15's postmaster, its four
//! backends serving `pgbench -c 4 -j 2` over a Unix socket, 9100 transactions a second).

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::time::Duration;

use concadvise::advice::{recommend, Model};
use concadvise::analysis::accountant::Accountant;
use concadvise::analysis::code::CodeState;
use concadvise::analysis::contention::serialized_threads;
use concadvise::analysis::findings::{analyse_ticks, Findings, RunFacts};
use concadvise::analysis::verdict::{classify, Verdict, WorkloadClass};
use concadvise::analysis::wait_kind::{self, WaitKind};
use concadvise::analysis::TickAnalyser;
use concadvise::machine::Machine;
use concadvise::profile::ProfileSet;
use concadvise::sampler::observation::TickSnapshot;
use concadvise::sampler::SamplerStats;
use concadvise::target::runtime::detect;

fn text(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/samples/{name}.jsonl",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap()
}

fn snapshots(name: &str) -> Vec<TickSnapshot> {
    text(name)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn measured(name: &str) -> (Accountant, Verdict) {
    let accountant = TickAnalyser::replay(&text(name)).unwrap().accountant;
    let verdict = classify(&accountant.wall, accountant.ticks);
    (accountant, verdict)
}

/// The whole analysis of a recording, as on a 2-core machine, advised as `runtime` if given.
fn findings(name: &str, runtime: Option<&str>) -> Findings {
    let analyser = TickAnalyser::replay(&text(name)).unwrap();
    let accountant = &analyser.accountant;
    let sampling = SamplerStats {
        samples: accountant.ticks,
        ..SamplerStats::default()
    };
    let facts = RunFacts {
        wall: Duration::from_nanos(accountant.span_ns() as u64),
        kernel_cpu: None,
        user_fraction: None,
        runtime_override: runtime.map(str::to_string),
        attached: false,
    };
    let machine = Machine {
        cores: 2,
        memory_gib: 8.0,
        kernel: "6.1".into(),
        other_load_cores: None,
    };
    analyse_ticks(
        &analyser,
        sampling,
        &facts,
        &machine,
        &ProfileSet::built_in().unwrap(),
    )
    .unwrap()
}

/// How often each wait kind was seen among the blocked threads of a recording.
fn kinds_seen(name: &str) -> Vec<(WaitKind, usize)> {
    let mut counts = [0usize; WaitKind::COUNT];
    for snapshot in snapshots(name) {
        for thread in &snapshot.threads {
            if let Some(kind) = thread.state.as_deref().and_then(wait_kind::classify) {
                counts[kind.index()] += 1;
            }
        }
    }
    let mut seen: Vec<_> = WaitKind::ALL
        .into_iter()
        .map(|k| (k, counts[k.index()]))
        .filter(|(_, n)| *n > 0)
        .collect();
    seen.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    seen
}

fn runtime_of_busiest(accountant: &Accountant) -> String {
    let busiest = accountant
        .processes()
        .max_by(|a, b| a.cpu_ns.total_cmp(&b.cpu_ns))
        .unwrap();
    detect(&ProfileSet::built_in().unwrap(), &busiest.info).name
}

#[test]
fn cpu_loop_computes_the_whole_wall() {
    let (accountant, verdict) = measured("cpu_loop");
    assert_eq!(verdict.class, WorkloadClass::CpuBound);
    assert!(verdict.shares.computing > 0.97, "{:?}", verdict.shares);
    assert_eq!(runtime_of_busiest(&accountant), "native");
}

#[test]
fn sleep_waits_on_a_timer() {
    assert_eq!(kinds_seen("sleep")[0].0, WaitKind::Sleep);
    let (_, verdict) = measured("sleep");
    assert_eq!(verdict.class, WorkloadClass::Idle);
    assert_eq!(verdict.dominant_wait, Some(WaitKind::Sleep));
}

#[test]
fn fdatasync_loop_waits_on_the_disk() {
    assert_eq!(kinds_seen("disk_fdatasync")[0].0, WaitKind::Disk);
    let (_, verdict) = measured("disk_fdatasync");
    assert_eq!(verdict.class, WorkloadClass::IoBound);
    assert_eq!(verdict.dominant_wait, Some(WaitKind::Disk));
}

#[test]
fn blocking_socket_reads_are_network_and_the_server_thread_does_not_hide_them() {
    let (_, verdict) = measured("net_client");
    assert_eq!(verdict.class, WorkloadClass::IoBound);
    assert_eq!(verdict.dominant_wait, Some(WaitKind::Network));
    let profiles = ProfileSet::built_in().unwrap();
    let findings = findings("net_client", Some("native"));
    assert_eq!(findings.verdict.class, verdict.class);
    let advice = recommend(&findings, profiles.get("native").unwrap()).advice;
    assert_eq!(advice.model, Model::Async);
}

#[test]
fn a_shell_waiting_for_its_child_is_child_wait_and_the_child_computes() {
    let seen = kinds_seen("shell_child_cpu");
    assert_eq!(seen[0].0, WaitKind::Child, "{seen:?}");
    let (accountant, verdict) = measured("shell_child_cpu");
    assert_eq!(verdict.class, WorkloadClass::CpuBound);
    let shell = accountant.threads().find(|t| t.name == "sh").unwrap();
    assert_eq!(shell.time.dominant_wait(), Some(WaitKind::Child));
}

#[test]
fn mutex_contention_is_lock_wait_while_one_thread_computes() {
    let seen = kinds_seen("lock_contention");
    assert_eq!(seen[0].0, WaitKind::Lock, "{seen:?}");
    let (accountant, verdict) = measured("lock_contention");
    // One thread at a time holds the lock and computes: about one core, so CPU-bound.
    assert_eq!(verdict.class, WorkloadClass::CpuBound);
    assert!(accountant.tree.wait(WaitKind::Lock) > accountant.tree.cpu_ns);
}

#[test]
fn an_asyncio_client_waits_in_epoll_on_a_tcp_socket_which_is_network() {
    let (accountant, verdict) = measured("asyncio_client");
    assert_eq!(verdict.class, WorkloadClass::IoBound);
    assert_eq!(verdict.dominant_wait, Some(WaitKind::Network));
    assert_eq!(runtime_of_busiest(&accountant), "python");
}

#[test]
fn without_ptrace_access_off_cpu_time_is_unknown_and_confidence_drops() {
    assert_eq!(kinds_seen("denied_sleep")[0].0, WaitKind::Unknown);
    let (_, denied) = measured("denied_sleep");
    let (_, readable) = measured("sleep");
    assert!(denied.shares.unknown > 0.9, "{:?}", denied.shares);
    assert!(denied.confidence < 0.2, "{}", denied.confidence);
    assert!(readable.confidence > 0.8, "{}", readable.confidence);
    // Not advised from: unknown, model none, and the reason says how to get the waits.
    assert_eq!(denied.class, WorkloadClass::Unknown);
    let findings = findings("denied_sleep", None);
    let profiles = ProfileSet::built_in().unwrap();
    let advice = recommend(&findings, profiles.get("native").unwrap()).advice;
    assert_eq!(advice.model, Model::None);
    assert!(
        advice.reasons[0].contains("ptrace access"),
        "{:?}",
        advice.reasons
    );
}

#[test]
fn a_go_binary_is_recognised_by_its_build_info() {
    let (accountant, _) = measured("go_program");
    assert_eq!(runtime_of_busiest(&accountant), "go");
}

#[test]
fn python_threads_under_the_gil_took_turns() {
    let (accountant, verdict) = measured("gil_threads");
    assert_eq!(runtime_of_busiest(&accountant), "python");
    assert_eq!(verdict.class, WorkloadClass::CpuBound);
    let evidence = serialized_threads(&accountant, accountant.span_ns(), 2.0).unwrap();
    assert_eq!(evidence.threads, 3);
    assert!(evidence.cores_used < 1.3, "{evidence:?}");
    assert!(evidence.lock_share > 0.3, "{evidence:?}");
}

#[test]
fn native_threads_contending_on_a_mutex_took_turns_too() {
    let (accountant, _) = measured("lock_contention");
    let evidence = serialized_threads(&accountant, accountant.span_ns(), 2.0).unwrap();
    assert_eq!(evidence.threads, 4);
    // On a one-core machine taking turns is all threads can do: no evidence of anything.
    assert!(serialized_threads(&accountant, accountant.span_ns(), 1.0).is_none());
}

#[test]
fn recordings_round_trip_through_json() {
    for snapshot in snapshots("asyncio_client").into_iter().take(20) {
        let again: TickSnapshot =
            serde_json::from_str(&serde_json::to_string(&snapshot).unwrap()).unwrap();
        assert_eq!(again, snapshot);
    }
}

/// The advice a recording gets with its detected runtime's profile.
fn advised(name: &str) -> (Findings, concadvise::advice::Advice) {
    let findings = findings(name, None);
    let profiles = ProfileSet::built_in().unwrap();
    let profile = profiles.for_runtime(&findings.runtime.name).unwrap();
    let advice = recommend(&findings, profile).advice;
    (findings, advice)
}

#[test]
fn an_asyncio_loop_blocked_by_sleep_and_cpu_is_a_blocked_event_loop() {
    let (findings, advice) = advised("asyncio_blocked_loop");
    let event_loop = findings.concurrency.event_loop.as_ref().unwrap();
    assert!(event_loop.blocked_share >= 0.5, "{event_loop:?}");
    let blocked_by: Vec<&str> = event_loop
        .blocked_by
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    assert!(
        blocked_by.contains(&"sleep") && blocked_by.contains(&"cpu"),
        "{blocked_by:?}"
    );
    assert_eq!(advice.situation, "blocked_event_loop");
    assert_eq!(advice.model, Model::Async);
    assert!(advice.how.contains("asyncio.to_thread"), "{}", advice.how);
}

#[test]
fn a_healthy_asyncio_client_is_already_async_with_ten_in_flight() {
    let (findings, advice) = advised("asyncio_gather");
    let concurrency = &findings.concurrency;
    assert_eq!(
        concurrency.structure.name(),
        "event_loop",
        "{concurrency:?}"
    );
    assert!(concurrency.in_flight >= 5.0, "{concurrency:?}");
    assert!(concurrency.event_loop.as_ref().unwrap().blocked_share < 0.3);
    assert_eq!(advice.situation, "already_async");
    assert!(
        advice.reasons[0].contains("already"),
        "{:?}",
        advice.reasons
    );
}

#[test]
fn an_asyncio_server_without_clients_is_idle_not_ipc() {
    let (findings, advice) = advised("asyncio_idle_server");
    assert_eq!(findings.verdict.class, WorkloadClass::Idle);
    // Its self-pipe is a Unix socketpair the process holds both ends of: not IPC.
    assert!(findings.wall.wait(WaitKind::Ipc) < 0.05 * findings.wall.total_ns());
    assert_eq!(advice.model, Model::None);
    assert_ne!(advice.situation, "blocked_event_loop");
}

#[test]
fn eight_pool_threads_doing_http_are_threads_with_waits_in_flight() {
    let (findings, advice) = advised("thread_pool_http");
    assert_eq!(findings.concurrency.structure.name(), "threads");
    assert!(
        findings.concurrency.in_flight >= 5.0,
        "{:?}",
        findings.concurrency
    );
    assert_eq!(advice.situation, "already_threaded");
}

#[test]
fn a_process_pool_computing_on_every_core_is_processes_and_told_none() {
    let (findings, advice) = advised("process_pool");
    assert_eq!(findings.concurrency.structure.name(), "processes");
    assert_eq!(advice.model, Model::None);
}

#[test]
fn a_node_callback_that_busy_loops_blocks_its_event_loop() {
    let (findings, advice) = advised("node_blocked_loop");
    assert_eq!(findings.runtime.name, "node");
    assert_eq!(advice.situation, "blocked_event_loop");
    assert!(advice.how.contains("worker_threads"), "{}", advice.how);
}

#[test]
fn serial_programs_have_about_one_activity_in_flight() {
    for name in ["net_client", "cpu_loop", "disk_fdatasync"] {
        let concurrency = findings(name, None).concurrency;
        assert_eq!(
            concurrency.structure.name(),
            "serial",
            "{name}: {concurrency:?}"
        );
        assert!(
            (0.7..=1.4).contains(&concurrency.in_flight),
            "{name}: {concurrency:?}"
        );
    }
}

#[test]
fn the_compressor_of_a_pipeline_is_the_process_the_others_wait_on() {
    let findings = findings("xz_pipeline", None);
    let bottleneck = findings.bottleneck.as_ref().unwrap();
    assert_eq!(bottleneck.command[0], "xz", "{bottleneck:?}");
    assert_eq!(bottleneck.kind, "cpu");
    assert_eq!(findings.runtime.name, "native");
}

#[test]
fn a_slow_consumer_over_a_socketpair_is_what_its_producer_waits_on() {
    let findings = findings("socketpair_consumer", None);
    let bottleneck = findings.bottleneck.as_ref().unwrap();
    assert_eq!(bottleneck.kind, "sleep", "{bottleneck:?}");
    assert!(bottleneck
        .waiters
        .iter()
        .all(|(pid, _, _)| *pid != bottleneck.pid));
    // The advice is about the consumer's own time, which is sleeping.
    assert_eq!(
        findings.bottleneck_verdict.unwrap().class,
        WorkloadClass::Idle
    );
}

#[test]
fn a_half_core_quota_shows_as_throttled_time_and_the_quota_situation() {
    let (findings, advice) = advised("cpu_quota_half_core");
    let quota = findings.limits.quota.as_ref().unwrap();
    assert_eq!(quota.cores, 0.5);
    let throttled = findings.wall.wait(WaitKind::Throttled) / findings.wall.total_ns();
    assert!((0.3..0.7).contains(&throttled), "{throttled}");
    assert_eq!(advice.situation, "cpu_quota");
    assert_eq!(advice.speedup_ceiling, Some(1.0));
}

#[test]
fn sqlite_autocommit_waits_on_syncs() {
    let (findings, advice) = advised("sqlite_autocommit");
    let syncs = findings.limits.syncs.as_ref().unwrap();
    assert!(syncs.share() > 0.5, "{syncs:?}");
    assert!(
        syncs.syncs >= 300,
        "at least one sync per insert: {syncs:?}"
    );
    assert_eq!(advice.situation, "sync_bound");
    // Without a quota nothing is throttled.
    assert_eq!(findings.breakdown.wait(WaitKind::Throttled), 0.0);
}

#[test]
fn recorded_stacks_name_the_lines_that_blocked_the_loop_within_its_blocked_time() {
    let (findings, advice) = advised("python_blocked_loop_stacks");
    let event_loop = findings.concurrency.event_loop.as_ref().unwrap();
    let code = findings.code.as_ref().unwrap();
    assert_eq!(code.source.as_deref(), Some("py-spy"));
    let blocked: Vec<_> = code.of_state(CodeState::LoopBlocked).collect();
    let handler = blocked.iter().find(|h| h.function == "handler").unwrap();
    // `time.sleep(0.25)` in handler, a C call: the user's line is the innermost frame.
    assert_eq!(handler.line, 14, "{handler:?}");
    assert!(handler.file.ends_with("examples/python/blocked_loop.py"));
    assert_eq!(handler.blocked_in, Some(CodeState::Wait(WaitKind::Sleep)));
    let crunch = blocked
        .iter()
        .find(|h| h.function == "crunch_numbers")
        .unwrap();
    assert_eq!(crunch.blocked_in, Some(CodeState::Cpu));
    // The loop's blocked time, shared among its lines: no more than the event-loop analysis
    // counted, and most of it.
    let charged: f64 = blocked.iter().map(|h| h.seconds).sum();
    assert!(
        charged <= event_loop.blocked_s * 1.001 && charged >= 0.7 * event_loop.blocked_s,
        "{charged} of {event_loop:?}"
    );
    // Each line gets the loop's blocked time of what it did there: the handler its sleep, the
    // computation its CPU.
    let blocked_by = |kind: &str| {
        event_loop
            .blocked_by
            .iter()
            .find(|(k, _)| k == kind)
            .map_or(0.0, |(_, s)| *s)
    };
    assert!(
        (handler.seconds - blocked_by("sleep")).abs() <= 0.1 * blocked_by("sleep"),
        "{handler:?} vs {:?}",
        event_loop.blocked_by
    );
    assert!(
        (crunch.seconds - blocked_by("cpu")).abs() <= 0.1 * blocked_by("cpu"),
        "{crunch:?} vs {:?}",
        event_loop.blocked_by
    );
    // The states exclude each other: the handler's sleep while it blocked the loop is not
    // also a sleep hotspot of the same size.
    let sleep_s: f64 = code
        .of_state(CodeState::Wait(WaitKind::Sleep))
        .map(|h| h.seconds)
        .sum();
    assert!(sleep_s < handler.seconds, "{sleep_s} vs {handler:?}");
    assert_eq!(advice.situation, "blocked_event_loop");
    assert!(
        advice.how.contains("handler (blocked_loop.py:14)") && advice.how.contains("asyncio.sleep"),
        "{}",
        advice.how
    );
    assert!(
        advice
            .reasons
            .iter()
            .any(|r| r.contains("crunch_numbers (blocked_loop.py:")),
        "{:?}",
        advice.reasons
    );
}

#[test]
fn recorded_stacks_of_a_thread_pool_are_charged_to_its_workers() {
    let findings = findings("python_thread_pool_stacks", None);
    let code = findings.code.as_ref().unwrap();
    let network = code.top(CodeState::Wait(WaitKind::Network)).unwrap();
    assert_eq!(network.function, "fetch", "{network:?}");
    let pid = network.pid;
    assert!(
        !network.tids.contains(&pid),
        "not the main thread: {network:?}"
    );
    assert_eq!(network.tids.len(), 4, "the four workers: {network:?}");
    assert!(network.innermost.contains("socket.py"), "{network:?}");
    // Thread-seconds: four workers waited most of the time.
    let workers_network_s: f64 = findings
        .threads
        .iter()
        .filter(|t| network.tids.contains(&t.tid))
        .map(|t| t.time.wait(WaitKind::Network) / 1e9)
        .sum();
    assert!(
        network.seconds <= workers_network_s * 1.001 && network.seconds > 0.5 * workers_network_s,
        "{network:?} of {workers_network_s}"
    );
}

#[test]
fn o_direct_writes_to_a_disk_others_keep_busy_are_disk_saturated() {
    let (findings, advice) = advised("disk_saturated");
    let device = findings.limits.main_disk().unwrap();
    let disk = device.disk.as_ref().unwrap();
    assert_eq!(
        (disk.name.as_str(), disk.major_minor.as_str()),
        ("loop0", "7:0")
    );
    assert_eq!(device.filesystem, "ext4");
    let measured = device.measured.unwrap();
    assert!(measured.busy_share >= 0.95, "{measured:?}");
    assert!(measured.others_in_flight() >= 5.0, "{measured:?}");
    assert!(device.saturated());
    assert_eq!(advice.situation, "disk_saturated");
    assert_eq!(advice.model, Model::None);
    assert!(advice.speedup_ceiling.unwrap() <= 1.05, "{advice:?}");
}

#[test]
fn the_same_writes_alone_keep_the_disk_busy_without_saturating_it() {
    let (findings, advice) = advised("disk_own_writes");
    let device = findings.limits.main_disk().unwrap();
    let measured = device.measured.unwrap();
    assert!(measured.waited_s >= 0.2, "{measured:?}");
    assert!(measured.others_in_flight() < 1.0, "{measured:?}");
    assert!(!device.saturated());
    assert_ne!(advice.situation, "disk_saturated");
    assert!(!advice
        .reasons
        .iter()
        .any(|r| r.contains("disk is saturated")));
}

/// The loop found in a recording of a server under load: the main thread of the process
/// serving the sockets (never a runtime's helper thread with a poller of its own).
fn main_thread_loop(name: &str) -> (Findings, concadvise::advice::Advice) {
    let (findings, advice) = advised(name);
    let event_loop = findings.concurrency.event_loop.as_ref().unwrap();
    assert_eq!(event_loop.pid, event_loop.tid, "{name}: {event_loop:?}");
    assert!(event_loop.peers >= 10, "{name}: {event_loop:?}");
    (findings, advice)
}

#[test]
fn a_node_server_running_exec_sync_is_a_blocked_loop_not_already_async() {
    // execSync waits on a private libuv loop of its own: an epoll instance on the child's
    // pipes (socketpairs), not the loop's that holds the listener and the connections.
    let (findings, advice) = main_thread_loop("node_exec_sync_server");
    let event_loop = findings.concurrency.event_loop.as_ref().unwrap();
    assert!(event_loop.blocked_share > 0.9, "{event_loop:?}");
    assert_eq!(event_loop.blocked_by[0].0, "ipc", "{event_loop:?}");
    assert!(
        findings.concurrency.in_flight < 1.5,
        "{:?}",
        findings.concurrency
    );
    assert_eq!(advice.situation, "blocked_event_loop");
}

#[test]
fn a_node_server_whose_main_thread_never_polls_is_a_blocked_loop() {
    // A 30 ms busy loop, and Atomics.wait for 30 ms, in the handler: the main thread is never
    // seen in its poller; a helper thread polling its own epoll is not the loop, and V8's
    // workers parked on their futexes do not make the main thread less dominant.
    for (name, blocked_by) in [
        ("node_busy_handler_server", "cpu"),
        ("node_atomics_wait_server", "lock"),
    ] {
        let (findings, advice) = main_thread_loop(name);
        let event_loop = findings.concurrency.event_loop.as_ref().unwrap();
        assert!(event_loop.never_polled, "{name}: {event_loop:?}");
        assert_eq!(
            event_loop.blocked_by[0].0, blocked_by,
            "{name}: {event_loop:?}"
        );
        assert_eq!(advice.situation, "blocked_event_loop", "{name}");
    }
}

#[test]
fn a_node_server_awaiting_a_timer_is_a_healthy_loop() {
    let (findings, advice) = main_thread_loop("node_awaiting_server");
    let event_loop = findings.concurrency.event_loop.as_ref().unwrap();
    assert!(!event_loop.never_polled, "{event_loop:?}");
    assert!(event_loop.blocked_share < 0.1, "{event_loop:?}");
    assert_ne!(advice.situation, "blocked_event_loop");
}

#[test]
fn subprocess_run_in_a_coroutine_blocks_the_asyncio_loop() {
    // subprocess.run with captured output polls the child's pipes with a selector of its own.
    let (findings, advice) = main_thread_loop("asyncio_subprocess_run_server");
    let event_loop = findings.concurrency.event_loop.as_ref().unwrap();
    assert!(event_loop.blocked_share > 0.9, "{event_loop:?}");
    assert_eq!(event_loop.blocked_by[0].0, "ipc", "{event_loop:?}");
    assert_eq!(advice.situation, "blocked_event_loop");
}

#[test]
fn a_sync_server_whose_clients_queue_is_at_capacity_not_idle() {
    let (findings, advice) = advised("python_sync_server_at_capacity");
    let demand = findings.demand.as_ref().unwrap();
    assert!(demand.clients_waited, "{demand:#?}");
    let listener = demand.most_queued().unwrap();
    // 16 clients, 2 in service: 14 wait at every read.
    assert_eq!(listener.mean_queued, 14.0, "{listener:?}");
    assert_eq!(listener.max_queued, 14, "{listener:?}");
    assert_eq!(listener.queued_share, 1.0, "{listener:?}");
    assert_eq!(
        listener.pids.len(),
        3,
        "the master and its two workers: {listener:?}"
    );
    let serving = demand.serving.as_ref().unwrap();
    assert_eq!((serving.threads, serving.processes), (2, 2), "{serving:?}");
    assert_eq!(
        serving.state,
        CodeState::Wait(WaitKind::Sleep),
        "{serving:?}"
    );
    // Their waits are the work: not idle.
    assert_eq!(findings.verdict.class, WorkloadClass::IoBound);
    assert_eq!(advice.situation, "server_at_capacity");
    assert_eq!(advice.model, Model::Threads);
    let reason = &advice.reasons[0];
    assert!(reason.contains("14.0 connections"), "{reason}");
    assert!(
        reason.contains("sleep at handle (sync_server.py:"),
        "{reason}"
    );
    assert_eq!(advice.expected.measure.name(), "capacity");
}

#[test]
fn a_healthy_uvicorn_server_under_load_is_an_event_loop_with_room_to_spare() {
    // Its callbacks are short and spread out: no tick was busy, and the loop is still the
    // program's shape.
    let (findings, advice) = advised("uvicorn_healthy_server");
    assert_eq!(findings.concurrency.structure.name(), "event_loop");
    let event_loop = findings.concurrency.event_loop.as_ref().unwrap();
    assert!(event_loop.peers >= 15, "{event_loop:?}");
    assert!(event_loop.blocked_share < 0.1, "{event_loop:?}");
    assert_eq!(findings.verdict.class, WorkloadClass::Idle);
    assert_eq!(advice.model, Model::None);
    assert_eq!(advice.situation, "idle");
    assert!(
        advice.reasons[0].contains("has room for more load"),
        "{:?}",
        advice.reasons
    );
}

#[test]
fn postgres_backends_each_on_its_connection_are_processes_not_a_blocked_event_loop() {
    // Each backend polls its one client socket (and the postmaster's pipe): four workers of
    // one server on the two cores, not an event loop blocked by its queries.
    let (findings, advice) = advised("postgres_backends_under_pgbench");
    assert_eq!(findings.concurrency.structure.name(), "processes");
    assert!(
        findings.concurrency.busy_processes >= 4,
        "{:?}",
        findings.concurrency
    );
    // The one loop is the postmaster's, polling its listeners, idle: no backend is one.
    let event_loop = findings.concurrency.event_loop.as_ref().unwrap();
    assert!(event_loop.blocked_share < 0.1, "{event_loop:?}");
    let postmaster = findings.processes.iter().map(|p| p.pid).min().unwrap();
    assert_eq!(event_loop.pid, postmaster, "{event_loop:?}");
    assert_eq!(findings.verdict.class, WorkloadClass::CpuBound);
    assert_eq!(advice.situation, "already_parallel");
    assert_eq!(advice.model, Model::None);
}

#[test]
fn a_recording_without_listeners_has_no_demand() {
    // Recorded before listeners were read: the asyncio server waited for clients.
    let (findings, advice) = advised("asyncio_idle_server");
    assert!(findings.demand.is_none());
    assert_eq!(advice.situation, "idle");
}
