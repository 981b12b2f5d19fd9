//! The human summary printed on stderr after a run, and by `show`: verdict first, then where the time went.

use console::Style;

use super::{shorten, Report};
use crate::analysis::timeline::letter_name;
use crate::printable::printable;

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
/// A sampler tick held up at least this long is mentioned under the summary.
const STALL_WORTH_SAYING_S: f64 = 0.1;

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

/// Styles text when colour is on, and writes the section headings.
struct Painter {
    look: Look,
}

impl Painter {
    fn paint(&self, style: Style, text: &str) -> String {
        self.look.paint(style, text)
    }

    fn heading(&self, text: &str) -> String {
        format!("\n{}\n", self.paint(Style::new().bold(), text))
    }
}

/// The summary, section by section, top to bottom as printed.
pub fn render(report: &Report, look: Look) -> String {
    let painter = Painter { look };
    let mut out = String::new();
    out.push_str(&headline(report, &painter));
    out.push_str(&wall_bars(report, &painter));
    out.push_str(&timeline(report, &painter));
    out.push_str(&phases(report, &painter));
    out.push_str(&busiest_threads(report, &painter));
    out.push_str(&stops(report, &painter));
    out.push_str(&advice(report, &painter));
    out.push_str(&sampling_notes(report, look.width));
    out
}

/// The verdict and model, the command and how it ended, the time totals.
// Long because its lines are printed in order, one short block each; those that take more
// (where, bottleneck, devices) are functions.
fn headline(report: &Report, painter: &Painter) -> String {
    let bold = Style::new().bold();
    let verdict = &report.verdict;
    let situation = telling_situation(report);
    let mut out = format!(
        "{} {} (confidence {:.2}) -> {}{}\n",
        painter.paint(bold.clone(), "concadvise:"),
        painter.paint(bold.clone().yellow(), &printable(&verdict.class)),
        verdict.confidence,
        painter.paint(bold.green(), &printable(&report.recommendation.model)),
        if situation.is_empty() {
            String::new()
        } else {
            format!(" · {}", printable(&situation.replace('_', " ")))
        }
    );
    let target = &report.target;
    let status = target.status();
    out.push_str(&format!(
        "  {}  [{}]\n",
        shorten(
            &printable(&target.command.join(" ")),
            painter.look.width.saturating_sub(30)
        ),
        status.join(", ")
    ));
    let time = &report.time;
    out.push_str(&format!(
        "  wall {:.2} s · cpu {:.2} s (user {:.2}, sys {:.2}) · {:.2} of {} cores\n",
        time.wall_s, time.cpu_s, time.user_s, time.system_s, time.avg_cores, report.machine.cores
    ));
    if let Some(line) = structure_line(report) {
        out.push_str(&format!("  {line}\n"));
    }
    for line in where_lines(report) {
        out.push_str(&format!(
            "  {}\n",
            shorten(&line, painter.look.width.saturating_sub(2))
        ));
    }
    if let Some(line) = bottleneck_line(report) {
        out.push_str(&line);
        out.push('\n');
    }
    for line in device_lines(report) {
        out.push_str(&format!("  {line}\n"));
    }
    if verdict.too_short {
        out.push_str(&format!(
            "  {}\n",
            painter.paint(
                Style::new().yellow(),
                &format!(
                    "too short to judge reliably: {} samples in {:.2} s (see why)",
                    report.sampling.samples, time.wall_s
                )
            )
        ));
    }
    out
}

/// The situation, when it says more than the class does; else "".
fn telling_situation(report: &Report) -> &str {
    let plain = [
        "",
        "idle",
        "cpu_bound",
        "cpu_bound_free_threaded",
        "mixed",
        "io_network",
        "io_disk",
        "io_ipc",
        "paging",
    ];
    let situation = &report.recommendation.situation;
    if plain.contains(&situation.as_str()) {
        ""
    } else {
        situation.as_str()
    }
}

