//! The scaling laws fitted to measured throughput: Amdahl's (σ) and Gunther's Universal Scalability Law (σ, κ), by least squares on the linearised form.
//!
//! With C(N) = X(N) / X(1) the relative capacity at N workers, the USL says
//! C(N) = N / (1 + σ(N−1) + κN(N−1)): σ is the serial share (contention, Amdahl's law when
//! κ = 0) and κ the cost workers put on each other (coherency), which makes throughput fall
//! past N* = sqrt((1−σ)/κ). Rearranged, N/C(N) − 1 = σ(N−1) + κN(N−1): a linear regression
//! without intercept in two unknowns, solved here in closed form.

use serde::{Deserialize, Serialize};

/// One measured level: N workers and its relative capacity C(N).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub n: f64,
    pub capacity: f64,
}

/// The USL's C(N).
pub fn usl_capacity(sigma: f64, kappa: f64, n: f64) -> f64 {
    n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0))
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usl {
    pub sigma: f64,
    pub kappa: f64,
    /// R² of the fitted C(N) against the measured one.
    pub r2: f64,
}

impl Usl {
    pub fn capacity(&self, n: f64) -> f64 {
        usl_capacity(self.sigma, self.kappa, n)
    }

    /// The peak N* and C(N*); none when κ = 0 (the curve rises towards 1/σ for ever).
    pub fn peak(&self) -> Option<(f64, f64)> {
        if self.kappa <= 0.0 {
            return None;
        }
        let n = if self.sigma >= 1.0 {
            1.0
        } else {
            ((1.0 - self.sigma) / self.kappa).sqrt().max(1.0)
        };
        Some((n, self.capacity(n)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Amdahl {
    pub sigma: f64,
    pub r2: f64,
}

impl Amdahl {
    pub fn capacity(&self, n: f64) -> f64 {
        usl_capacity(self.sigma, 0.0, n)
    }

    /// The speedup no number of workers passes: 1/σ (none when nothing is serial).
    pub fn ceiling(&self) -> Option<f64> {
        (self.sigma > 0.0).then(|| 1.0 / self.sigma)
    }
}

/// The sums of the normal equations over the points with N > 1 and C > 0 (N = 1 adds
/// nothing: both sides are 0 there; C = 0 has no linearised form).
#[derive(Debug, Default)]
struct Sums {
    x1x1: f64,
    x1x2: f64,
    x2x2: f64,
    x1y: f64,
    x2y: f64,
}

impl Sums {
    fn of(points: &[Point]) -> Sums {
        let mut sums = Sums::default();
        for point in points {
            if point.n <= 1.0
                || point.capacity.is_nan()
                || point.capacity <= 0.0
                || !point.capacity.is_finite()
            {
                continue;
            }
            let (x1, x2) = (point.n - 1.0, point.n * (point.n - 1.0));
            let y = point.n / point.capacity - 1.0;
            sums.x1x1 += x1 * x1;
            sums.x1x2 += x1 * x2;
            sums.x2x2 += x2 * x2;
            sums.x1y += x1 * y;
            sums.x2y += x2 * y;
        }
        sums
    }

    /// The linearised residual sum of squares of (σ, κ), up to the constant Σy².
    fn residual(&self, sigma: f64, kappa: f64) -> f64 {
        sigma * sigma * self.x1x1 + 2.0 * sigma * kappa * self.x1x2 + kappa * kappa * self.x2x2
            - 2.0 * (sigma * self.x1y + kappa * self.x2y)
    }
}

/// Fits the USL; none unless at least two different N > 1 were measured.
pub fn fit_usl(points: &[Point]) -> Option<Usl> {
    let sums = Sums::of(points);
    let det = sums.x1x1 * sums.x2x2 - sums.x1x2 * sums.x1x2;
    // Fewer than two different N > 1 (or none): the two parameters are not determined.
    if det.is_nan() || det <= 1e-12 * sums.x1x1 * sums.x2x2 {
        return None;
    }
    let sigma = (sums.x1y * sums.x2x2 - sums.x2y * sums.x1x2) / det;
    let kappa = (sums.x2y * sums.x1x1 - sums.x1y * sums.x1x2) / det;
    // σ is a share (0..1) and κ a cost (>= 0). Outside that box, the least-squares
    // optimum under the constraints lies on an edge of it: on each edge, clamp one
    // parameter and refit the other alone; keep the edge that fits best.
    let (sigma, kappa) = if (0.0..=1.0).contains(&sigma) && kappa >= 0.0 {
        (sigma, kappa)
    } else {
        let kappa_given_sigma = |sigma: f64| ((sums.x2y - sigma * sums.x1x2) / sums.x2x2).max(0.0);
        let edges = [
            (0.0, kappa_given_sigma(0.0)),
            (1.0, kappa_given_sigma(1.0)),
            ((sums.x1y / sums.x1x1).clamp(0.0, 1.0), 0.0),
        ];
        edges
            .into_iter()
            .min_by(|a, b| sums.residual(a.0, a.1).total_cmp(&sums.residual(b.0, b.1)))
            .unwrap_or((0.0, 0.0))
    };
    let r2 = r_squared(points, |n| usl_capacity(sigma, kappa, n));
    Some(Usl { sigma, kappa, r2 })
}

/// Fits Amdahl's law (the USL with κ = 0); none unless some N > 1 was measured.
pub fn fit_amdahl(points: &[Point]) -> Option<Amdahl> {
    let sums = Sums::of(points);
    if sums.x1x1 <= 0.0 {
        return None;
    }
    let sigma = (sums.x1y / sums.x1x1).clamp(0.0, 1.0);
    let r2 = r_squared(points, |n| usl_capacity(sigma, 0.0, n));
    Some(Amdahl { sigma, r2 })
}

/// 1 − SS_res / SS_tot of the model's C(N) against the measured C(N).
fn r_squared(points: &[Point], model: impl Fn(f64) -> f64) -> f64 {
    let mean = points.iter().map(|p| p.capacity).sum::<f64>() / points.len().max(1) as f64;
    let total: f64 = points.iter().map(|p| (p.capacity - mean).powi(2)).sum();
    let residual: f64 = points
        .iter()
        .map(|p| (p.capacity - model(p.n)).powi(2))
        .sum();
    if total <= 1e-12 {
        // Every level measured the same capacity: a model that says so fits perfectly.
        return if residual <= 1e-12 { 1.0 } else { 0.0 };
    }
    1.0 - residual / total
}

/// Which law describes the measurements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Law {
    /// No measurable serial share: throughput grew with every worker.
    Linear,
    /// A serial share caps the speedup at 1/σ.
    Amdahl,
    /// Workers also cost each other: throughput peaks and then falls.
    Usl,
}

/// A serial share under this is within what a scan can tell from linear.
const LINEAR_SIGMA: f64 = 0.02;
/// The USL's second parameter is worth it when it explains this much more of the variance...
const USL_BETTER_R2: f64 = 0.02;
/// ...or when the measured capacity at the highest level fell this far below the best.
const RETROGRADE: f64 = 0.95;

/// The USL when κ explains something Amdahl's law cannot (a fall past a peak, or a clearly
/// better fit), else Amdahl's law, or linear when even its σ is negligible.
pub fn choose_law(usl: &Usl, amdahl: &Amdahl, points: &[Point]) -> Law {
    let best = points.iter().map(|p| p.capacity).fold(0.0, f64::max);
    let last = points
        .iter()
        .max_by(|a, b| a.n.total_cmp(&b.n))
        .map_or(0.0, |p| p.capacity);
    let falls = last < RETROGRADE * best;
    if usl.kappa > 0.0 && (falls || usl.r2 - amdahl.r2 > USL_BETTER_R2) {
        Law::Usl
    } else if amdahl.sigma < LINEAR_SIGMA {
        Law::Linear
    } else {
        Law::Amdahl
    }
}

/// A share as people write it: "12 %", "4.5 %".
pub fn percent(share: f64) -> String {
    let pct = share * 100.0;
    // 9.96 % reads as 10 %, not 10.0 %.
    if (pct * 10.0).round() >= 100.0 {
        format!("{pct:.0} %")
    } else {
        format!("{pct:.1} %")
    }
}

/// What the chosen law means, in one sentence; `max_n` is the highest level measured.
pub fn meaning(law: Law, usl: &Usl, amdahl: &Amdahl, max_n: u32) -> String {
    match law {
        Law::Linear => format!(
            "linear: no measurable serial share; each worker added about one worker's \
             throughput, up to N = {max_n}"
        ),
        Law::Amdahl => {
            let ceiling = amdahl.ceiling().map_or(String::new(), |c| {
                format!(", so no number of workers gets past {c:.1}x")
            });
            format!(
                "contention: {} of the work is serial{ceiling}",
                percent(amdahl.sigma)
            )
        }
        Law::Usl => {
            let contention = if usl.sigma >= 0.995 {
                "contention: all of the work is serial; ".to_string()
            } else if usl.sigma >= 0.01 {
                format!("contention: {} of the work is serial; ", percent(usl.sigma))
            } else {
                String::new()
            };
            let peak_n = usl.peak().map_or(f64::INFINITY, |(n, _)| n);
            let workers = peak_n.round().max(1.0);
            let coherency = if workers <= 1.0 {
                "coherency: a second worker already costs more than it adds: throughput is \
                 highest at N = 1"
                    .to_string()
            } else if peak_n <= 1.25 * f64::from(max_n) {
                format!("coherency: past {workers} workers they cost each other more than they add")
            } else {
                format!(
                    "coherency: the workers cost each other a little (κ = {:.4}), enough to \
                     stop the gains at about {workers} workers, beyond the {max_n} tried",
                    usl.kappa
                )
            };
            format!("{contention}{coherency}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synthetic(sigma: f64, kappa: f64, levels: &[u32]) -> Vec<Point> {
        levels
            .iter()
            .map(|&n| Point {
                n: f64::from(n),
                capacity: usl_capacity(sigma, kappa, f64::from(n)),
            })
            .collect()
    }

    /// Points from (N, C(N)) pairs.
    fn measured(pairs: &[(u32, f64)]) -> Vec<Point> {
        pairs
            .iter()
            .map(|&(n, c)| Point {
                n: f64::from(n),
                capacity: c,
            })
            .collect()
    }

    fn within_1_percent(found: f64, expected: f64) -> bool {
        (found - expected).abs() <= 0.01 * expected.abs()
    }

    #[test]
    fn the_usl_recovers_known_parameters() {
        for (sigma, kappa) in [(0.05, 0.02), (0.12, 0.001), (0.3, 0.05), (0.01, 0.1)] {
            let points = synthetic(sigma, kappa, &[1, 2, 4, 8, 16]);
            let usl = fit_usl(&points).unwrap();
            assert!(within_1_percent(usl.sigma, sigma), "{usl:?} for σ {sigma}");
            assert!(within_1_percent(usl.kappa, kappa), "{usl:?} for κ {kappa}");
            assert!(usl.r2 > 0.9999, "{usl:?}");
            let (peak_n, peak_c) = usl.peak().unwrap();
            let expected_n = ((1.0 - sigma) / kappa).sqrt();
            assert!(
                within_1_percent(peak_n, expected_n),
                "{peak_n} vs {expected_n}"
            );
            assert!(within_1_percent(
                peak_c,
                usl_capacity(sigma, kappa, expected_n)
            ));
        }
    }

    #[test]
    fn pure_amdahl_data_gives_no_coherency_and_amdahl_is_chosen() {
        let points = synthetic(0.12, 0.0, &[1, 2, 3, 4, 6, 8]);
        let usl = fit_usl(&points).unwrap();
        let amdahl = fit_amdahl(&points).unwrap();
        assert!(within_1_percent(amdahl.sigma, 0.12), "{amdahl:?}");
        assert!(within_1_percent(usl.sigma, 0.12), "{usl:?}");
        assert!(usl.kappa < 1e-9, "{usl:?}");
        assert!(usl.peak().is_none_or(|(n, _)| n > 1e3), "{usl:?}");
        assert!(amdahl.r2 > 0.9999);
        assert_eq!(choose_law(&usl, &amdahl, &points), Law::Amdahl);
        let ceiling = amdahl.ceiling().unwrap();
        assert!(within_1_percent(ceiling, 1.0 / 0.12));
        assert_eq!(
            meaning(Law::Amdahl, &usl, &amdahl, 8),
            "contention: 12 % of the work is serial, so no number of workers gets past 8.3x"
        );
    }

    #[test]
    fn perfectly_linear_data_is_linear() {
        let points = synthetic(0.0, 0.0, &[1, 2, 4, 8]);
        let usl = fit_usl(&points).unwrap();
        let amdahl = fit_amdahl(&points).unwrap();
        assert!(usl.sigma.abs() < 1e-9 && usl.kappa.abs() < 1e-9, "{usl:?}");
        assert!(amdahl.sigma.abs() < 1e-9 && amdahl.ceiling().is_none());
        assert!(usl.r2 > 0.9999 && amdahl.r2 > 0.9999);
        assert!(usl.peak().is_none());
        assert_eq!(choose_law(&usl, &amdahl, &points), Law::Linear);
        assert!(meaning(Law::Linear, &usl, &amdahl, 8).starts_with("linear:"));
    }

    #[test]
    fn retrograde_data_chooses_the_usl_and_names_the_peak() {
        // pgbench as measured by hand (issue 11): 1809, 3106, 5563, 4528 tps.
        let tps = [(1, 1809.0), (2, 3106.0), (4, 5563.0), (8, 4528.0)];
        let points = measured(&tps.map(|(n, x)| (n, x / 1809.0)));
        let usl = fit_usl(&points).unwrap();
        let amdahl = fit_amdahl(&points).unwrap();
        assert_eq!(choose_law(&usl, &amdahl, &points), Law::Usl);
        let (peak_n, _) = usl.peak().unwrap();
        assert!((4.0..=6.5).contains(&peak_n), "{usl:?} peak {peak_n}");
        assert!(usl.r2 > amdahl.r2, "{usl:?} {amdahl:?}");
        let text = meaning(Law::Usl, &usl, &amdahl, 8);
        assert!(text.contains("coherency: past"), "{text}");
    }

    #[test]
    fn a_flat_cpu_scan_past_the_cores_clamps_sigma_and_peaks_between_2_and_4() {
        // Fixed work on 2 cores: twice as fast at 2, no faster after.
        let points = measured(&[(1, 1.0), (2, 2.0), (3, 2.0), (4, 2.0)]);
        let usl = fit_usl(&points).unwrap();
        assert_eq!(usl.sigma, 0.0, "σ clamped: {usl:?}");
        assert!(
            within_1_percent(usl.kappa, 15.0 / 184.0),
            "κ refitted alone: {usl:?}"
        );
        let (peak_n, _) = usl.peak().unwrap();
        assert!((2.0..=4.0).contains(&peak_n), "{peak_n}");
    }

    #[test]
    fn superlinear_data_clamps_both_to_zero() {
        let points = measured(&[(1, 1.0), (2, 2.2), (4, 4.6)]);
        let usl = fit_usl(&points).unwrap();
        assert_eq!((usl.sigma, usl.kappa), (0.0, 0.0));
        assert_eq!(fit_amdahl(&points).unwrap().sigma, 0.0);
    }

    #[test]
    fn noisy_data_gives_a_high_but_imperfect_r2_and_near_parameters() {
        // ±4 % deterministic noise on σ = 0.08, κ = 0.01.
        let noise = [0.0, 0.03, -0.04, 0.02, -0.03, 0.04, -0.01];
        let points: Vec<Point> = [1, 2, 4, 6, 8, 12, 16]
            .iter()
            .zip(noise)
            .map(|(&n, e)| {
                let n = f64::from(n);
                Point {
                    n,
                    capacity: usl_capacity(0.08, 0.01, n) * (1.0 + e),
                }
            })
            .collect();
        let usl = fit_usl(&points).unwrap();
        assert!(usl.r2 > 0.8 && usl.r2 < 0.999, "{usl:?}");
        assert!((0.04..0.12).contains(&usl.sigma), "{usl:?}");
        assert!((0.005..0.02).contains(&usl.kappa), "{usl:?}");
        // Measurements with no trend at all fit badly.
        let scattered = measured(&[(1, 1.0), (2, 3.0), (3, 1.2), (4, 2.8), (5, 1.1)]);
        assert!(fit_usl(&scattered).unwrap().r2 < 0.5);
    }

    #[test]
    fn throughput_falling_from_the_start_keeps_sigma_a_share_and_peaks_at_1() {
        // Each added client slows every other (pgbench on 2 branch rows, say).
        let points = measured(&[(1, 1.0), (2, 0.58), (4, 0.28), (8, 0.39)]);
        let usl = fit_usl(&points).unwrap();
        let amdahl = fit_amdahl(&points).unwrap();
        assert_eq!(usl.sigma, 1.0, "{usl:?}");
        assert!(usl.kappa > 0.0, "{usl:?}");
        assert_eq!(usl.peak().unwrap().0, 1.0);
        assert_eq!(amdahl.sigma, 1.0);
        assert_eq!(choose_law(&usl, &amdahl, &points), Law::Usl);
        let text = meaning(Law::Usl, &usl, &amdahl, 8);
        assert_eq!(
            text,
            "contention: all of the work is serial; coherency: a second worker already costs \
             more than it adds: throughput is highest at N = 1"
        );
    }

    #[test]
    fn the_constrained_fit_is_no_worse_than_any_other_point_of_the_box() {
        let cases: [&[(u32, f64)]; 4] = [
            &[(1, 1.0), (2, 2.0), (3, 2.0), (4, 2.0)],
            &[(1, 1.0), (2, 2.3), (4, 4.1), (8, 5.0)],
            &[(1, 1.0), (2, 0.58), (4, 0.28), (8, 0.39)],
            &[(1, 1.0), (2, 1.2), (4, 3.9), (8, 2.0)],
        ];
        for case in cases {
            let points = measured(case);
            let sums = Sums::of(&points);
            let usl = fit_usl(&points).unwrap();
            assert!(
                (0.0..=1.0).contains(&usl.sigma) && usl.kappa >= 0.0,
                "{usl:?}"
            );
            let best = sums.residual(usl.sigma, usl.kappa);
            for i in 0..=50 {
                for j in 0..=50 {
                    let (sigma, kappa) = (f64::from(i) / 50.0, f64::from(j) / 50.0);
                    assert!(
                        best <= sums.residual(sigma, kappa) + 1e-9,
                        "{case:?}: {usl:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn too_few_levels_give_no_fit() {
        let one_level = synthetic(0.1, 0.01, &[1, 4]);
        assert!(fit_usl(&one_level).is_none());
        assert!(fit_amdahl(&one_level).is_some());
        assert!(fit_amdahl(&synthetic(0.1, 0.0, &[1])).is_none());
    }
}
