//! From snapshots to conclusions: one module per question, joined by `findings::analyse` into one `Findings` value.

pub mod accountant;
pub mod bottleneck;
pub mod code;
pub mod contention;
pub mod demand;
pub mod devices;
pub mod event_loop;
pub mod findings;
pub mod limits;
pub mod phases;
pub mod structure;
pub mod thread_timeline;
pub mod throttling;
pub mod timeline;
pub mod verdict;
pub mod wait_kind;

use accountant::Accountant;
use bottleneck::BottleneckTracker;
use code::CodeTracker;
use demand::DemandTracker;
use devices::DeviceTracker;
use event_loop::LoopTracker;
use structure::StructureTracker;
use thread_timeline::ThreadTimeline;

use crate::sampler::observation::TickSnapshot;
use crate::sampler::{RecentActivity, TickSink};

/// Everything that must see each tick as it is taken (snapshots are not kept, so memory stays
/// bounded): the analyses that need more than totals keep their own running state here.
#[derive(Debug, Default)]
pub struct TickAnalyser {
    pub accountant: Accountant,
    pub event_loops: LoopTracker,
    pub structure: StructureTracker,
    pub bottleneck: BottleneckTracker,
    /// Each thread's states over time (from the accountant's per-thread intervals).
    pub thread_timeline: ThreadTimeline,
    /// Stack samples joined to the thread states (after the event loops, whose stretches
    /// it shares).
    pub code: CodeTracker,
    /// The disks behind the files the tree waited on, and how busy they were meanwhile.
    pub devices: DeviceTracker,
    /// The accept queues of the tree's listeners.
    pub demand: DemandTracker,
}

impl TickAnalyser {
    /// An analyser whose per-thread timeline keeps at most `event_budget` trace events.
    pub fn with_event_budget(event_budget: usize) -> TickAnalyser {
        TickAnalyser {
            thread_timeline: ThreadTimeline::with_budget(event_budget),
            ..TickAnalyser::default()
        }
    }

    /// Feeds recorded snapshots (JSON lines, as written by `--record-samples`) to a new analyser;
    /// the error is one line naming the line of the recording.
    pub fn replay(recording: &str) -> Result<TickAnalyser, String> {
        let mut analyser = TickAnalyser::default();
        for (number, line) in recording.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let snapshot = serde_json::from_str::<TickSnapshot>(line).map_err(|e| {
                format!(
                    "recording line {}: {}",
                    number + 1,
                    crate::printable::printable(&e.to_string())
                )
            })?;
            analyser.ingest(&snapshot);
        }
        Ok(analyser)
    }
}

impl TickSink for TickAnalyser {
    fn ingest(&mut self, snapshot: &TickSnapshot) {
        self.accountant.ingest(snapshot);
        self.event_loops
            .ingest(snapshot, &self.accountant.last_tick);
        self.code
            .ingest(snapshot, &self.accountant.last_tick, &self.event_loops);
        self.bottleneck
            .ingest(snapshot, &self.accountant.last_tick, &self.accountant);
        let (bottleneck, accountant) = (&self.bottleneck, &self.accountant);
        self.structure
            .ingest(&accountant.last_tick, &self.event_loops, |pid, tid| {
                bottleneck.waits_on_tree(pid, tid, accountant)
            });
        self.thread_timeline
            .ingest(snapshot, self.accountant.intervals());
        self.devices.ingest(snapshot, &self.accountant.last_tick);
        self.demand.ingest(snapshot);
    }

    fn recent(&mut self, span_ns: f64) -> RecentActivity {
        let (recent, cpu_ns) = self.accountant.take_recent();
        let doing = if recent.cpu_ns + recent.runqueue_ns >= recent.total_ns() / 2.0 {
            "cpu"
        } else {
            recent.dominant_wait().map_or("cpu", |kind| kind.name())
        };
        RecentActivity {
            cores: if span_ns > 0.0 { cpu_ns / span_ns } else { 0.0 },
            doing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_recording_line_is_one_line_of_error() {
        // Found by tests/properties.rs: serde quotes an unknown variant raw, newline included.
        let line = r#"{"at_ns":1,"threads":[{"pid":1,"tid":1,"at_ns":1,"sighting":"cont\ninuing","cpu_ns":0,"runqueue_ns":0}]}"#;
        let error = TickAnalyser::replay(&format!("\n{line}\n")).unwrap_err();
        assert!(error.starts_with("recording line 2: "), "{error}");
        assert!(!error.contains('\n'), "{error}");
    }
}
