//! The per-thread timeline as a Chrome/Perfetto trace (the JSON trace-event format): one track per thread, a slice per stretch of one state.
//!
//! It only serialises `Findings::thread_timelines` (and the phases, the verdict and the model);
//! the events are streamed into the output as they are made, so a trace of a long run costs
//! memory only for its bytes. ui.perfetto.dev and chrome://tracing open it as it is.

use std::borrow::Cow;
use std::io::Write;

use serde::ser::{SerializeSeq, Serializer};
use serde::Serialize;

use super::shorten;
use crate::advice::Recommendation;
use crate::analysis::findings::Findings;
use crate::analysis::thread_timeline::{Slice, State, Track};
use crate::sampler::observation::FdKind;

/// The phases' track has a PID no process can have (Linux PIDs stay below PID_MAX_LIMIT).
pub const PHASES_PID: i32 = 4_194_304;

/// What the trace is made from.
pub struct TraceInput<'a> {
    pub findings: &'a Findings,
    pub recommendation: &'a Recommendation,
    /// The measured command, as launched or attached to.
    pub command: &'a [String],
    /// The thread (pid, tid) that runs an event loop: its track's name says so. The event-loop
    /// analysis names it; `None` until it does.
    pub loop_thread: Option<(i32, i32)>,
}

/// Writes the trace as JSON, event by event (a trace of a long run is tens of megabytes: it
/// is never held in memory whole).
pub fn write<'a>(input: &'a TraceInput<'a>, mut writer: impl Write) -> serde_json::Result<()> {
    let file = TraceFile {
        trace_events: Events(input),
        display_time_unit: "ms",
        other_data: OtherData::of(input),
    };
    serde_json::to_writer(&mut writer, &file)?;
    writer.write_all(b"\n").map_err(serde_json::Error::io)
}

#[derive(Serialize)]
struct TraceFile<'a> {
    #[serde(rename = "traceEvents")]
    trace_events: Events<'a>,
    #[serde(rename = "displayTimeUnit")]
    display_time_unit: &'static str,
    /// The format's place for metadata (Perfetto and chrome://tracing show it as such).
    #[serde(rename = "otherData")]
    other_data: OtherData,
}

/// The run as a whole: what was measured, the verdict and the model, and how the budget
/// shaped the slices.
#[derive(Serialize)]
struct OtherData {
    command: String,
    verdict: &'static str,
    confidence: f64,
    model: &'static str,
    concadvise: &'static str,
    event_budget: usize,
    /// Stretches shorter than this (ms) were merged to keep within the budget (0: none were).
    merged_below_ms: f64,
    threads_left_out: u64,
    resolution: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_loop_thread: Option<i32>,
}

impl OtherData {
    fn of(input: &TraceInput) -> OtherData {
        let timelines = &input.findings.thread_timelines;
        let merged_below_ms = timelines.resolution_ns as f64 / 1e6;
        let mut resolution = if timelines.resolution_ns == 0 {
            "as sampled: every change of state the samples saw is a slice".to_string()
        } else {
            format!(
                "stretches shorter than {merged_below_ms} ms were merged into their neighbours \
                 (each state's total time per thread kept) to stay within {} events",
                timelines.event_budget
            )
        };
        if timelines.threads_left_out > 0 {
            resolution.push_str(&format!(
                "; {} threads with the least CPU were left out to stay within it",
                timelines.threads_left_out
            ));
        }
        OtherData {
            command: input.command.join(" "),
            verdict: input.findings.verdict.class.name(),
            confidence: input.findings.verdict.confidence,
            model: input.recommendation.advice.model.name(),
            concadvise: crate::VERSION,
            event_budget: timelines.event_budget,
            merged_below_ms,
            threads_left_out: timelines.threads_left_out,
            resolution,
            event_loop_thread: input.loop_thread.map(|(_, tid)| tid),
        }
    }
}

/// One trace event: `M` (metadata: names, sort order) or `X` (a complete slice).
#[derive(Serialize)]
struct Event<'a> {
    name: Cow<'a, str>,
    ph: &'static str,
    pid: i32,
    tid: i32,
    /// Microseconds since sampling started (0 for metadata).
    ts: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    dur: Option<u64>,
    #[serde(skip_serializing_if = "Args::is_empty")]
    args: Args<'a>,
}

#[derive(Serialize, Default)]
struct Args<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sort_index: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    syscall: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fd: Option<FdKind>,
    /// The user's frame the thread was seen in during the slice ("handler (app.py:9)"),
    /// when a stack sample fell in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_loop: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    waits: Option<Vec<&'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<&'static str>,
}

impl Args<'_> {
    fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.sort_index.is_none()
            && self.syscall.is_none()
            && self.fd.is_none()
            && self.code.is_none()
            && self.event_loop.is_none()
            && self.waits.is_none()
            && self.model.is_none()
    }
}

fn metadata<'a>(name: &'static str, pid: i32, tid: i32, args: Args<'a>) -> Event<'a> {
    Event {
        name: Cow::Borrowed(name),
        ph: "M",
        pid,
        tid,
        ts: 0,
        dur: None,
        args,
    }
}