/// "  bottleneck: xz (pid 12, cpu), waited on 3.1 s": the process the tree waited on.
fn bottleneck_line(report: &Report) -> Option<String> {
    let bottleneck = report.bottleneck.as_ref()?;
    let name = crate::analysis::bottleneck::program_name(&bottleneck.command)
        .unwrap_or("a process outside the tree");
    let outside = bottleneck.kind == crate::analysis::bottleneck::OUTSIDE;
    let kind = if outside {
        "outside the tree, not measured"
    } else {
        bottleneck.kind.as_str()
    };
    Some(
        printable(&format!(
            "  bottleneck: {name} (pid {}, {kind}), waited on {:.1} s",
            bottleneck.pid, bottleneck.waited_on_s
        ))
        .into_owned(),
    )
}

/// "where: checksum (hotlib.py:12) · 83% of cpu, 1.94 s": the top hotspot, and the next one
/// in another function when it has at least a quarter of its time (two lines at most).
fn where_lines(report: &Report) -> Vec<String> {
    let Some(code) = &report.code else {
        return Vec::new();
    };
    let mut hotspots = code.hotspots.iter();
    let Some(first) = hotspots.next() else {
        return Vec::new();
    };
    let line = |label: &str, h: &super::HotspotSection| {
        let base = h.file.rsplit('/').next().unwrap_or(&h.file);
        let doing = match h.blocked_in.as_deref() {
            Some(kind) => format!(" ({kind})"),
            None => String::new(),
        };
        // Function and file names come from the program's memory: escaped like any data.
        printable(&format!(
            "{label} {} ({base}:{}) · {:.0}% of {}{doing}, {:.2} s",
            h.function,
            h.line,
            h.share * 100.0,
            h.state.replace('_', " "),
            h.seconds,
        ))
        .into_owned()
    };
    let mut lines = vec![line("where:", first)];
    let other_function =
        |h: &&super::HotspotSection| h.function != first.function || h.file != first.file;
    if let Some(second) = hotspots
        .find(other_function)
        .filter(|h| h.seconds >= first.seconds / 4.0)
    {
        lines.push(line("      ", second));
    }
    lines
}

/// ...and at least this share of the wall time in thread-seconds of waiting.
const DEVICE_LINE_WAIT_SHARE: f64 = 0.05;

/// Devices that held at least this share of the disk wait get a line of the headline.
const DEVICE_LINE_SHARE: f64 = 0.2;

/// "disk vda (/): busy 97% over the 2.0 s waited on it, 4.8 requests in flight (3.9 beyond
/// the program's): saturated", or, without a disk, what the filesystem is instead.
fn device_lines(report: &Report) -> Vec<String> {
    report
        .devices
        .iter()
        .filter(|d| d.disk_wait_share >= DEVICE_LINE_SHARE)
        // A disk the program hardly waited on says nothing about the run.
        .filter(|d| d.wait_s >= DEVICE_LINE_WAIT_SHARE * report.time.wall_s)
        .take(2)
        .filter_map(|device| {
            let mounts = device.mounts.join(", ");
            let mounts = printable(&mounts);
            if let Some(why) = &device.unmeasured {
                return Some(format!("disk ({mounts}): not measured: {}", printable(why)));
            }
            let name = printable(device.device.as_deref()?);
            let (Some(busy), Some(waited)) = (device.busy_share, device.waited_s) else {
                return Some(format!(
                    "disk {name} ({mounts}): not sampled while waited on"
                ));
            };
            let in_flight = device.in_flight.unwrap_or(0.0);
            let others = (in_flight - device.own_in_flight.unwrap_or(0.0)).max(0.0);
            Some(format!(
                "disk {name} ({mounts}): busy {:.0}% over the {waited:.1} s waited on it, \
                 {in_flight:.1} requests in flight ({others:.1} beyond the program's){}",
                busy * 100.0,
                if device.saturated { ": saturated" } else { "" }
            ))
        })
        .collect()
}

