//! The human summary printed on stderr after a run, and by `show`: verdict first, then where the time went.

use console::Style;

use super::Report;
use crate::analysis::timeline::letter_name;

/// How to draw: width in columns and whether to colour.
#[derive(Debug, Clone, Copy)]
pub struct Look {
    pub width: usize,
    pub color: bool,
}

impl Look {
    /// For stderr: its width when it is a terminal (at least 80), colour unless NO_COLOR,
    /// TERM=dumb, or stderr is not a terminal.
    pub fn for_stderr(color_choice: ColorChoice) -> Look {
        Look::for_term(&console::Term::stderr(), color_choice)
    }

    /// The same for stdout (`show`, `diff`).
    pub fn for_stdout(color_choice: ColorChoice) -> Look {
        Look::for_term(&console::Term::stdout(), color_choice)
    }

    fn for_term(term: &console::Term, color_choice: ColorChoice) -> Look {
        let is_tty = term.is_term();
        let width = if is_tty {
            usize::from(term.size().1).max(80)
        } else {
            80
        };
        let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = match color_choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => is_tty && !dumb && !no_color,
        };
        Look { width, color }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum ColorChoice {
    #[default]
    Auto,
    Always,
    Never,
}

/// A share of the wall smaller than this is left out of the bars.
const TRIVIAL_SHARE: f64 = 0.005;

impl Look {
    /// `text` in `style` when colouring, else as it is.
    pub fn paint(&self, style: Style, text: &str) -> String {
        if self.color {
            style.force_styling(true).apply_to(text).to_string()
        } else {
            text.to_string()
        }
    }
}

pub fn render(report: &Report, look: Look) -> String {
    let paint = |style: Style, text: &str| look.paint(style, text);
    let bold = Style::new().bold();
    let dim = Style::new().dim();
    let mut out = String::new();
    let verdict = &report.verdict;
    let recommendation = &report.recommendation;
    out.push_str(&format!(
        "{} {} (confidence {:.2}) -> {}\n",
        paint(bold.clone(), "concadvise:"),
        paint(bold.clone().yellow(), &verdict.class),
        verdict.confidence,
        paint(bold.clone().green(), &recommendation.model)
    ));
    let target = &report.target;
    let mut status = vec![target.runtime.clone()];
    match (target.exit_code, target.signal) {
        (_, Some(signal)) => status.push(format!("killed by signal {signal}")),
        (Some(code), None) => status.push(format!("exit {code}")),
        (None, None) => {}
    }
    if target.exited == Some(true) {
        status.push("exited while attached".into());
    }
    if target.interrupted {
        status.push("interrupted".into());
    }
    out.push_str(&format!(
        "  {}  [{}]\n",
        shorten(&target.command.join(" "), look.width.saturating_sub(30)),
        status.join(", ")
    ));
    let time = &report.time;
    out.push_str(&format!(
        "  wall {:.2} s · cpu {:.2} s (user {:.2}, sys {:.2}) · {:.2} of {} cores\n",
        time.wall_s, time.cpu_s, time.user_s, time.system_s, time.avg_cores, report.machine.cores
    ));

    out.push_str(&format!(
        "\n{}\n",
        paint(bold.clone(), "where the wall time went")
    ));
    let wall_total = report.wall.total_s().max(f64::MIN_POSITIVE);
    let label_width = 11;
    let numbers_width = 16;
    let bar_width = look
        .width
        .saturating_sub(4 + label_width + numbers_width)
        .clamp(10, 50);
    for (name, seconds) in report.wall.states() {
        let share = seconds / wall_total;
        if share < TRIVIAL_SHARE {
            continue;
        }
        let bar = bar(share, bar_width);
        let style = match name {
            "cpu" => Style::new().green(),
            "runqueue" => Style::new().red(),
            "disk" | "network" | "ipc" | "paging" => Style::new().cyan(),
            "lock" => Style::new().magenta(),
            _ => Style::new().blue(),
        };
        out.push_str(&format!(
            "    {name:<label_width$}{} {:>7.2} s {:>4.0}%\n",
            paint(style, &format!("{bar:<bar_width$}")),
            // The wall split is scaled to the measured wall time.
            share * time.wall_s,
            share * 100.0
        ));
    }

    let states = report.timeline.states.trim_end();
    if !states.is_empty() {
        let width = look.width.saturating_sub(16).clamp(20, 100);
        let line = resample(states, width);
        let mut legend: Vec<String> = Vec::new();
        for letter in line.chars() {
            if let Some(name) = letter_name(letter) {
                let entry = format!("{letter} {name}");
                if !legend.contains(&entry) {
                    legend.push(entry);
                }
            }
        }
        out.push_str(&format!(
            "\n{}  0 s {} {:.1} s\n    {}\n",
            paint(bold.clone(), "timeline"),
            "─".repeat(width.saturating_sub(14)),
            time.wall_s,
            paint(dim.clone(), &format!("{line}  ({})", legend.join(", ")))
        ));
    }
    if report.phases.len() > 1 {
        out.push_str(&format!("\n{}\n", paint(bold.clone(), "phases")));
        for phase in &report.phases {
            let waits = if phase.dominant_waits.is_empty() {
                String::new()
            } else {
                format!(" ({})", phase.dominant_waits.join(", "))
            };
            out.push_str(&format!(
                "    {:>6.1}-{:<6.1}s {}{} -> {}\n",
                phase.start_s, phase.end_s, phase.class, waits, phase.model
            ));
        }
    }

    let busiest: Vec<_> = report.threads.iter().take(5).collect();
    if !busiest.is_empty() {
        out.push_str(&format!("\n{}\n", paint(bold.clone(), "busiest threads")));
        for thread in busiest {
            let waits: Vec<String> = thread
                .waits
                .iter()
                .map(|w| format!("{} {:.2} s", w.kind, w.seconds))
                .collect();
            out.push_str(&format!(
                "    {:>7} {:<16} cpu {:.2} s{}{}\n",
                thread.tid,
                shorten(&thread.name, 16),
                thread.cpu_s,
                if waits.is_empty() { "" } else { " · " },
                waits.join(" · ")
            ));
        }
    }

    out.push_str(&format!("\n{}\n", paint(bold.clone(), "why")));
    for reason in &recommendation.reasons {
        out.push_str(&wrap(reason, look.width, "  - ", "    "));
    }
    if !recommendation.how.is_empty() {
        out.push_str(&format!("\n{}\n", paint(bold.clone(), "how")));
        out.push_str(&wrap(&recommendation.how, look.width, "  ", "  "));
        for alternative in &recommendation.alternatives {
            out.push_str(&wrap(alternative, look.width, "  or: ", "      "));
        }
    }
    out.push_str(&format!(
        "\n{}\n",
        paint(bold, "before you change anything")
    ));
    out.push_str(&paint(
        dim,
        wrap(&recommendation.warning, look.width, "  ", "  ").trim_end(),
    ));
    out.push('\n');
    let sampling = &report.sampling;
    if let Some(lowered) = sampling
        .lowered_to_hz
        .filter(|hz| *hz < 0.9 * sampling.rate_hz)
    {
        out.push_str(&wrap(
            &format!(
                "(sampling slowed from {} Hz to as low as {lowered:.0} Hz to keep its own CPU \
                 use under 5% of a core; {} threads seen)",
                sampling.rate_hz, sampling.threads_seen
            ),
            look.width,
            "  ",
            "   ",
        ));
    }
    if sampling.threads_untracked > 0 {
        out.push_str(&wrap(
            &format!(
                "(could not follow {} threads: concadvise ran out of file descriptors or could \
                 not read them; raise the hard limit, ulimit -Hn, and measure again)",
                sampling.threads_untracked
            ),
            look.width,
            "  ",
            "   ",
        ));
    }
    if sampling.late_samples > 0 {
        out.push_str(&format!(
            "  (sampler fell behind on {} of {} samples at {} Hz)\n",
            sampling.late_samples, sampling.samples, sampling.rate_hz
        ));
    }
    out
}

/// The timeline's letters stretched or squeezed to `width` (each cell takes the letter at its
/// middle).
fn resample(states: &str, width: usize) -> String {
    let letters: Vec<char> = states.chars().collect();
    if letters.len() <= width {
        return letters.into_iter().collect();
    }
    (0..width)
        .map(|i| letters[(i * letters.len() + letters.len() / 2) / width.max(1)])
        .collect()
}

/// A bar of eighth-blocks, `share` (0..1) of `width` cells.
fn bar(share: f64, width: usize) -> String {
    const EIGHTHS: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
    let eighths = (share.clamp(0.0, 1.0) * width as f64 * 8.0).round() as usize;
    let mut bar = "█".repeat(eighths / 8);
    if !eighths.is_multiple_of(8) {
        bar.push(EIGHTHS[eighths % 8]);
    }
    if bar.is_empty() {
        bar.push('▏');
    }
    bar
}

pub fn shorten(text: &str, max: usize) -> String {
    let max = max.max(8);
    if text.chars().count() <= max {
        return text.to_string();
    }
    let kept: String = text.chars().take(max - 1).collect();
    format!("{kept}…")
}

/// Word-wraps `text` to `width` columns, the first line after `first`, the rest after `rest`.
pub fn wrap(text: &str, width: usize, first: &str, rest: &str) -> String {
    let mut out = String::new();
    let mut line = first.to_string();
    let mut line_has_words = false;
    for word in text.split_whitespace() {
        if line_has_words && line.chars().count() + 1 + word.chars().count() > width {
            out.push_str(line.trim_end());
            out.push('\n');
            line = rest.to_string();
            line_has_words = false;
        }
        if line_has_words {
            line.push(' ');
        }
        line.push_str(word);
        line_has_words = true;
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_with_share() {
        assert_eq!(bar(1.0, 4), "████");
        assert_eq!(bar(0.5, 4), "██");
        assert_eq!(bar(0.0, 4), "▏");
    }

    #[test]
    fn wrapping_respects_width_and_indents() {
        let text = "one two three four five six";
        let wrapped = wrap(text, 12, "- ", "  ");
        assert_eq!(wrapped, "- one two\n  three four\n  five six\n");
    }
}
