//! `blocked_event_loop`: an event loop that spends much of its busy time blocked instead of waiting in its poller.
//!
//! ## What it detects
//! A thread that runs an event loop (asyncio, libuv, tokio, any epoll/poll loop) and was
//! blocked at least 30 % of its non-idle time, for at least 100 ms and a tenth of the run:
//! in a call other than its poller (a `time.sleep`, a synchronous file read, a blocking
//! socket call, a lock) or computing for 100 ms or more without returning to the poller.
//!
//! ## Why it matters
//! An event loop is cooperative: tasks yield at `await`. A task that never yields blocks the
//! whole loop, so every other task, timer and connection waits behind it. The loop is the
//! right model; the blocking call is what is wrong. More loops or threads around it would
//! hide the symptom, not remove it.
//!
//! ## Example
//! `async def handler(): time.sleep(0.25)`, or a coroutine that runs a 2-million-step loop.
//!
//! ## Instead
//! Keep the loop, move the blocking work off it: `await asyncio.to_thread(f)` or
//! `loop.run_in_executor` for blocking calls, a `ProcessPoolExecutor` for CPU, an async client
//! for the library that blocks (the runtime's profile says how in its terms). ruff's ASYNC2xx
//! rules (ASYNC251 `time.sleep`, ASYNC210 blocking HTTP, ASYNC230 `open`) catch the ones
//! written directly in an `async def`.

use super::{pct, AdviceInput, CodeAdvice, Situation, Sizing};
use crate::advice::expected::{Band, Estimate};
use crate::analysis::code::{CodeState, Hotspot};
use crate::analysis::wait_kind::WaitKind;

/// The loop was blocked at least this share of its non-idle time...
pub const BLOCKED_SHARE: f64 = 0.3;
/// ...for at least this long and this share of the run.
const MIN_BLOCKED_S: f64 = 0.1;
const MIN_BLOCKED_OF_WALL: f64 = 0.1;

pub struct BlockedEventLoop;