/// "structure: event loop (python3 pid 123), 9.6 in flight; loop blocked 72% (sleep, cpu)".
fn structure_line(report: &Report) -> Option<String> {
    let concurrency = report.concurrency.as_ref()?;
    let wall_s = report.time.wall_s;
    let mut line = format!("structure: {}", concurrency.structure.replace('_', " "));
    if let Some(event_loop) = &concurrency.event_loop {
        let name = report
            .processes
            .iter()
            .find(|p| p.pid == event_loop.pid)
            .and_then(|p| p.command.first())
            .map_or("", |command| command.rsplit('/').next().unwrap_or(command));
        if concurrency.structure == "event_loop" {
            line.push_str(&format!(" ({name} pid {})", event_loop.pid));
        }
        line.push_str(&in_flight(concurrency.in_flight));
        // Worth a word when it is a real part of the run (the share is of the loop's busy
        // time, which is small when it mostly waits: 0.1 s of 0.5 s is 20%).
        let blocked_s = event_loop.blocked_s;
        if event_loop.blocked_share >= 0.05 && blocked_s >= 0.1 && blocked_s >= 0.05 * wall_s {
            line.push_str(&format!(
                "; loop blocked {:.0}% ({})",
                event_loop.blocked_share * 100.0,
                event_loop.blocked_by.join(", ")
            ));
        }
    } else {
        line.push_str(&in_flight(concurrency.in_flight));
    }
    Some(line)
}

/// ", 9.6 in flight"; nothing when nothing was (a server's loop whose requests wait on
/// timers, or a program that only computes): "0.0 in flight" reads as a fault.
fn in_flight(in_flight: f64) -> String {
    if in_flight >= 0.05 {
        format!(", {in_flight:.1} in flight")
    } else {
        String::new()
    }
}

/// One bar per state with a share of the wall time worth showing.
fn wall_bars(report: &Report, painter: &Painter) -> String {
    let mut out = painter.heading("where the wall time went");
    let wall_total = report.wall.total_s().max(f64::MIN_POSITIVE);
    let label_width = 11;
    let numbers_width = 16;
    let bar_width = painter
        .look
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
            "disk" | "network" | "network_fs" | "ipc" | "paging" => Style::new().cyan(),
            "lock" => Style::new().magenta(),
            _ => Style::new().blue(),
        };
        out.push_str(&format!(
            "    {name:<label_width$}{} {:>7.2} s {:>4.0}%\n",
            painter.paint(style, &format!("{bar:<bar_width$}")),
            // The wall split is scaled to the measured wall time.
            share * report.time.wall_s,
            share * 100.0
        ));
    }
    out
}

/// The one-line timeline with a legend of the letters it uses.
fn timeline(report: &Report, painter: &Painter) -> String {
    let states = printable(report.timeline.states.trim_end());
    let states = states.as_ref();
    if states.is_empty() {
        return String::new();
    }
    let width = painter.look.width.saturating_sub(16).clamp(20, 100);
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
    format!(
        "\n{}  0 s {} {:.1} s\n    {}\n",
        painter.paint(Style::new().bold(), "timeline"),
        "─".repeat(width.saturating_sub(14)),
        report.time.wall_s,
        painter.paint(
            Style::new().dim(),
            &format!("{line}  ({})", legend.join(", "))
        )
    )
}

fn phases(report: &Report, painter: &Painter) -> String {
    if report.phases.len() <= 1 {
        return String::new();
    }
    let mut out = painter.heading("phases");
    for phase in &report.phases {
        let waits = if phase.dominant_waits.is_empty() {
            String::new()
        } else {
            format!(" ({})", printable(&phase.dominant_waits.join(", ")))
        };
        out.push_str(&format!(
            "    {:>6.1}-{:<6.1}s {}{} -> {}\n",
            phase.start_s,
            phase.end_s,
            printable(&phase.class),
            waits,
            printable(&phase.model)
        ));
    }
    out
}

fn busiest_threads(report: &Report, painter: &Painter) -> String {
    let busiest: Vec<_> = report.threads.iter().take(5).collect();
    if busiest.is_empty() {
        return String::new();
    }
    let mut out = painter.heading("busiest threads");
    for thread in busiest {
        let waits: Vec<String> = thread
            .waits
            .iter()
            .map(|w| match (&w.mount, &w.filesystem) {
                (Some(mount), Some(fs)) => {
                    format!(
                        "{} {:.2} s on {} ({})",
                        printable(&w.kind),
                        w.seconds,
                        printable(mount),
                        printable(fs)
                    )
                }
                _ => format!("{} {:.2} s", printable(&w.kind), w.seconds),
            })
            .collect();
        let loop_tid = report
            .concurrency
            .as_ref()
            .and_then(|c| c.event_loop.as_ref())
            .map(|l| l.tid);
        let name = if loop_tid == Some(thread.tid) {
            format!("{} (loop)", shorten(&printable(&thread.name), 9))
        } else {
            shorten(&printable(&thread.name), 16)
        };
        out.push_str(&format!(
            "    {:>7} {:<16} cpu {:.2} s{}{}\n",
            thread.tid,
            name,
            thread.cpu_s,
            if waits.is_empty() { "" } else { " · " },
            waits.join(" · ")
        ));
    }
    out
}

