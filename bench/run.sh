#!/usr/bin/env bash
# Benchmark of concadvise's own cost (the sampler): target slowdown, sampler CPU, scale to 1000
# threads, memory over a long run, thread churn, the trace of 1000 busy threads, reading
# Python stacks. See bench/README.md for what each number means.
#
# Usage: bench/run.sh            (from anywhere; about 6 minutes on a 2-core machine)
# Knobs (environment): BENCH_PAIRS=11 alone/under pairs for the slowdown,
#   BENCH_WORK=1800 million loop iterations of the fixed-work target (~2 s here),
#   BENCH_LONG_S=60 length of the long memory run, BENCH_TRACE_S=60 length of the traced
#   1000-thread run, BENCH_10K_S=30 length of the 10,000-thread run, BENCH_PY_ROUNDS=10
#   stretches attached without stacks and as many with stacks (1 s each, each between two alone
#   ones) on each CPython target of row 10, BENCH_PY_WORK=40 million loop steps of the
#   1000-thread CPython target (~4 s here, x3), BENCH_STRACE=1 also count concadvise's syscalls
#   with strace during a 1000-thread run (slows that run; not part of the table),
#   BENCH_CONCADVISE=PATH measure another concadvise binary (an older build, for a before/after;
#   the workload is still this checkout's), BENCH_ONLY="7 9" run only these sections (numbers as
#   in the table).
set -euo pipefail
shopt -s inherit_errexit

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PAIRS=${BENCH_PAIRS:-11}
WORK=${BENCH_WORK:-1800}
LONG_S=${BENCH_LONG_S:-60}
TRACE_S=${BENCH_TRACE_S:-60}
T10K_S=${BENCH_10K_S:-30}
STRACE=${BENCH_STRACE:-0}
PY_ROUNDS=${BENCH_PY_ROUNDS:-10}
PY_WORK=${BENCH_PY_WORK:-40}
ONLY=${BENCH_ONLY:-}
C=${BENCH_CONCADVISE:-target/release/concadvise}
W=target/release/examples/workload

