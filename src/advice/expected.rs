//! What the recommended change is expected to buy: a point estimate and the band the measurement after it should fall in.
//!
//! Each situation has its model (in its own module, beside its condition); this module has
//! what they share: the band, its widening for thin or noisy measurements, and how a band
//! is judged. A band is the model's uncertainty (what it assumes: that the work divides,
//! that the peer keeps up, start-up and hand-off costs), never a fixed percentage.

use super::situations::AdviceInput;

/// A band wider than this (high / low) is printed as uncertain.
pub const UNCERTAIN_RATIO: f64 = 3.0;

/// What is compared: the wall time of a run doing the same work, or how much more load a
/// server can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    Wall,
    Capacity,
}

impl Measure {
    pub fn name(self) -> &'static str {
        match self {
            Measure::Wall => "wall",
            Measure::Capacity => "capacity",
        }
    }
}

/// A speedup (before / after) and its band.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Band {
    pub speedup: f64,
    pub low: f64,
    pub high: f64,
}

impl Band {
    /// A band from its ends and point, kept in order (low <= speedup <= high).
    pub fn new(speedup: f64, low: f64, high: f64) -> Band {
        let low = low.min(speedup).max(f64::MIN_POSITIVE);
        let high = high.max(speedup);
        Band { speedup, low, high }
    }

    /// Nothing would change: x1.0, with a little room either way (more processes under the
    /// same limit pay a little for switching).
    pub fn unchanged() -> Band {
        Band::new(1.0, 0.8, 1.1)
    }

    pub fn uncertain(&self) -> bool {
        self.high / self.low > UNCERTAIN_RATIO
    }

    /// Widens the band for a thin or noisy measurement: under 50 samples (x1.3 each way),
    /// or a run that waited for a CPU over a tenth of its time (the machine was busy and the
    /// after-run may find it busier or quieter: x(1 + half that share) each way).
    pub fn widened_for(self, input: &AdviceInput) -> Band {
        let mut factor = 1.0;
        if input.verdict.too_short {
            factor *= 1.3;
        }
        let runqueue = input.verdict.shares.runqueue;
        if runqueue > 0.1 {
            factor *= 1.0 + runqueue / 2.0;
        }
        Band::new(self.speedup, self.low / factor, self.high * factor)
    }
}

/// A model's answer: a band and what it rests on, or why there is none.
#[derive(Debug, Clone, PartialEq)]
pub enum Estimate {
    Band { band: Band, basis: String },
    Unavailable(String),
}

impl Estimate {
    pub fn band(band: Band, basis: String) -> Estimate {
        Estimate::Band { band, basis }
    }
}

/// The expectation attached to a recommendation.
#[derive(Debug, Clone, PartialEq)]
pub struct Expected {
    /// What to change, in the profile's words.
    pub change: String,
    pub measure: Measure,
    pub estimate: Estimate,
}

/// Amdahl: the speedup when a share `p` of the time runs `k` times faster.
pub fn amdahl(p: f64, k: f64) -> f64 {
    let p = p.clamp(0.0, 1.0);
    1.0 / ((1.0 - p) + p / k.max(f64::MIN_POSITIVE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_keep_their_order_and_say_when_they_are_wide() {
        let band = Band::new(5.0, 6.0, 4.0);
        assert!(band.low <= band.speedup && band.speedup <= band.high);
        assert!(!Band::new(2.0, 1.5, 2.2).uncertain());
        assert!(Band::new(10.0, 2.0, 40.0).uncertain());
        assert_eq!(amdahl(1.0, 4.0), 4.0);
        assert_eq!(amdahl(0.0, 4.0), 1.0);
        assert!((amdahl(0.5, 2.0) - 4.0 / 3.0).abs() < 1e-12);
    }
}