/// Who stopped the program (a debugger, a job-control signal, a frozen cgroup).
fn stops(report: &Report, painter: &Painter) -> String {
    if report.stops.is_empty() {
        return String::new();
    }
    let mut out = painter.heading("stopped by");
    for stop in &report.stops {
        out.push_str(&format!(
            "    {:>7.2} s  {}\n",
            stop.seconds,
            printable(&stop.describe())
        ));
    }
    out
}

/// Why, how, the alternatives and the warning.
fn advice(report: &Report, painter: &Painter) -> String {
    let recommendation = &report.recommendation;
    let width = painter.look.width;
    let mut out = painter.heading("why");
    for reason in &recommendation.reasons {
        out.push_str(&wrap(reason, width, "  - ", "    "));
    }
    if !recommendation.how.is_empty() {
        out.push_str(&painter.heading("how"));
        out.push_str(&wrap(&recommendation.how, width, "  ", "  "));
        for alternative in &recommendation.alternatives {
            out.push_str(&wrap(alternative, width, "  or: ", "      "));
        }
    }
    if let Some(line) = expected_line(report) {
        out.push_str(&wrap(&line, width, "  expected: ", "    "));
    }
    out.push_str(&painter.heading("before you change anything"));
    out.push_str(&painter.paint(
        Style::new().dim(),
        wrap(&recommendation.warning, width, "  ", "  ").trim_end(),
    ));
    out.push('\n');
    out
}

/// A duration for people: "2.51 s", "0.42 s", "16 ms", "0.3 ms".
fn seconds(value: f64) -> String {
    if value >= 0.1 {
        format!("{value:.2} s")
    } else if value >= 0.001 {
        format!("{:.0} ms", value * 1000.0)
    } else {
        format!("{:.1} ms", value * 1000.0)
    }
}

/// "2.5 s -> 0.02-0.06 s (x40-x120) with the writes grouped into fewer syncs (...)".
fn expected_line(report: &Report) -> Option<String> {
    let expected = report.recommendation.expected.as_ref()?;
    let (Some(speedup), Some(low), Some(high)) = (expected.speedup, expected.low, expected.high)
    else {
        return expected
            .unavailable
            .as_ref()
            .map(|why| format!("no estimate for {}: {why}", expected.change));
    };
    let times = |value: f64| {
        if value >= 10.0 {
            format!("x{value:.0}")
        } else {
            format!("x{value:.1}")
        }
    };
    let band = if (high - low).abs() < 0.05 * speedup {
        times(speedup)
    } else {
        format!("{}-{} (about {})", times(low), times(high), times(speedup))
    };
    let wall = report.time.wall_s;
    let mut line = match expected.measure.as_str() {
        "capacity" => format!("{band} the load it can take, with {}", expected.change),
        _ if speedup >= 1.05 => format!(
            "{} -> {}-{}, {band}, with {}",
            seconds(wall),
            seconds(wall / high),
            seconds(wall / low),
            expected.change
        ),
        _ => format!("{band}, with {}", expected.change),
    };
    line.push_str(&format!(" ({})", expected.basis));
    if high / low > 3.0 {
        line.push_str(
            "; uncertain: a longer run, or concadvise scale over a few levels, would narrow it",
        );
    }
    Some(line)
}