TMP=$(mktemp -d "${TMPDIR:-/tmp}/concadvise-bench.XXXXXX")
STARTED=() # concadvise processes started in the background (their PIDs)
cleanup() {
    # Only what this script started and is still running: jobs not yet waited for (jobs -p),
    # and concadvise processes still running our binary (they forward the TERM to their program).
    local pid cmd
    for pid in "${STARTED[@]}"; do
        cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || continue
        [[ $cmd == "$C run "* ]] && kill "$pid" 2>/dev/null
    done
    for pid in $(jobs -p); do
        kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

RAW=$TMP/raw.txt # "key value" lines, turned into the table at the end
: >"$RAW"
note() { printf '%s\n' "$*" >&2; }
fail() {
    note "bench: $*"
    exit 1
}
# Every run is bounded: a hung concadvise ends the benchmark instead of stalling it
# (--foreground: Ctrl-C still reaches the command; concadvise forwards the TERM to its program).
LIMIT=(timeout --foreground --kill-after=10)
record() { printf '%s %s\n' "$1" "$2" >>"$RAW"; }

# toml FILE KEY... : prints the values of dotted keys (e.g. sampling.samples), one per line;
# a key ending in "?" is optional and prints "-" when the report lacks it.
toml() {
    python3 - "$@" <<'EOF'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    doc = tomllib.load(f)
for key in sys.argv[2:]:
    optional = key.endswith("?")
    value = doc
    for part in key.rstrip("?").split("."):
        if optional and part not in value:
            value = "-"
            break
        value = value[part]
    print(value)
EOF
}

# record_report PREFIX FILE: records the report's sampling and time fields under PREFIX.
record_report() {
    local prefix=$1 file=$2 key value
    # lowered_to_hz: present when the sampler slowed down to stay within its CPU budget.
    # Optional keys ("?"): absent from reports of older builds, or when zero.
    local keys=(sampling.rate_hz sampling.samples sampling.late_samples sampling.threads_seen
        sampling.self_cpu_s sampling.cpu_seen_s sampling.fds_start sampling.fds_end time.wall_s
        time.cpu_s "sampling.lowered_to_hz?" "sampling.threads_unseen?"
        "sampling.lowest_second_hz?" "sampling.held_descriptors?")
    local values
    mapfile -t values < <(toml "$file" "${keys[@]}")
    for i in "${!keys[@]}"; do
        key=${keys[$i]#*.}
        key=${key%\?}
        value=${values[$i]}
        record "$prefix.$key" "$value"
    done
}

# fd_count PID: number of open descriptors of PID, or nothing if it is gone.
fd_count() {
    local entries
    entries=$(ls "/proc/$1/fd" 2>/dev/null) || return 0
    printf '%s\n' "$entries" | wc -l
}

# watch_fds PID OUT: every 0.1 s appends "elapsed_s fds" for PID to OUT until PID is gone.
watch_fds() {
    local pid=$1 out=$2 start=$EPOCHREALTIME n
    while [[ -d /proc/$pid ]]; do
        n=$(fd_count "$pid")
        [[ -n $n ]] && printf '%s %s\n' "$(elapsed_since "$start")" "$n" >>"$out"
        sleep 0.1
    done
}

# cpu_ticks: "BUSY TOTAL OURS STEAL" in clock ticks: the machine's busy (user, nice, system, irq,
# softirq) and total time from /proc/stat, this script's own CPU with its reaped children
# (utime + stime + cutime + cstime of this shell), and the machine's steal time.
cpu_ticks() {
    local busy_total ours busy total steal
    busy_total=$(awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i;
        print $2 + $3 + $4 + $7 + $8, t, $9 }' /proc/stat)
    ours=$(sed 's/.*) //' "/proc/$$/stat" | awk '{ print $12 + $13 + $14 + $15 }')
    read -r busy total steal <<<"$busy_total"
    printf '%s %s %s %s\n' "$busy" "$total" "$ours" "$steal"
}

elapsed_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.6f", b - a }'; }

# vmhwm_until_gone PID: reads PID's peak resident memory (VmHWM, KiB) every 0.2 s until it is
# gone, then prints the last reading (0 if none).
vmhwm_until_gone() {
    local line hwm=0
    while [[ -d /proc/$1 ]]; do
        line=$(grep VmHWM "/proc/$1/status" 2>/dev/null) && hwm=$(awk '{print $2}' <<<"$line")
        sleep 0.2
    done
    printf '%s\n' "$hwm"
}

# child_of PID: the first child process of PID (waits up to 2 s for it to appear).
child_of() {
    local i kids
    for i in $(seq 1 200); do
        kids=$(cat "/proc/$1/task/$1/children" 2>/dev/null || true)
        if [[ -n $kids ]]; then
            printf '%s\n' "${kids%% *}"
            return 0
        fi
        sleep 0.01
    done
    return 1
}

# ---------------------------------------------------------------------------------------------
note "== machine"
cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
note "nproc: $(nproc)   kernel: $(uname -r)   cpu: $cpu_model"
note "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)   rustc: $(rustc --version)"
if git rev-parse --git-dir >/dev/null 2>&1; then
    commit=$(git rev-parse --short HEAD)
    changed=$(git status --porcelain -- src examples Cargo.toml Cargo.lock | wc -l)
    [[ $changed != 0 ]] && commit="$commit + $changed uncommitted changed files"
else
    commit="not a git checkout"
fi
[[ -n ${BENCH_CONCADVISE:-} ]] && commit="$commit, concadvise binary $C"
note "commit: $commit"
record bench.commit "$commit"
record machine.nproc "$(nproc)"
record machine.kernel "$(uname -r)"
record bench.started "$(date -u +%Y-%m-%dT%H:%M:%SZ)"

note "== build (release)"
build_log=$(cargo build --release --bins --examples 2>&1) || {
    note "$build_log"
    fail "the build failed"
}
note "$(tail -n 1 <<<"$build_log")"
BENCH_START=$EPOCHREALTIME
# mark SECTION: CPU counters at the start of a section, for the other-load check.
mark() { record mark "$1 $(cpu_ticks)"; }
# wanted N: whether section N runs (all of them unless BENCH_ONLY names some).
wanted() { [[ -z $ONLY || " $ONLY " == *" $1 "* ]]; }

# ---------------------------------------------------------------------------------------------
if wanted 1; then
    mark 1
    note "== 1. target slowdown: workload cpu --work $WORK, alone vs under 'concadvise run -q' (100 Hz), $PAIRS alternating pairs"
    timed() { # timed CMD...: runs CMD (stdout discarded), prints its wall seconds
        local start=$EPOCHREALTIME
        "$@" >/dev/null || fail "$* failed (exit $?)"
        elapsed_since "$start"
    }
    # Both sides run under the same `timeout` (one extra fork and exec each), so the ratio is fair.
    alone_cmd=("${LIMIT[@]}" 60 "$W" cpu --work "$WORK")
    under_cmd=("${LIMIT[@]}" 60 "$C" run -q -- "$W" cpu --work "$WORK")
    # One discarded pair first: page cache, CPU frequency, first-run effects.
    timed "${alone_cmd[@]}" >/dev/null
    timed "${under_cmd[@]}" >/dev/null
    for i in $(seq 1 "$PAIRS"); do
        alone=$(timed "${alone_cmd[@]}")
        under=$(timed "${under_cmd[@]}")
        record slowdown.alone "$alone"
        record slowdown.under "$under"
        note "  pair $i: alone $alone s, under $under s"
    done
fi

# ---------------------------------------------------------------------------------------------
if wanted 2; then
    mark 2
    note "== 2. sampler CPU: 10 threads (2 busy), 5 s, 100 Hz, under /usr/bin/time"
    "${LIMIT[@]}" 60 /usr/bin/time -o "$TMP/time2" -f '%U %S' \
        "$C" run -q --report "$TMP/r2.toml" -- "$W" many-threads --threads 10 --busy 2 --seconds 5 \
        >/dev/null || fail "the 10-thread run failed (exit $?)"
    record_report t10 "$TMP/r2.toml"
    read -r user sys <"$TMP/time2"
    record t10.outer_user_s "$user"
    record t10.outer_sys_s "$sys"

    note "== 2b. the same with discovery by scanning /proc (as on kernels without children files)"
    CONCADVISE_DISCOVERY=scan "${LIMIT[@]}" 60 \
        "$C" run -q --report "$TMP/r2b.toml" -- "$W" many-threads --threads 10 --busy 2 --seconds 5 \
        >/dev/null || fail "the 10-thread scan run failed (exit $?)"
    record_report t10scan "$TMP/r2b.toml"
    record t10scan.processes "$(find /proc -maxdepth 1 -name '[0-9]*' | wc -l)"
fi

# ---------------------------------------------------------------------------------------------
if wanted 3; then
    mark 3
    for rate in 100 20; do
        note "== 3. scale: 1000 threads (2 busy), 5 s, --rate $rate"
        "${LIMIT[@]}" 60 "$C" run -q --rate "$rate" --report "$TMP/r3.toml" -- \
            "$W" many-threads --threads 1000 --busy 2 --seconds 5 >/dev/null &
        lpid=$!
        cpid=$(child_of "$lpid") || fail "concadvise did not start"
        STARTED+=("$cpid")
        sleep 3
        record "t1000_$rate.fds_mid" "$(fd_count "$cpid")"
        wait "$lpid" || fail "the 1000-thread run at $rate Hz failed (exit $?)"
        record_report "t1000_$rate" "$TMP/r3.toml"
    done

    if [[ $STRACE == 1 ]]; then
        note "== 3b. strace -c -f on concadvise for 3 s of a 1000-thread run at 100 Hz (slows it down)"
        "${LIMIT[@]}" 60 "$C" run -q --report "$TMP/r3s.toml" -- \
            "$W" many-threads --threads 1000 --busy 2 --seconds 8 >/dev/null &
        lpid=$!
        cpid=$(child_of "$lpid") || fail "concadvise did not start"
        STARTED+=("$cpid")
        sleep 2
        timeout -s INT 3 strace -c -f -p "$cpid" -o "$TMP/strace.txt" 2>/dev/null || true
        wait "$lpid" || fail "the strace run failed (exit $?)"
        note "$(head -n 12 "$TMP/strace.txt")"
        note "(samples over the whole 8 s run: $(toml "$TMP/r3s.toml" sampling.samples); strace was attached for 3 s of it)"
fi
fi

# ---------------------------------------------------------------------------------------------
# %M of /usr/bin/time is the peak RSS of concadvise or of the target it reaped, whichever is
# larger; the target (workload sleep) is smaller, and VmHWM read from concadvise's own
# /proc/PID/status until it ends is recorded as a cross-check.
if wanted 4; then
    mark 4
    for secs in 5 "$LONG_S"; do
        note "== 4. memory: workload sleep --seconds $secs under concadvise (100 Hz)"
        "${LIMIT[@]}" $((secs + 60)) /usr/bin/time -o "$TMP/time4" -f '%M' \
            "$C" run -q -- "$W" sleep --seconds "$secs" >/dev/null &
        lpid=$!
        tpid=$(child_of "$lpid") || fail "time did not start"
        cpid=$(child_of "$tpid") || fail "concadvise did not start"
        STARTED+=("$cpid")
        hwm=$(vmhwm_until_gone "$cpid")
        wait "$lpid" || fail "the $secs s memory run failed (exit $?)"
        record "mem_$secs.maxrss_kib" "$(cat "$TMP/time4")"
        record "mem_$secs.vmhwm_kib" "$hwm"
    done
    record mem.long_s "$LONG_S"
fi

# ---------------------------------------------------------------------------------------------
# churn_run NAME CMD...: runs concadvise CMD... in the background, polls its descriptors into
# $TMP/fds.NAME, and records NAME.exit.
churn_run() {
    local name=$1 lpid cpid wpid rc=0
    shift
    : >"$TMP/fds.$name"
    "${LIMIT[@]}" 60 "$C" "$@" >/dev/null &
    lpid=$!
    cpid=$(child_of "$lpid") || fail "concadvise did not start"
    STARTED+=("$cpid")
    watch_fds "$cpid" "$TMP/fds.$name" &
    wpid=$!
    wait "$lpid" || rc=$?
    wait "$wpid" || true
    record "$name.exit" "$rc"
}

if wanted 5; then
    mark 5
    note "== 5. churn: workload thread-churn --count 2000 (100 Hz)"
    churn_run churn run -q --report "$TMP/r5.toml" -- "$W" thread-churn --count 2000
    [[ -s $TMP/r5.toml ]] && record_report churn "$TMP/r5.toml"
    record churn.fds_max "$(awk 'BEGIN { m = 0 } $2 > m { m = $2 } END { print m }' "$TMP/fds.churn")"

    note "== 5b. churn bracketed by 1 s of idle before and after (descriptor leak check)"
    churn_run churn_b run -q -- sh -c 'sleep 1 && "$0" thread-churn --count 2000 >/dev/null && sleep 1' "$W"
    # Before: the last sample of the first idle second (from 0.3 s, once the tree is discovered);
    # after: the last sample, in the final idle second. The churn itself takes about 2 s.
    record churn_b.fds_start "$(awk '$1 >= 0.3 && $1 < 0.9 { n = $2 } END { print n + 0 }' "$TMP/fds.churn_b")"
    record churn_b.fds_max "$(awk 'BEGIN { m = 0 } $2 > m { m = $2 } END { print m }' "$TMP/fds.churn_b")"
    record churn_b.fds_end "$(tail -n 1 "$TMP/fds.churn_b" | awk '{ print $2 + 0 }')"
fi

# ---------------------------------------------------------------------------------------------
# 1000 threads that change state every 10 ms (sleep, then a condition-variable wait) make far
# more slices than the budget: the trace must stay within it (and small), merging short ones,
# with each thread's time per state still as the report counts it.
if wanted 6; then
    mark 6
    note "== 6. trace: workload flicker --threads 1000 --seconds $TRACE_S with --trace (100 Hz)"
    "${LIMIT[@]}" $((TRACE_S + 60)) "$C" run -q --report "$TMP/r6.toml" --trace "$TMP/t6.json" -- \
        "$W" flicker --threads 1000 --seconds "$TRACE_S" --sleep-ms 10 --wait-ms 10 >/dev/null &
    lpid=$!
    cpid=$(child_of "$lpid") || fail "concadvise did not start"
    STARTED+=("$cpid")
    hwm=$(vmhwm_until_gone "$cpid")
    wait "$lpid" || fail "the traced 1000-thread run failed (exit $?)"
    record_report trace "$TMP/r6.toml"
    record trace.vmhwm_kib "$hwm"
    record trace.bytes "$(stat -c %s "$TMP/t6.json")"
    record trace.seconds "$TRACE_S"
    # events, budget, merged_below_ms, threads_left_out, threads with slices, and the largest
    # difference between a listed thread's time in a state (>= 0.1 s) in the trace and the report.
    python3 - "$TMP/t6.json" "$TMP/r6.toml" >>"$RAW" <<'PY'
import json, sys, tomllib
trace = json.load(open(sys.argv[1]))
report = tomllib.load(open(sys.argv[2], "rb"))
events = trace["traceEvents"]
meta = trace["otherData"]
seconds = {}
for e in events:
    if e["ph"] == "X" and e["pid"] != 4194304:  # not the phases' track
        per = seconds.setdefault((e["pid"], e["tid"]), {})
        per[e["name"]] = per.get(e["name"], 0) + e["dur"] / 1e6
worst = 0.0
for t in report.get("threads", []):
    per = seconds.get((t["pid"], t["tid"]), {})
    states = [("cpu", t["cpu_s"]), ("runqueue", t["runqueue_s"])]
    states += [(w["kind"], w["seconds"]) for w in t["waits"]]
    for state, value in states:
        if value >= 0.1:
            worst = max(worst, abs(per.get(state, 0) - value) / value)
print("trace.events", len(events))
print("trace.budget", meta["event_budget"])
print("trace.merged_below_ms", meta["merged_below_ms"])
print("trace.left_out", meta["threads_left_out"])
print("trace.tracks", len(seconds))
print("trace.worst_state_diff", worst)
PY
fi

# ---------------------------------------------------------------------------------------------
# run_watched NAME SECONDS CMD...: runs CMD (concadvise, possibly behind /usr/bin/time or a
# shell that sets a limit and execs it) in the background, bounded by SECONDS + 90, and
# records concadvise's VmHWM, read every 0.2 s until it ends, as NAME.vmhwm_kib.
run_watched() {
    local name=$1 secs=$2 lpid cpid hwm
    shift 2
    "${LIMIT[@]}" $((secs + 90)) "$@" >/dev/null &
    lpid=$!
    cpid=$(concadvise_under "$lpid") || fail "concadvise did not start"
    STARTED+=("$cpid")
    hwm=$(vmhwm_until_gone "$cpid")
    wait "$lpid" || fail "the $name run failed (exit $?)"
    record "$name.vmhwm_kib" "$hwm"
}

# concadvise_under PID: the first process running our concadvise binary among PID and its
# descendants, following first children (waits up to 2 s for each to appear).
concadvise_under() {
    local pid=$1 exe want i
    want=$(readlink -f "$C")
    for i in 1 2 3 4; do
        exe=$(readlink -f "/proc/$pid/exe" 2>/dev/null || true)
        if [[ $exe == "$want" ]]; then
            printf '%s\n' "$pid"
            return 0
        fi
        pid=$(child_of "$pid") || return 1
    done
    return 1
}

# 10,000 threads, 2 computing and the rest blocked on a condition variable, 64 KiB stacks: a
# JVM application server's or a thread-per-connection service's shape.
if wanted 7; then
    mark 7
    note "== 7. 10,000 threads (2 busy), $T10K_S s, 100 Hz, under /usr/bin/time (open-file limit $(ulimit -Sn)/$(ulimit -Hn))"
    run_watched t10k "$T10K_S" /usr/bin/time -o "$TMP/time7" -f '%U %S' \
        "$C" run -q --report "$TMP/r7.toml" -- \
        "$W" many-threads --threads 10000 --busy 2 --seconds "$T10K_S"
    record_report t10k "$TMP/r7.toml"
    read -r user sys <"$TMP/time7"
    record t10k.outer_user_s "$user"
    record t10k.outer_sys_s "$sys"
    record t10k.nofile "$(ulimit -Sn)"
fi

# The same past the descriptor budget: at an open-file limit of 4096 the sampler can hold
# files for about 3000 threads; the others are read by opening their files each time.
if wanted 8; then
    mark 8
    note "== 8. 10,000 threads (2 busy), 10 s, 100 Hz, open-file limit 4096"
    run_watched t10k_4096 10 sh -c 'ulimit -n 4096 && exec "$@"' sh \
        "$C" run -q --report "$TMP/r8.toml" -- \
        "$W" many-threads --threads 10000 --busy 2 --seconds 10
    record_report t10k_4096 "$TMP/r8.toml"
fi

# Threads born and dying at 2000 a second for 10 s (20 at a time, 0.2 ms of work each).
if wanted 9; then
    mark 9
    note "== 9. churn: workload thread-churn --per-second 2000 --seconds 10 (100 Hz)"
    churn_run churn2k run -q --report "$TMP/r9.toml" -- \
        "$W" thread-churn --per-second 2000 --seconds 10 --batch 20 --work-ms 0.2 --linger 0.5
    [[ -s $TMP/r9.toml ]] && record_report churn2k "$TMP/r9.toml"
    record churn2k.fds_max "$(awk 'BEGIN { m = 0 } $2 > m { m = $2 } END { print m }' "$TMP/fds.churn2k")"
fi

# ---------------------------------------------------------------------------------------------
# CPython with its stacks read (py-spy, never pausing it) and not (--no-stacks), side by side in
# one process: two runs of the same CPython program differ by several percent, so one long
# target (paced_work.py: fixed chunks of work, each one's end time kept) is measured in turns:
# alone, attached without stacks, alone, attached with stacks, ... PY_ROUNDS times; the chunks
# that end inside each stretch give its speed.
if wanted 10; then
mark 10
PY=$(python3 -c 'import sys; print(sys.executable)') || fail "python3 is needed"
PHASE_S=1
for threads in 0 100; do
    note "== 10. CPython stacks: paced_work.py $threads (fixed chunks, $threads idle threads), $PY_ROUNDS rounds of attach --no-stacks and attach, each between two alone stretches, $PHASE_S s each"
    total=$((PY_ROUNDS * 4 * (PHASE_S + 1) + 10))
    "${LIMIT[@]}" $((total + 30)) "$PY" examples/python/paced_work.py "$threads" "$total" "$TMP/chunks$threads" &
    tpid=$!
    sleep 1
    # alone, off, alone, on, alone, off, ... alone: each attached stretch between two alone ones.
    phases=(alone)
    for i in $(seq 1 "$PY_ROUNDS"); do phases+=(off alone on alone); done
    for phase in "${phases[@]}"; do
        start=$EPOCHREALTIME
        case $phase in
            alone) sleep "$PHASE_S" ;;
            off) "${LIMIT[@]}" 30 "$C" attach -q --no-stacks --duration "${PHASE_S}s" \
                --report "$TMP/r7.toml" "$tpid" || fail "attach failed" ;;
            on) "${LIMIT[@]}" 30 "$C" attach -q --duration "${PHASE_S}s" \
                --report "$TMP/r7.toml" "$tpid" || fail "attach failed" ;;
        esac
        record "py$threads.phase" "$phase $start $EPOCHREALTIME"
        if [[ $phase != alone ]]; then
            mapfile -t v < <(toml "$TMP/r7.toml" sampling.self_cpu_s time.wall_s \
                "code.rate_hz?" "code.read_cpu_ms?" "code.stack_samples?" "code.failed_reads?")
            record "py$threads.$phase" "${v[*]}"
        fi
    done
    wait "$tpid" || fail "paced_work.py failed"
    python3 - "$TMP/chunks$threads" "$threads" >>"$RAW" <<'PY'
