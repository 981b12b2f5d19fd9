//! A bounded timeline of the wall split: fixed-count buckets that merge in pairs as the run grows.

use super::accountant::TimeSplit;
use super::wait_kind::WaitKind;

/// Buckets kept at most; when a tick falls past the last, neighbours merge and widths double.
pub const MAX_BUCKETS: usize = 240;
/// Width of a bucket at the start of a run.
pub const INITIAL_BUCKET_NS: f64 = 100e6;

#[derive(Debug, Clone)]
pub struct Timeline {
    buckets: Vec<TimeSplit>,
    /// Thread CPU time per bucket (the wall split counts at most one core).
    cpu_ns: Vec<f64>,
    bucket_ns: f64,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline {
            buckets: Vec::with_capacity(MAX_BUCKETS),
            cpu_ns: Vec::with_capacity(MAX_BUCKETS),
            bucket_ns: INITIAL_BUCKET_NS,
        }
    }
}

impl Timeline {
    /// Adds the wall split of a tick that ended at `at_ns` (ns since the start), and the
    /// tree's CPU time in it.
    pub fn add(&mut self, at_ns: u64, wall: &TimeSplit, cpu_ns: f64) {
        if wall.total_ns() <= 0.0 {
            return;
        }
        // The tick's middle decides its bucket.
        let middle = (at_ns as f64 - wall.total_ns() / 2.0).max(0.0);
        let mut index = (middle / self.bucket_ns) as usize;
        while index >= MAX_BUCKETS {
            self.halve();
            index = (middle / self.bucket_ns) as usize;
        }
        if self.buckets.len() <= index {
            self.buckets.resize(index + 1, TimeSplit::default());
            self.cpu_ns.resize(index + 1, 0.0);
        }
        self.buckets[index].add(wall);
        self.cpu_ns[index] += cpu_ns;
    }

    fn halve(&mut self) {
        let merged = self
            .buckets
            .chunks(2)
            .map(|pair| {
                let mut sum = pair[0];
                if let Some(second) = pair.get(1) {
                    sum.add(second);
                }
                sum
            })
            .collect();
        self.buckets = merged;
        self.cpu_ns = self
            .cpu_ns
            .chunks(2)
            .map(|pair| pair.iter().sum())
            .collect();
        self.bucket_ns *= 2.0;
    }

    pub fn buckets(&self) -> &[TimeSplit] {
        &self.buckets
    }

    pub fn cpu_ns(&self) -> &[f64] {
        &self.cpu_ns
    }

    pub fn bucket_ns(&self) -> f64 {
        self.bucket_ns
    }
}

/// The letter a bucket shows in the one-line timeline: what took most of its wall time.
pub fn state_letter(bucket: &TimeSplit) -> char {
    if bucket.total_ns() <= 0.0 {
        return ' ';
    }
    let mut best = ('c', bucket.cpu_ns);
    if bucket.runqueue_ns > best.1 {
        best = ('r', bucket.runqueue_ns);
    }
    for kind in WaitKind::ALL {
        if bucket.wait(kind) > best.1 {
            best = (kind_letter(kind), bucket.wait(kind));
        }
    }
    best.0
}

pub fn kind_letter(kind: WaitKind) -> char {
    match kind {
        WaitKind::Throttled => 'q',
        WaitKind::Disk => 'd',
        WaitKind::Network => 'n',
        WaitKind::NetworkFs => 'f',
        WaitKind::Ipc => 'i',
        WaitKind::Lock => 'l',
        WaitKind::Sleep => 's',
        WaitKind::EventWait => 'e',
        WaitKind::Child => 'w',
        WaitKind::Input => 't',
        WaitKind::Paging => 'p',
        WaitKind::Stopped => 'h',
        WaitKind::Other => 'o',
        WaitKind::Unknown => '?',
        WaitKind::Uninterruptible => 'u',
    }
}

/// The state a timeline letter stands for.
pub fn letter_name(letter: char) -> Option<&'static str> {
    match letter {
        'c' => Some("cpu"),
        'r' => Some("runqueue"),
        _ => WaitKind::ALL
            .into_iter()
            .find(|kind| kind_letter(*kind) == letter)
            .map(WaitKind::name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(ns: f64) -> TimeSplit {
        TimeSplit::with_waits(ns, &[])
    }

    #[test]
    fn an_hour_of_samples_keeps_the_timeline_at_its_fixed_size() {
        let mut timeline = Timeline::default();
        let period = 10_000_000u64; // 100 Hz
        for i in 1..=360_000u64 {
            timeline.add(i * period, &tick(period as f64), period as f64);
        }
        assert!(timeline.buckets().len() <= MAX_BUCKETS);
        assert!(timeline.buckets().len() > MAX_BUCKETS / 2);
        let covered: f64 = timeline.buckets().iter().map(TimeSplit::total_ns).sum();
        assert_eq!(covered, 3600e9, "merging loses no time");
        assert_eq!(timeline.cpu_ns().iter().sum::<f64>(), 3600e9);
    }

    #[test]
    fn letters_name_the_largest_state() {
        assert_eq!(state_letter(&tick(5.0)), 'c');
        let disk = TimeSplit::with_waits(2.0, &[(WaitKind::Disk, 3.0)]);
        assert_eq!(state_letter(&disk), 'd');
        assert_eq!(letter_name('d'), Some("disk"));
        assert_eq!(letter_name('c'), Some("cpu"));
        assert_eq!(state_letter(&TimeSplit::default()), ' ');
        assert_eq!(letter_name('f'), Some("network_fs"));
        assert_eq!(letter_name('h'), Some("stopped"));
        let letters: std::collections::HashSet<char> =
            WaitKind::ALL.into_iter().map(kind_letter).collect();
        assert_eq!(letters.len(), WaitKind::COUNT, "one letter per kind");
        assert!(!letters.contains(&'c') && !letters.contains(&'r'));
    }
}