impl Situation for BlockedEventLoop {
    fn name(&self) -> &'static str {
        "blocked_event_loop"
    }

    fn applies(&self, input: &AdviceInput) -> bool {
        input.concurrency.event_loop.as_ref().is_some_and(|found| {
            found.blocked_share >= BLOCKED_SHARE
                && found.blocked_s >= MIN_BLOCKED_S.max(MIN_BLOCKED_OF_WALL * input.wall_s)
        })
    }

    fn measured(&self, input: &AdviceInput) -> String {
        let Some(found) = input.concurrency.event_loop.as_ref() else {
            return String::new();
        };
        let what: Vec<String> = found
            .blocked_by
            .iter()
            .map(|(kind, seconds)| match kind.as_str() {
                "cpu" if found.never_polled => format!("computing {seconds:.2} s"),
                "cpu" => format!("computing {seconds:.2} s in stretches of 100 ms or more"),
                "lock" => format!("waiting on a lock {seconds:.2} s"),
                _ => format!("blocked in {kind} {seconds:.2} s"),
            })
            .collect();
        let calls = if found.blocking_calls.is_empty() {
            String::new()
        } else {
            let names: Vec<&str> = found
                .blocking_calls
                .iter()
                .map(|(c, _)| c.as_str())
                .collect();
            format!("; the calls it blocked in: {}", names.join(", "))
        };
        let runtime = input
            .event_loop_runtime
            .map_or("the", |runtime| runtime.name.as_str());
        if found.never_polled {
            return format!(
                "The {runtime} event loop (thread {}, {} descriptors in its epoll set, {} of them \
                 connections) was never seen waiting in its poller: {}. Work was always ready \
                 and every task ran to a blocking call or through a long computation before the \
                 next could start, so the loop served one thing at a time: a task that never \
                 yields blocks the whole loop.",
                found.tid,
                found.watched,
                found.peers,
                what.join(", ")
            );
        }
        format!(
            "The {runtime} event loop (thread {}) was blocked {:.2} s, {} of its busy time: {}{}. \
             The longest it went without returning to its poller was {:.2} s. While the loop \
             is blocked no other task runs: a task that never yields blocks the whole loop. \
             (A stretch of 100 ms or more is asyncio's own slow-callback threshold; at the \
             sampling rate one long callback and a loop saturated with short ones look the \
             same, and both mean the loop's one thread is the limit.)",
            found.tid,
            found.blocked_s,
            pct(found.blocked_share),
            what.join(", "),
            calls,
            found.longest_block_s,
        )
    }

    /// The lines that blocked the loop, and each one's async replacement.
    fn code(&self, input: &AdviceInput) -> Option<CodeAdvice> {
        let hotspots = input.hotspots(CodeState::LoopBlocked);
        if hotspots.is_empty() {
            return None;
        }
        let named: Vec<String> = hotspots
            .iter()
            .take(2)
            .map(|h| {
                format!(
                    "{}, {} of its blocked samples ({:.2} s, {})",
                    h.place(),
                    pct(h.share),
                    h.seconds,
                    doing(h)
                )
            })
            .collect();
        let how: Vec<String> = hotspots
            .iter()
            .take(2)
            .map(|h| replacement(h, input.is_python()))
            .collect();
        Some(CodeAdvice {
            reason: format!("Where the loop was blocked: {}.", named.join("; ")),
            how: how.join(" "),
        })
    }

    fn change(&self) -> &'static str {
        "the blocking calls moved off the event loop"
    }

    /// Run (fixed work): the blocking waits leave the loop and overlap what it does; what it
    /// computes stays (moving CPU to processes is the CPU model, not this one). Attach (a
    /// server): capacity grows towards busy / (busy - blocked waits), bounded by the peers
    /// it serves, each of which has one request in flight at a time.
    fn expected(&self, input: &AdviceInput, _sizing: &Sizing) -> Estimate {
        let Some(found) = input.concurrency.event_loop.as_ref() else {
            return Estimate::Unavailable("no event loop was measured".into());
        };
        let waits = found.blocked_wait_s;
        let computing = found.callbacks_s + found.blocked_cpu_s;
        if waits < 0.05 * found.blocked_s.max(f64::MIN_POSITIVE) {
            return Estimate::Unavailable(format!(
                "the loop was blocked by computing ({:.2} s), not by waits: that is the CPU \
                 model (processes), whose gain depends on how the work divides",
                found.blocked_cpu_s
            ));
        }
        if input.attached {
            let busy = waits + computing + found.polling_io_s;
            let mut point = busy / (busy - waits).max(0.001 * busy.max(f64::MIN_POSITIVE));
            let mut bound = String::new();
            if found.peers >= 1 && f64::from(found.peers) < point {
                point = f64::from(found.peers);
                bound = format!(
                    ", bounded by the {} connections it serves (one request in flight each)",
                    found.peers
                );
            }
            return Estimate::band(
                Band::new(point, 1.0 + 0.6 * (point - 1.0), point * 1.2).widened_for(input),
                format!(
                    "the loop was busy {busy:.2} s, {waits:.2} s of it blocked in waits that \
                     an await would overlap{bound}; what it computes ({computing:.2} s) stays"
                ),
            );
        }
        let wall = input.wall_s.max(f64::MIN_POSITIVE);
        let floor = 0.001 * wall;
        let point = wall / (wall - waits).max(floor);
        // At best the waits also overlap the loop's idle polling (timers that ran meanwhile).
        let high = wall
            / (wall - waits - found.polling_idle_s)
                .max(computing)
                .max(floor);
        Estimate::band(
            Band::new(point, 1.0 + (point - 1.0) / 2.0, high).widened_for(input),
            format!(
                "{waits:.2} s of the {wall:.1} s were the loop blocked in waits that an await \
                 would overlap with its other work; its computing ({computing:.2} s) stays"
            ),
        )
    }
}

/// "computing", "in sleep": what the loop thread did at a blocked hotspot.
fn doing(hotspot: &Hotspot) -> String {
    match hotspot.blocked_in {
        Some(CodeState::Cpu) | None => "computing".to_string(),
        Some(state) => format!("blocked in {}", state.name()),
    }
}

/// What to write instead at a line that blocked the loop.
fn replacement(hotspot: &Hotspot, python: bool) -> String {
    let place = hotspot.place();
    let function = &hotspot.function;
    if !python {
        return format!(
            "At {place} the loop {}: move that off the loop.",
            doing(hotspot)
        );
    }
    match hotspot.blocked_in {
        Some(CodeState::Wait(WaitKind::Sleep)) => format!(
            "At {place} the loop sleeps: await asyncio.sleep(...) there instead of time.sleep."
        ),
        Some(CodeState::Wait(WaitKind::Network)) => format!(
            "At {place} it waits on the network with a blocking client: use an async one \
             there (aiohttp, httpx.AsyncClient, asyncpg), or await asyncio.to_thread(...) \
             around the call."
        ),
        Some(CodeState::Cpu) | None => format!(
            "At {place} it computes: await loop.run_in_executor(process_pool, {function}, \
             ...) with a concurrent.futures.ProcessPoolExecutor (a thread would hold the GIL)."
        ),
        Some(CodeState::Wait(WaitKind::Lock)) => format!(
            "At {place} it waits for a lock: an asyncio.Lock if the holder is a coroutine, \
             else await asyncio.to_thread(...) around the call."
        ),
        Some(state) => format!(
            "At {place} it blocks in {}: await asyncio.to_thread(...) around that call.",
            state.name()
        ),
    }
}