import sys
ends = [float(line) for line in open(sys.argv[1])]
durations = list(zip(ends, (b - a for a, b in zip(ends, ends[1:]))))
for end, duration in durations[1:]:
    print(f"py{sys.argv[2]}.chunk {end:.6f} {duration:.6f}")
PY
    note "  $(wc -l <"$TMP/chunks$threads") chunks"
done

note "== 10b. CPython with 1000 idle threads: the cost of one read and the rate the budget leaves"
for stacks in off on; do
    flag=()
    [[ $stacks == off ]] && flag=(--no-stacks)
    "${LIMIT[@]}" 60 "$C" run -q "${flag[@]}" --report "$TMP/r7k.toml" -- \
        "$PY" examples/python/idle_threads.py 1000 $((PY_WORK * 3)) >/dev/null || fail "the 1000-thread CPython run failed"
    record_report "py1000_$stacks" "$TMP/r7k.toml"
    if [[ $stacks == on ]]; then
        mapfile -t v < <(toml "$TMP/r7k.toml" code.rate_hz code.read_cpu_ms code.stack_samples \
            code.failed_reads)
        record py1000.code "${v[*]}"
    fi
done
fi

record bench.seconds "$(elapsed_since "$BENCH_START")"
mark end

# ---------------------------------------------------------------------------------------------
python3 - "$RAW" <<'EOF'
import statistics, sys

