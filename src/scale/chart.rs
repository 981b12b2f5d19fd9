//! The speedup-against-N chart in the terminal: measured points as ●, the fitted curve in braille dots, linear speedup as ·; plain unicode, readable without colour.
//!
//! Hand-written rather than drawn with a plotting crate: textplots (the kept one) draws every
//! series in the same braille dots and tells them apart only by colour, and labels no ticks.

/// What one cell of the plot shows; later layers win (points over the curve over the ideal).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Cell {
    Empty,
    Ideal,
    /// Braille dots: bit i of the pattern is dot i+1 in Unicode's numbering.
    Curve(u8),
    Point,
}

/// The braille dot bit for sub-column `dx` (0, 1) and sub-row `dy` (0..4, top first).
fn dot_bit(dx: usize, dy: usize) -> u8 {
    const LEFT: [u8; 4] = [0x01, 0x02, 0x04, 0x40];
    const RIGHT: [u8; 4] = [0x08, 0x10, 0x20, 0x80];
    if dx == 0 {
        LEFT[dy]
    } else {
        RIGHT[dy]
    }
}

/// The columns left of the plot: a label like "12.3x" and the axis.
const LABEL_WIDTH: usize = 7;

pub struct Chart<'a> {
    /// (N, speedup) of each measured level.
    pub measured: &'a [(f64, f64)],
    /// The fitted speedup curve and its name for the legend ("USL fit").
    pub curve: Option<(&'a dyn Fn(f64) -> f64, &'a str)>,
    /// Columns available, labels included.
    pub width: usize,
    /// Rows of the plot, axes excluded.
    pub height: usize,
}

/// Maps N and speedup to the grid.
struct Scale {
    x0: f64,
    x1: f64,
    y_max: f64,
    columns: usize,
    rows: usize,
}

impl Scale {
    /// The position of `x` among `steps` evenly spaced positions from x0 to x1.
    fn step_of(&self, x: f64, steps: usize) -> usize {
        let t = ((x - self.x0) / (self.x1 - self.x0)).clamp(0.0, 1.0);
        (t * (steps - 1) as f64).round() as usize
    }

    fn x_at(&self, step: usize, steps: usize) -> f64 {
        self.x0 + (self.x1 - self.x0) * step as f64 / (steps - 1) as f64
    }

    /// The position of `y` among `steps` rows from the top (y_max) to the bottom (0); none
    /// above the top.
    fn row_of(&self, y: f64, steps: usize) -> Option<usize> {
        if !y.is_finite() || y > self.y_max {
            return None;
        }
        let t = (1.0 - y.max(0.0) / self.y_max).clamp(0.0, 1.0);
        Some((t * (steps - 1) as f64).round() as usize)
    }
}