/// What limited the measurement itself: a lowered rate, threads not followed, late ticks.
fn sampling_notes(report: &Report, width: usize) -> String {
    let sampling = &report.sampling;
    let mut out = String::new();
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
            width,
            "  ",
            "   ",
        ));
    }
    if let Some(note) = unseen_note(sampling) {
        out.push_str(&wrap(&note, width, "  ", "   "));
    }
    let mut note = |text: String| out.push_str(&wrap(&text, width, "  ", "   "));
    if sampling.cut_short {
        note(format!(
            "(the sampler's last tick did not finish in time ({:.1} s): the report covers the \
             ticks before it)",
            sampling.longest_stall_s
        ));
    } else if sampling.longest_stall_s >= STALL_WORTH_SAYING_S {
        note(format!(
            "(the sampler was held up on {} ticks, at most {:.2} s)",
            sampling.stalled_ticks, sampling.longest_stall_s
        ));
    }
    if sampling.unresolved_files > 0 {
        let files = match sampling.unresolved_files {
            1 => "1 file".to_string(),
            n => format!("{n} files"),
        };
        note(format!(
            "({files} that concadvise would have read or stat'ed left alone: on a network or \
             FUSE mount, which it never touches, or a helper thread did not answer in time)"
        ));
    }
    if sampling.discovery == "scan" {
        note(
            "(new processes were found by scanning /proc: this kernel has no children files)"
                .into(),
        );
    }
    if sampling.late_samples > 0 {
        out.push_str(&format!(
            "  (sampler fell behind on {} of {} samples at {} Hz)\n",
            sampling.late_samples, sampling.samples, sampling.rate_hz
        ));
    }
    out
}

/// What the sampler could not see, why, and what to do about it.
fn unseen_note(sampling: &super::SamplingSection) -> Option<String> {
    let unseen = sampling.threads_unseen;
    let total = sampling.threads_seen + unseen;
    let never_followed = format!("{unseen} of {total} threads were never followed");
    if sampling.out_of_descriptors {
        let limit = match sampling.descriptor_limit {
            0 => String::new(),
            limit => format!(" (limit {limit})"),
        };
        let lost = if unseen > 0 {
            format!("{never_followed} and the waits of others could not be read")
        } else {
            "the waits of some threads could not be read".to_string()
        };
        return Some(format!(
            "(concadvise ran out of file descriptors{limit}: {lost} (counted as unknown); \
             raise the hard limit, ulimit -Hn, and measure again)"
        ));
    }
    match (unseen, sampling.unseen_cause.as_deref()) {
        (0, _) => None,
        (_, Some("permissions")) => Some(format!(
            "({never_followed}: their files were not readable; their time is missing. Measure \
             as the program's user or root)"
        )),
        _ => Some(format!(
            "({never_followed}: reading them failed; their time is missing)"
        )),
    }
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

/// Word-wraps `text` to `width` columns, the first line after `first`, the rest after `rest`.
/// Whitespace (newlines and tabs included) separates words; other control characters in a
/// word are escaped.
pub fn wrap(text: &str, width: usize, first: &str, rest: &str) -> String {
    let mut out = String::new();
    let mut line = first.to_string();
    let mut line_has_words = false;
    for word in text.split_whitespace() {
        let word = printable(word);
        if line_has_words && line.chars().count() + 1 + word.chars().count() > width {
            out.push_str(line.trim_end());
            out.push('\n');
            line = rest.to_string();
            line_has_words = false;
        }
        if line_has_words {
            line.push(' ');
        }
        line.push_str(&word);
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
    fn who_stopped_it_and_the_mounts_of_file_waits_are_shown() {
        let text = include_str!("../../tests/fixtures/reports/before_issue19.toml");
        let mut report: Report = toml::from_str(text).unwrap();
        let by = crate::sampler::observation::Stopper::Tracer {
            pid: 4242,
            name: "gdb".into(),
        };
        report.stops = vec![super::super::StopSection::new(&by, 2.0)];
        let wait = &mut report.threads[0].waits[0];
        wait.kind = "network_fs".into();
        wait.mount = Some("/mnt/data".into());
        wait.filesystem = Some("nfs4".into());
        report.sampling.unresolved_files = 1;
        let shown = render(
            &report,
            Look {
                width: 100,
                color: false,
            },
        );
        assert!(
            shown.contains("stopped by\n       2.00 s  tracer PID 4242 (gdb)\n"),
            "{shown}"
        );
        assert!(
            shown.contains("network_fs 0.29 s on /mnt/data (nfs4)"),
            "{shown}"
        );
        assert!(
            shown.contains("(1 file that concadvise would have read"),
            "{shown}"
        );
    }

    #[test]
    fn wrapping_respects_width_and_indents() {
        let text = "one two three four five six";
        let wrapped = wrap(text, 12, "- ", "  ");
        assert_eq!(wrapped, "- one two\n  three four\n  five six\n");
    }
}