raw = {}
for line in open(sys.argv[1]):
    key, value = line.split(" ", 1)
    raw.setdefault(key, []).append(value.strip())

def num(key):
    return float(raw[key][0])

def opt(key):
    """A value that older builds' reports lack ("-"): None then."""
    value = raw.get(key, ["-"])[0]
    return None if value == "-" else float(value)

rows = []
def row(metric, value, goal, ok):
    verdict = "info" if ok is None else ("PASS" if ok else "FAIL")
    rows.append((metric, value, goal, verdict))

def lowered_note(prefix):
    lowest = opt(f"{prefix}.lowered_to_hz")
    return "" if lowest is None else f", budget lowered it to {lowest:.1f} Hz"

def cpu_vs_rusage(prefix):
    """The tree's CPU as the sampler accounted it against the kernel's (rusage), relative."""
    seen, kernel = num(f"{prefix}.cpu_seen_s"), num(f"{prefix}.cpu_s")
    return (seen - kernel) / kernel if kernel > 0 else 0.0

# 1. slowdown
if "slowdown.alone" in raw:
    alone = [float(v) for v in raw["slowdown.alone"]]
    under = [float(v) for v in raw["slowdown.under"]]
    med_alone, med_under = statistics.median(alone), statistics.median(under)
    slowdown = med_under / med_alone - 1
    pairwise = statistics.median(u / a - 1 for a, u in zip(alone, under))
    spread = (max(alone) - min(alone)) / med_alone
    row("1. slowdown, cpu --work (1 thread, 100 Hz)",
        f"{slowdown * 100:+.2f} % (median {med_under:.3f} s vs {med_alone:.3f} s, {len(alone)} pairs)",
        "<= 1 %", slowdown <= 0.01)
    row("   per-pair median / spread of alone runs",
        f"{pairwise * 100:+.2f} % / {spread * 100:.1f} %", "", None)