impl Chart<'_> {
    /// The chart's lines, none wider than `width` (a plot at least 20 cells wide).
    pub fn render(&self) -> Vec<String> {
        let columns = self.width.saturating_sub(LABEL_WIDTH + 1).clamp(20, 100);
        let rows = self.height.max(4);
        let x1 = self.measured.iter().map(|p| p.0).fold(1.0, f64::max);
        let x0 = self.measured.iter().map(|p| p.0).fold(x1, f64::min);
        let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
        let mut scale = Scale {
            x0,
            x1,
            y_max: 1.0,
            columns,
            rows,
        };
        let curve_top = self.curve.map_or(0.0, |(f, _)| {
            (0..columns * 2)
                .map(|s| f(scale.x_at(s, columns * 2)))
                .filter(|y| y.is_finite())
                .fold(0.0, f64::max)
        });
        let measured_top = self.measured.iter().map(|p| p.1).fold(1.0, f64::max);
        scale.y_max = measured_top.max(curve_top) * 1.1;

        let mut grid = vec![vec![Cell::Empty; columns]; rows];
        self.draw_ideal(&scale, &mut grid);
        if let Some((curve, _)) = self.curve {
            draw_curve(&scale, curve, &mut grid);
        }
        for &(n, speedup) in self.measured {
            if let Some(row) = scale.row_of(speedup, rows) {
                grid[row][scale.step_of(n, columns)] = Cell::Point;
            }
        }
        let mut lines = Vec::with_capacity(rows + 3);
        for (row, cells) in grid.iter().enumerate() {
            let labelled = row == 0 || row == rows / 2 || row == rows - 1;
            let label = if labelled {
                let y = scale.y_max * (1.0 - row as f64 / (rows - 1) as f64);
                format!("{:>5}x ┤", format_speedup(y))
            } else {
                format!("{:>6} │", "")
            };
            let body: String = cells.iter().map(|cell| cell_char(*cell)).collect();
            lines.push(format!("{label}{}", body.trim_end()));
        }
        lines.extend(self.x_axis(&scale));
        let mut legend = "       ● measured".to_string();
        if let Some((_, name)) = self.curve {
            legend.push_str(&format!("   ⠒ {name}"));
        }
        legend.push_str("   · linear (speedup = N)");
        lines.push(legend);
        lines
    }

    /// Linear speedup relative to the smallest level, where the chart has room for it.
    fn draw_ideal(&self, scale: &Scale, grid: &mut [Vec<Cell>]) {
        let base_speedup = self
            .measured
            .iter()
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map_or(1.0, |p| p.1);
        for (column, n) in (0..scale.columns).map(|c| (c, scale.x_at(c, scale.columns))) {
            if let Some(row) = scale.row_of(base_speedup * n / scale.x0, scale.rows) {
                grid[row][column] = Cell::Ideal;
            }
        }
    }

    /// The axis with a tick under each measured N, and the N written under it where it fits.
    fn x_axis(&self, scale: &Scale) -> [String; 2] {
        let mut ticks = vec!['─'; scale.columns];
        let mut labels = vec![' '; scale.columns];
        let mut free_from = 0;
        let mut levels: Vec<f64> = self.measured.iter().map(|p| p.0).collect();
        levels.sort_by(f64::total_cmp);
        for n in levels {
            let column = scale.step_of(n, scale.columns);
            ticks[column] = '┬';
            let text = format_level(n);
            // Centred under the tick, but never past the axis's end.
            let start = column
                .saturating_sub((text.len() - 1) / 2)
                .min(scale.columns.saturating_sub(text.len()));
            if start >= free_from {
                for (i, c) in text.chars().enumerate() {
                    labels[start + i] = c;
                }
                free_from = start + text.len() + 1;
            }
        }
        let ticks: String = ticks.into_iter().collect();
        let labels: String = labels.into_iter().collect();
        [
            format!("{:>6} └{ticks}", ""),
            format!("{:>6}  {}", "N", labels.trim_end()),
        ]
    }
}

/// Dots along `curve`, two per cell across and four down, each joined to the previous one.
fn draw_curve(scale: &Scale, curve: &dyn Fn(f64) -> f64, grid: &mut [Vec<Cell>]) {
    let (sub_columns, sub_rows) = (scale.columns * 2, scale.rows * 4);
    let mut previous: Option<usize> = None;
    for sub_column in 0..sub_columns {
        let y = curve(scale.x_at(sub_column, sub_columns));
        let Some(sub_row) = scale.row_of(y, sub_rows) else {
            previous = None;
            continue;
        };
        let (from, to) = match previous {
            Some(p) if p < sub_row => (p + 1, sub_row),
            Some(p) if p > sub_row => (sub_row, p - 1),
            _ => (sub_row, sub_row),
        };
        for dot_row in from..=to {
            let cell = &mut grid[dot_row / 4][sub_column / 2];
            let bit = dot_bit(sub_column % 2, dot_row % 4);
            *cell = match *cell {
                Cell::Curve(bits) => Cell::Curve(bits | bit),
                _ => Cell::Curve(bit),
            };
        }
        previous = Some(sub_row);
    }
}

fn cell_char(cell: Cell) -> char {
    match cell {
        Cell::Empty => ' ',
        Cell::Ideal => '·',
        Cell::Curve(bits) => char::from_u32(0x2800 + u32::from(bits)).unwrap_or('.'),
        Cell::Point => '●',
    }
}

/// A speedup label: "3.1", "12", "0".
fn format_speedup(y: f64) -> String {
    if y == 0.0 {
        "0".to_string()
    } else if y < 10.0 {
        format!("{y:.1}")
    } else {
        format!("{y:.0}")
    }
}

