//! Property tests of the parsers that take user files: reports (TOML and JSON), profiles,
//! `--record-samples` lines, and durations. Real files, mutated at random (bytes deleted,
//! inserted, replaced; numbers swapped for hostile ones), 10,000 cases each: nothing panics,
//! every error is one line, and whatever is accepted is shown, compared and written back
//! without a NaN or a raw control character.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::time::Duration;

use concadvise::advice::recommend;
use concadvise::analysis::findings::{analyse_ticks, RunFacts};
use concadvise::analysis::TickAnalyser;
use concadvise::machine::Machine;
use concadvise::profile::{self, ProfileSet};
use concadvise::report::assemble::{assemble, SamplingFacts, TargetFacts};
use concadvise::report::export::Format;
use concadvise::report::terminal::{self, Look};
use concadvise::report::{diff, read, Report};
use concadvise::sampler::SamplerStats;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const CASES: u32 = 10_000;

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: CASES,
        // Failures are reported in the test output; nothing is written into the source tree.
        failure_persistence: None,
        ..Config::default()
    })
}

fn fixture(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// Numbers and words a hostile file puts where a number goes.
const HOSTILE: &[&str] = &[
    "nan",
    "-nan",
    "inf",
    "-inf",
    "1e308",
    "1e400",
    "-5.0",
    "-0.0",
    "0",
    "1.5",
    "1e-300",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "2147483648",
    "\"\"",
    "\"\\u001b]0;x\\u0007\"",
    "[]",
    "{}",
    "true",
    "null",
];

/// One edit of a text: delete a range, insert a piece, or put a hostile value after an `=` or
/// a `:`.
#[derive(Debug, Clone)]
enum Edit {
    Delete { at: usize, len: usize },
    Insert { at: usize, text: String },
    Hostile { at: usize, value: usize },
}

fn edit_strategy() -> impl Strategy<Value = Edit> {
    let piece = prop_oneof![
        "[ -~]{0,8}",
        Just("\n".to_string()),
        Just("\u{1b}".to_string()),
        Just("\u{0}".to_string()),
        Just("[[threads]]\n".to_string()),
        Just("\"".to_string()),
        any::<char>().prop_map(String::from),
    ];
    prop_oneof![
        (any::<usize>(), 1usize..40).prop_map(|(at, len)| Edit::Delete { at, len }),
        (any::<usize>(), piece).prop_map(|(at, text)| Edit::Insert { at, text }),
        (any::<usize>(), 0..HOSTILE.len()).prop_map(|(at, value)| Edit::Hostile { at, value }),
    ]
}

/// The nearest char boundary at or before `at` (modulo the length).
fn boundary(text: &str, at: usize) -> usize {
    let mut at = at % (text.len() + 1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut text = text.to_string();
    for edit in edits {
        match edit {
            Edit::Delete { at, len } => {
                let start = boundary(&text, *at);
                let end = boundary(&text, start + len.min(&(text.len() - start)));
                text.replace_range(start..end.max(start), "");
            }
            Edit::Insert { at, text: piece } => {
                let at = boundary(&text, *at);
                text.insert_str(at, piece);
            }
            Edit::Hostile { at, value } => {
                // The value after the next `=` or `:`, up to the end of its line or a comma.
                let from = boundary(&text, *at);
                let Some(sign) = text[from..].find(['=', ':']).map(|i| from + i + 1) else {
                    continue;
                };
                let end = text[sign..]
                    .find(['\n', ','])
                    .map_or(text.len(), |i| sign + i);
                text.replace_range(sign..end, &format!(" {}", HOSTILE[*value]));
            }
        }
    }
    text
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec(edit_strategy(), 1..4)
}

/// No raw control character but newline in text meant for a terminal.
fn assert_printable(text: &str) {
    let raw: Vec<char> = text
        .chars()
        .filter(|c| c.is_control() && *c != '\n')
        .collect();
    assert!(raw.is_empty(), "raw control characters {raw:?}");
}

/// What `show` and `diff` do with an accepted report, and writing it back: nothing panics,
/// nothing unprintable, and the written form reads back the same.
fn use_accepted(report: &Report, other: &Report) {
    let look = Look {
        width: 80,
        color: false,
    };
    assert_printable(&terminal::render(report, look));
    let comparison = diff::compare(other, report, false);
    assert!(comparison.speedup.is_finite(), "{comparison:?}");
    assert_printable(&diff::render(&comparison, look));
    for format in [Format::Toml, Format::Json] {
        let bytes = format.exporter().serialize(report).unwrap();
        let again = read::parse(&String::from_utf8(bytes).unwrap())
            .unwrap_or_else(|e| panic!("{format:?} written, then refused: {e}"));
        assert_eq!(&again, report);
    }
}

fn reports_survive_mutation(original: &str) {
    let base = read::parse(original).unwrap();
    runner()
        .run(&edits(), |edits| {
            let text = apply(original, &edits);
            match read::parse(&text) {
                Ok(report) => use_accepted(&report, &base),
                Err(error) => prop_assert!(!error.contains('\n'), "{error}"),
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn toml_reports_never_panic_and_errors_are_one_line() {
    reports_survive_mutation(&fixture("tests/fixtures/reports/phases.toml"));
}

#[test]
fn json_reports_never_panic_and_errors_are_one_line() {
    reports_survive_mutation(&fixture("tests/fixtures/reports/phases.json"));
}

#[test]
fn profiles_never_panic_and_errors_are_one_line() {
    let original = fixture("profiles/python.toml");
    runner()
        .run(&edits(), |edits| {
            let text = apply(&original, &edits);
            match profile::parse(&text, "mutated.toml", "mutated.toml") {
                Ok(profile) => prop_assert!(!profile.name.is_empty()),
                Err(error) => prop_assert!(!error.to_string().contains('\n'), "{error}"),
            }
            Ok(())
        })
        .unwrap();
}

/// A recording replayed into a report, as the tests' fixtures are.
fn report_of(analyser: &TickAnalyser) -> Report {
    let accountant = &analyser.accountant;
    let facts = RunFacts {
        wall: Duration::from_nanos(accountant.span_ns().clamp(0.0, 1e15) as u64),
        kernel_cpu: None,
        user_fraction: None,
        runtime_override: None,
        attached: false,
    };
    let machine = Machine {
        cores: 2,
        memory_gib: 8.0,
        kernel: "6.1".into(),
        other_load_cores: None,
    };
    let profiles = ProfileSet::built_in().unwrap();
    let stats = SamplerStats {
        samples: accountant.ticks,
        ..SamplerStats::default()
    };
    let findings = analyse_ticks(analyser, stats, &facts, &machine, &profiles).unwrap();
    let profile = profiles.for_runtime(&findings.runtime.name).unwrap();
    let recommendation = recommend(&findings, profile);
    assemble(
        TargetFacts {
            mode: "run",
            command: vec!["replayed".into()],
            pid: 1,
            ending: None,
            started_at: std::time::SystemTime::UNIX_EPOCH,
            interrupted: false,
            exited: None,
        },
        SamplingFacts {
            rate_hz: 100.0,
            self_cpu_s: 0.0,
            machine,
            profile: "native (built-in)".into(),
        },
        &findings,
        &recommendation,
    )
}

fn assert_finite(value: &toml::Value) {
    match value {
        toml::Value::Float(number) => assert!(number.is_finite(), "{number}"),
        toml::Value::Table(table) => table.values().for_each(assert_finite),
        toml::Value::Array(items) => items.iter().for_each(assert_finite),
        _ => {}
    }
}

#[test]
fn recorded_samples_never_panic_and_errors_are_one_line() {
    // The first 30 ticks of two recordings: a busy thread, and threads that block.
    let lines: String = ["cpu_loop", "disk_fdatasync"]
        .iter()
        .map(|name| fixture(&format!("tests/fixtures/samples/{name}.jsonl")))
        .map(|text| {
            text.lines()
                .take(30)
                .map(|l| format!("{l}\n"))
                .collect::<String>()
        })
        .collect();
    let base = report_of(&TickAnalyser::replay(&lines).unwrap());
    runner()
        .run(&edits(), |edits| {
            let text = apply(&lines, &edits);
            match TickAnalyser::replay(&text) {
                Ok(analyser) => {
                    // Counters the kernel never gives (u64::MAX...) make absurd but finite
                    // numbers: the pipeline must not panic nor produce a NaN or an infinity.
                    let report = report_of(&analyser);
                    assert_finite(&toml::Value::try_from(&report).unwrap());
                    let look = Look {
                        width: 80,
                        color: false,
                    };
                    assert_printable(&terminal::render(&report, look));
                    assert_printable(&diff::render(&diff::compare(&base, &report, false), look));
                }
                Err(error) => prop_assert!(!error.contains('\n'), "{error}"),
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn durations_are_bounded_and_errors_are_one_line() {
    use concadvise::cli::{parse_duration, MAX_DURATION};
    let units = prop_oneof![
        Just("ns"),
        Just("ms"),
        Just("s"),
        Just("m"),
        Just("h"),
        Just("d"),
        Just("w"),
        Just("y"),
        Just("")
    ];
    let number = prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        "[0-9]{1,30}",
        "-?[0-9]{0,5}\\.?[0-9]{0,5}"
    ];
    let structured = prop::collection::vec((number, units), 1..4).prop_map(|parts| {
        parts
            .iter()
            .map(|(n, u)| format!("{n}{u}"))
            .collect::<Vec<_>>()
            .join(" ")
    });
    let text = prop_oneof![structured, any::<String>()];
    runner()
        .run(&text, |text| {
            match parse_duration(&text) {
                Ok(duration) => {
                    prop_assert!(!duration.is_zero() && duration <= MAX_DURATION, "{text:?}");
                    // What attach adds it to cannot overflow.
                    prop_assert!(std::time::Instant::now().checked_add(duration).is_some());
                }
                Err(error) => prop_assert!(!error.contains('\n'), "{error}"),
            }
            Ok(())
        })
        .unwrap();
}