# 2. sampler CPU, 10 threads
if "t10.wall_s" in raw:
    wall, self_cpu, target_cpu = num("t10.wall_s"), num("t10.self_cpu_s"), num("t10.cpu_s")
    outer = num("t10.outer_user_s") + num("t10.outer_sys_s")
    share = self_cpu / wall
    row("2. self CPU, 10 threads @100 Hz (report)",
        f"{share * 100:.2f} % of a core ({self_cpu:.3f} s / {wall:.2f} s, {num('t10.samples'):.0f} samples, "
        f"{self_cpu / num('t10.samples') * 1e6:.0f} us per sample{lowered_note('t10')})",
        "<= 1 %", share <= 0.01)
    cross = (outer - target_cpu) / wall
    row("   cross-check: time(1) U+S - target cpu_s",
        f"{cross * 100:.2f} % of a core (({outer:.2f} - {target_cpu:.3f}) s / {wall:.2f} s)",
        "<= 1 %", cross <= 0.01)

    # 2b. the same with the /proc scan discovery
    scan_share = num("t10scan.self_cpu_s") / num("t10scan.wall_s")
    row("2b. self CPU, 10 threads @100 Hz, scan discovery",
        f"{scan_share * 100:.2f} % of a core ({num('t10scan.self_cpu_s'):.3f} s / "
        f"{num('t10scan.wall_s'):.2f} s, {num('t10scan.processes'):.0f} processes on the machine)",
        "<= 2 %", scan_share <= 0.02)