fn format_level(n: f64) -> String {
    format!("{n:.0}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usl(n: f64) -> f64 {
        n / (1.0 + 0.05 * (n - 1.0) + 0.02 * n * (n - 1.0))
    }

    fn points() -> Vec<(f64, f64)> {
        [1.0, 2.0, 4.0, 8.0, 16.0]
            .iter()
            .map(|&n| (n, usl(n)))
            .collect()
    }

    fn width_of(line: &str) -> usize {
        line.chars().count()
    }

    #[test]
    fn fits_the_width_and_needs_no_colour() {
        let measured = points();
        for width in [60, 80, 132] {
            let chart = Chart {
                measured: &measured,
                curve: Some((&usl, "USL fit")),
                width,
                height: 10,
            };
            let lines = chart.render();
            assert!(lines.iter().all(|l| width_of(l) <= width), "{lines:#?}");
            assert!(lines.iter().all(|l| !l.contains('\x1b')));
            // The axis spans the plot: the wider the terminal, the wider the chart.
            let axis = lines.iter().find(|l| l.contains('└')).unwrap();
            assert_eq!(width_of(axis), width.min(LABEL_WIDTH + 1 + 100));
        }
    }

    #[test]
    fn every_measured_point_is_a_dot_and_the_highest_is_highest() {
        let measured = points();
        let chart = Chart {
            measured: &measured,
            curve: Some((&usl, "USL fit")),
            width: 80,
            height: 12,
        };
        let lines = chart.render();
        let dots: Vec<(usize, usize)> = lines
            .iter()
            .enumerate()
            .flat_map(|(row, line)| {
                line.chars()
                    .enumerate()
                    .filter(|(_, c)| *c == '●')
                    .map(move |(column, _)| (row, column))
                    .collect::<Vec<_>>()
            })
            .filter(|&(row, _)| row < 12)
            .collect();
        assert_eq!(dots.len(), measured.len(), "{lines:#?}");
        // N = 1 sits right of the axis, N = 16 at the far right.
        let columns: Vec<usize> = {
            let mut c: Vec<usize> = dots.iter().map(|d| d.1).collect();
            c.sort_unstable();
            c
        };
        assert_eq!(columns[0], LABEL_WIDTH + 1);
        assert_eq!(columns[4], 80 - 1);
        // The peak (N = 4 or 8 for σ 0.05, κ 0.02) is the topmost dot; N = 1 the lowest.
        let top = dots.iter().min_by_key(|d| d.0).unwrap();
        let low = dots.iter().max_by_key(|d| d.0).unwrap();
        assert!(top.1 > columns[1] && top.1 < columns[4], "{lines:#?}");
        assert_eq!(low.1, columns[0]);
        // The curve is drawn in braille, the ideal in middle dots, the legend names both.
        assert!(lines
            .iter()
            .any(|l| l.chars().any(|c| ('\u{2801}'..='\u{28ff}').contains(&c))));
        assert!(lines[..12].iter().any(|l| l.contains('·')));
        assert!(lines.last().unwrap().contains("USL fit"));
        // Every level is labelled under its tick.
        let labels = &lines[lines.len() - 2];
        for n in ["1", "2", "4", "8", "16"] {
            assert!(labels.split_whitespace().any(|w| w == n), "{labels}");
        }
    }

    #[test]
    fn crowded_labels_are_skipped_not_overlapped_and_no_curve_draws_no_braille() {
        let measured: Vec<(f64, f64)> = (1..=64).map(|n| (f64::from(n), 1.0)).collect();
        let chart = Chart {
            measured: &measured,
            curve: None,
            width: 80,
            height: 6,
        };
        let lines = chart.render();
        let labels = &lines[lines.len() - 2];
        let words: Vec<u32> = labels
            .split_whitespace()
            .skip(1)
            .map(|w| w.parse().unwrap())
            .collect();
        assert!(words.len() < 64 && words.len() > 5, "{labels}");
        assert!(words.windows(2).all(|w| w[0] < w[1]), "{labels}");
        assert!(!lines
            .iter()
            .any(|l| l.chars().any(|c| ('\u{2801}'..='\u{28ff}').contains(&c))));
        assert!(!lines.last().unwrap().contains('⠒'));
    }
}