fn micros(ns: u64) -> u64 {
    (ns + 500) / 1000
}

/// A slice of one state: start and end are rounded to the microsecond separately, so a
/// track's slices stay end to end; one shorter than a microsecond is left out.
fn slice_event<'a>(input: &TraceInput<'a>, track: &Track, slice: Slice) -> Option<Event<'a>> {
    let ts = micros(slice.start_ns);
    let dur = micros(slice.end_ns).saturating_sub(ts);
    let detail = input.findings.thread_timelines.detail(slice.detail);
    let code =
        input.findings.code.as_ref().and_then(|code| {
            code.frame_between(track.pid, track.tid, slice.start_ns, slice.end_ns)
        });
    (dur > 0).then(|| Event {
        name: Cow::Borrowed(slice.state.name()),
        ph: "X",
        pid: track.pid,
        tid: track.tid,
        ts,
        dur: Some(dur),
        args: Args {
            syscall: detail.and_then(|d| d.syscall),
            fd: detail.and_then(|d| d.fd),
            code,
            ..Args::default()
        },
    })
}

/// The events, made as they are written.
struct Events<'a>(&'a TraceInput<'a>);

impl Serialize for Events<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let input = self.0;
        let mut seq = serializer.serialize_seq(None)?;
        for event in process_names(input).iter().chain(&thread_records(input)) {
            seq.serialize_element(event)?;
        }
        // The slices are the bulk of the trace: made one at a time.
        for track in &input.findings.thread_timelines.tracks {
            for slice in track.slices() {
                if let Some(event) = slice_event(input, track, slice) {
                    seq.serialize_element(&event)?;
                }
            }
        }
        for event in &phase_events(input) {
            seq.serialize_element(event)?;
        }
        seq.end()
    }
}

fn named<'a>(name: Cow<'a, str>) -> Args<'a> {
    Args {
        name: Some(name),
        ..Args::default()
    }
}

/// Each process with a thread in the trace, named by its command.
fn process_names<'a>(input: &TraceInput<'a>) -> Vec<Event<'a>> {
    let findings = input.findings;
    let mut pids: Vec<i32> = findings
        .thread_timelines
        .tracks
        .iter()
        .map(|t| t.pid)
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids.into_iter()
        .map(|pid| {
            let command = findings
                .processes
                .iter()
                .find(|p| p.pid == pid)
                .map(|p| p.command.join(" "))
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| format!("process {pid}"));
            let name = named(Cow::Owned(shorten(&command, 120)));
            metadata("process_name", pid, 0, name)
        })
        .collect()
}

/// Each thread's name (its comm; the event-loop thread marked) and its place, busiest first.
fn thread_records<'a>(input: &TraceInput<'a>) -> Vec<Event<'a>> {
    let mut by_cpu: Vec<&Track> = input.findings.thread_timelines.tracks.iter().collect();
    by_cpu.sort_by_cached_key(|t| (std::cmp::Reverse(t.time_in(State::Cpu)), t.tid));
    let mut records = Vec::with_capacity(2 * by_cpu.len());
    for (rank, track) in by_cpu.into_iter().enumerate() {
        let event_loop = input.loop_thread == Some((track.pid, track.tid));
        let mut name = if track.name.is_empty() {
            format!("thread {}", track.tid)
        } else {
            track.name.clone()
        };
        if event_loop {
            name.push_str(" (event loop)");
        }
        let args = Args {
            event_loop: event_loop.then_some(true),
            ..named(Cow::Owned(name))
        };
        records.push(metadata("thread_name", track.pid, track.tid, args));
        let order = Args {
            sort_index: Some(rank as i64),
            ..Args::default()
        };
        records.push(metadata("thread_sort_index", track.pid, track.tid, order));
    }
    records
}

/// The phases, on a track of their own above the processes: a slice each, with its waits and
/// the model it alone would get.
fn phase_events<'a>(input: &TraceInput<'a>) -> Vec<Event<'a>> {
    let phases = &input.findings.phases;
    if phases.is_empty() {
        return Vec::new();
    }
    let first = Args {
        sort_index: Some(-1),
        ..Args::default()
    };
    let mut events = vec![
        metadata(
            "process_name",
            PHASES_PID,
            0,
            named(Cow::Borrowed("phases")),
        ),
        metadata("process_sort_index", PHASES_PID, 0, first),
        metadata(
            "thread_name",
            PHASES_PID,
            PHASES_PID,
            named(Cow::Borrowed("phases")),
        ),
    ];
    for (phase, model) in phases.iter().zip(&input.recommendation.phase_models) {
        let ts = micros(phase.start_ns.max(0.0) as u64);
        let dur = micros(phase.end_ns.max(0.0) as u64).saturating_sub(ts);
        events.push(Event {
            name: Cow::Borrowed(phase.verdict.class.name()),
            ph: "X",
            pid: PHASES_PID,
            tid: PHASES_PID,
            ts,
            dur: Some(dur),
            args: Args {
                waits: Some(phase.dominant_waits(2).iter().map(|k| k.name()).collect()),
                model: Some(model.name()),
                ..Args::default()
            },
        });
    }
    events
}