# 3. scale: 1000 threads. At 100 Hz: at least 50 Hz achieved (and never lowered below it) at
# most 3 % of a core over the whole run; at 20 Hz: the rate kept, 3 % too.
for rate, floor in ((100, 50), (20, 20)):
    p = f"t1000_{rate}"
    if f"{p}.wall_s" not in raw:
        continue
    wall = num(f"{p}.wall_s")
    achieved = num(f"{p}.samples") / wall
    share = num(f"{p}.self_cpu_s") / wall
    # lowered_to_hz: the lowest rate the sampler's CPU budget forced during the run, if any.
    lowest = opt(f"{p}.lowered_to_hz")
    # 2 % tolerance: the first and the last tick are edge effects of a 5 s run.
    row(f"3. 1000 threads @{rate} Hz: achieved rate",
        f"{achieved:.1f} Hz ({num(f'{p}.samples'):.0f} samples / {wall:.2f} s, "
        f"{num(f'{p}.late_samples'):.0f} late{lowered_note(p)}, "
        f"{num(f'{p}.threads_seen'):.0f} threads seen)",
        f">= {floor} Hz throughout",
        achieved >= floor * 0.98 and (lowest is None or lowest >= floor * 0.98))
    per_tick_ms = num(f"{p}.self_cpu_s") / num(f"{p}.samples") * 1000
    row(f"   1000 threads @{rate} Hz: self CPU",
        f"{share * 100:.2f} % of a core ({num(f'{p}.self_cpu_s'):.3f} s, "
        f"{per_tick_ms:.2f} ms per sample)",
        "<= 3 %", share <= 0.03)
    row(f"   1000 threads @{rate} Hz: open fds at 3 s",
        raw[f"{p}.fds_mid"][0], "", None)

# 4. memory
if "mem.long_s" in raw:
    long_s = raw["mem.long_s"][0]
    short, long_ = num("mem_5.maxrss_kib"), num(f"mem_{long_s}.maxrss_kib")
    growth = long_ / short - 1
    row(f"4. peak RSS, sleep 5 s vs {long_s} s (time -f %M)",
        f"{short / 1024:.2f} MiB -> {long_ / 1024:.2f} MiB ({growth * 100:+.1f} %)",
        "flat (<= +10 %)", growth <= 0.10)
    row("   VmHWM of concadvise itself, 5 s vs long",
        f"{num('mem_5.vmhwm_kib') / 1024:.2f} MiB -> {num(f'mem_{long_s}.vmhwm_kib') / 1024:.2f} MiB",
        "", None)

# 5. churn
if "churn.exit" in raw:
    rc = int(num("churn.exit"))
    row("5. thread-churn --count 2000: completes", f"exit {rc}", "exit 0", rc == 0)
    if rc == 0:
        wall, self_cpu = num("churn.wall_s"), num("churn.self_cpu_s")
        row("   churn: self CPU",
            f"{self_cpu / wall * 100:.2f} % of a core ({self_cpu:.3f} s / {wall:.2f} s, "
            f"{num('churn.threads_seen'):.0f} threads seen)", "", None)
    row("   churn: open fds, max during the run", raw["churn.fds_max"][0], "", None)
    start, peak, end = (int(num(f"churn_b.fds_{k}")) for k in ("start", "max", "end"))
    # After the churn the shell that ran it has forked again, so concadvise holds its children
    # file (it holds them for threads that keep running): a couple of descriptors more is that,
    # not a leak; a leak would grow with the 2000 threads. The exact check is the report's
    # sampling.fds_start == fds_end, counted after the reader closed everything (row 9).
    row("   churn bracketed by idle: fds before / max / after",
        f"{start} / {peak} / {end} (exit {int(num('churn_b.exit'))})",
        "after <= before + 2", end <= start + 2 and int(num("churn_b.exit")) == 0)

# 6. trace at scale
if "trace.events" in raw:
    events, budget = num("trace.events"), num("trace.budget")
    row(f"6. trace, 1000 flickering threads, {raw['trace.seconds'][0]} s: events",
        f"{events:.0f} of a budget of {budget:.0f} (stretches under {num('trace.merged_below_ms'):.0f} ms "
        f"merged, {num('trace.left_out'):.0f} threads left out, {num('trace.tracks'):.0f} threads drawn)",
        "<= budget", events <= budget)
    size_mb = num("trace.bytes") / 1e6
    row("   trace size", f"{size_mb:.1f} MB ({num('trace.bytes') / events:.0f} bytes per event)",
        "< 20 MB", size_mb < 20)
    worst = num("trace.worst_state_diff")
    row("   trace vs report, per thread and state",
        f"largest difference {worst * 100:.2f} % (listed threads, states >= 0.1 s)",
        "<= 5 %", worst <= 0.05)
    row("   traced run: sampler and memory",
        f"{num('trace.samples') / num('trace.wall_s'):.1f} Hz achieved, self CPU "
        f"{num('trace.self_cpu_s') / num('trace.wall_s') * 100:.1f} % of a core, "
        f"concadvise's VmHWM {num('trace.vmhwm_kib') / 1024:.1f} MiB", "", None)

# every_thread_seen(PREFIX, THREADS): a row that every thread was followed and none missed.
def every_thread_seen(metric, p, threads):
    seen, unseen = num(f"{p}.threads_seen"), opt(f"{p}.threads_unseen") or 0
    row(metric, f"{seen:.0f} seen of {threads}, {unseen:.0f} unseen",
        f"{threads} seen, 0 unseen", seen >= threads and unseen == 0)

# 7. 10,000 threads
if "t10k.wall_s" in raw:
    p = "t10k"
    wall = num(f"{p}.wall_s")
    achieved = num(f"{p}.samples") / wall
    slowest = opt(f"{p}.lowest_second_hz")
    slowest_text = "-" if slowest is None else f"{slowest:.0f} Hz"
    row("7. 10,000 threads (2 busy) @100 Hz: rate",
        f"{achieved:.1f} Hz achieved ({num(f'{p}.samples'):.0f} samples / {wall:.1f} s{lowered_note(p)}), "
        f"slowest second after the first {slowest_text}",
        ">= 10 Hz, every second >= 5",
        achieved >= 10 and slowest is not None and slowest >= 5)
    share = num(f"{p}.self_cpu_s") / wall
    row("   10,000 threads: self CPU, whole run",
        f"{share * 100:.2f} % of a core ({num(f'{p}.self_cpu_s'):.3f} s / {wall:.1f} s, "
        f"{num(f'{p}.self_cpu_s') / num(f'{p}.samples') * 1000:.2f} ms per sample)",
        "<= 5 %", share <= 0.05)
    outer = num(f"{p}.outer_user_s") + num(f"{p}.outer_sys_s")
    cross = (outer - num(f"{p}.cpu_s")) / wall
    row("   cross-check: time(1) U+S - target cpu_s",
        f"{cross * 100:.2f} % of a core (({outer:.2f} - {num(f'{p}.cpu_s'):.3f}) s / {wall:.1f} s)",
        "<= 5 %", cross <= 0.05)
    hwm = num(f"{p}.vmhwm_kib") / 1024
    row("   10,000 threads: concadvise's VmHWM", f"{hwm:.1f} MiB", "<= 64 MiB", hwm <= 64)
    every_thread_seen(f"   10,000 threads: threads, open-file limit {raw[f'{p}.nofile'][0]}", p, 10001)
    off = cpu_vs_rusage(p)
    row("   10,000 threads: tree CPU accounted vs rusage",
        f"{off * 100:+.2f} % ({num(f'{p}.cpu_seen_s'):.2f} s vs {num(f'{p}.cpu_s'):.2f} s)",
        "within 1 %", abs(off) <= 0.01)
    held = opt(f"{p}.held_descriptors")
    row("   10,000 threads: descriptors held at most",
        "-" if held is None else f"{held:.0f}", "", None)

# 8. 10,000 threads past the descriptor budget
if "t10k_4096.wall_s" in raw:
    p = "t10k_4096"
    wall = num(f"{p}.wall_s")
    every_thread_seen("8. 10,000 threads, open-file limit 4096: threads", p, 10001)
    held = opt(f"{p}.held_descriptors")
    row("   limit 4096: rate, self CPU, held descriptors",
        f"{num(f'{p}.samples') / wall:.1f} Hz{lowered_note(p)}, "
        f"{num(f'{p}.self_cpu_s') / wall * 100:.2f} % of a core, "
        f"{'-' if held is None else f'{held:.0f}'} held", "", None)
    # For information: in 10 s at a lowered rate, the busy threads' last interval before
    # they exit (up to a period each) is a larger share than in row 7.
    off = cpu_vs_rusage(p)
    row("   limit 4096: tree CPU accounted vs rusage",
        f"{off * 100:+.2f} % ({num(f'{p}.cpu_seen_s'):.2f} s vs {num(f'{p}.cpu_s'):.2f} s)",
        "", None)

# 9. churn at 2000 threads a second
if "churn2k.exit" in raw:
    p = "churn2k"
    rc = int(num(f"{p}.exit"))
    ok = rc == 0 and f"{p}.wall_s" in raw
    fds = (f"fds {num(f'{p}.fds_start'):.0f} at the start, {num(f'{p}.fds_end'):.0f} at the end, "
           f"{raw[f'{p}.fds_max'][0]} at most" if ok else f"exit {rc}")
    row("9. churn 2000 threads/s, 10 s: descriptors", fds, "end == start",
        ok and num(f"{p}.fds_end") == num(f"{p}.fds_start"))
    if ok:
        off = cpu_vs_rusage(p)
        row("   churn 2000/s: tree CPU accounted vs rusage",
            f"{off * 100:+.2f} % ({num(f'{p}.cpu_seen_s'):.3f} s vs {num(f'{p}.cpu_s'):.3f} s)",
            "within 1 %", abs(off) <= 0.01)
        wall = num(f"{p}.wall_s")
        row("   churn 2000/s: sampler",
            f"{num(f'{p}.samples') / wall:.1f} Hz, self CPU {num(f'{p}.self_cpu_s') / wall * 100:.2f} % "
            f"of a core, {num(f'{p}.threads_seen'):.0f} threads seen", "", None)

# 10. CPython stacks: each stretch's chunks (those that ended in it, from 0.3 s after it began:
if "py0.chunk" in raw:
    # the attach itself is not the steady state), their mean duration against that of the alone
    # stretches just before and after it (this VM's speed steps by up to 15 % every few seconds).
    for threads in (0, 100):
        p = f"py{threads}"
        chunks = [tuple(map(float, v.split())) for v in raw[f"{p}.chunk"]]
        stretches = []
        for v in raw[f"{p}.phase"]:
            phase, start, end = v.split()
            start, end = float(start) + 0.3, float(end)
            inside = [d for t, d in chunks if start + d <= t <= end]
            stretches.append((phase, sum(inside) / len(inside) if inside else None))
        ratios = {"off": [], "on": []}
        for (_, before), (phase, mean), (_, after) in zip(stretches, stretches[1:], stretches[2:]):
            if phase in ratios and None not in (before, mean, after):
                ratios[phase].append(mean / ((before + after) / 2))
        off = statistics.median(ratios["off"])
        on = statistics.median(ratios["on"])
        alones = [m for phase, m in stretches if phase == "alone" and m is not None]
        alone = statistics.median(alones)
        spread = (max(alones) - min(alones)) / alone
        what = "1 thread" if threads == 0 else f"{threads} idle threads + 1 computing"
        row(f"10. CPython, {what}: slowdown no stacks / stacks",
            f"{(off - 1) * 100:+.2f} % / {(on - 1) * 100:+.2f} % (medians of {len(ratios['on'])} stretches each "
            f"against the alone ones around them; chunk {alone * 1000:.2f} ms, alone spread {spread * 100:.1f} %)",
            "stacks <= x1.02", on <= 1.02)
        off_self = [v.split() for v in raw[f"{p}.off"]]
        on_self = [v.split() for v in raw[f"{p}.on"]]
        off_share = statistics.median(float(v[0]) / float(v[1]) for v in off_self)
        on_share = statistics.median(float(v[0]) / float(v[1]) for v in on_self)
        rate = statistics.median(float(v[2]) for v in on_self)
        read_ms = statistics.median(float(v[3]) for v in on_self)
        stacks = statistics.median(float(v[4]) for v in on_self)
        failed = sum(int(v[5]) for v in on_self)
        row(f"   {what}: self CPU no stacks / stacks",
            f"{off_share * 100:.2f} % / {on_share * 100:.2f} % of a core (attached 1 s); "
            f"stacks read at {rate:.1f} Hz, {read_ms:.2f} ms CPU per read, {stacks:.0f} stacks per "
            f"attach, {failed} failed reads", "", None)
    rate, read_ms, stacks, failed = (float(v) for v in raw["py1000.code"][0].split())
    on_wall = num("py1000_on.wall_s")
    row("10. CPython, 1000 idle threads: one read, rate left",
        f"{read_ms:.1f} ms CPU per read, {rate:.2f} Hz ({stacks:.0f} stacks, {failed:.0f} failed)",
        "", None)
    for stacks in ("off", "on"):
        p = f"py1000_{stacks}"
        wall = num(f"{p}.wall_s")
        lowest = raw[f"{p}.lowered_to_hz"][0]
        lowered = "" if lowest == "-" else f", budget lowered it to {float(lowest):.1f} Hz"
        row(f"   1000 idle threads, stacks {stacks}: sampler",
            f"{num(f'{p}.samples') / wall:.1f} Hz achieved{lowered}, self CPU "
            f"{num(f'{p}.self_cpu_s') / wall * 100:.1f} % of a core ({wall:.2f} s)",
            "", None)

# Other load: machine busy time (/proc/stat) that was not this benchmark's own CPU (the
# script's children), as a share of the machine, per section and overall. 3b (strace) runs
# inside section 3 when enabled.
marks = [m.split() for m in raw["mark"]]
def other_load(a, b):
    busy, total, ours, steal = (int(b[i]) - int(a[i]) for i in range(1, 5))
    return (busy - ours) / total, steal / total
per_section = [(a[0], other_load(a, b)[0]) for a, b in zip(marks, marks[1:])]
other, steal = other_load(marks[0], marks[-1])
# Only the sections that time or count CPU against a goal (1-3, 7, 8, 10) count; memory (4), the
# churns (5, 9) and the trace (6) do not depend on CPU availability. The estimate is good to
# about +-2 %.
timed = [load for name, load in per_section if name in ("1", "2", "3", "7", "8", "10")]
worst = max(timed, default=0.0)
row("0. other CPU load on the machine (not ours)",
    f"{other * 100:.1f} % of the machine; per section "
    + ", ".join(f"{name}: {load * 100:.0f} %" for name, load in per_section)
    + f"; steal {steal * 100:.1f} %",
    "1-3, 7, 8, 10 each <= 5 % (else suspect)", worst <= 0.05 and steal <= 0.05)
rows.insert(0, rows.pop())

header = ("metric", "value", "goal", "result")
widths = [max(len(r[i]) for r in rows + [header]) for i in range(4)]
line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
print()
print(f"concadvise sampler benchmark, {raw['bench.started'][0]}, {raw['bench.commit'][0]}, "
      f"nproc {raw['machine.nproc'][0]}, kernel {raw['machine.kernel'][0]}, "
      f"{num('bench.seconds'):.0f} s")
print(line(header))
print(line(["-" * w for w in widths]))
for r in rows:
    print(line(r))
EOF
