//! `--metric REGEX`: the throughput a program prints, read from its output line by line (the first capture group; the last matching line wins).

use std::sync::{Arc, Mutex, PoisonError};

use regex::Regex;

/// A line longer than this is read as if it ended there (a program writing without newlines).
const MAX_LINE: usize = 64 * 1024;

/// What the output said so far.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Reading {
    #[default]
    NoMatch,
    Number(f64),
    /// The last matching line's capture, which is not a number.
    NotANumber(String),
}

/// Checks a --metric regex: it must compile and capture the number.
pub fn parse_metric(text: &str) -> Result<Regex, String> {
    let regex = Regex::new(text).map_err(|e| {
        // The regex crate's errors span lines (the pattern with a caret): keep the last one.
        let message = e.to_string();
        let last = message
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_string();
        format!("not a regular expression: {last}")
    })?;
    if regex.captures_len() < 2 {
        return Err(format!(
            "{text:?} has no capture group: put parentheses around the number, e.g. 'tps = ([0-9.]+)'"
        ));
    }
    Ok(regex)
}

/// The reading of one line: none when the regex does not match it.
pub fn read_line(regex: &Regex, line: &str) -> Option<Reading> {
    let captures = regex.captures(line)?;
    let text = captures.get(1).map_or("", |m| m.as_str()).trim();
    Some(match text.parse::<f64>() {
        Ok(value) if value.is_finite() => Reading::Number(value),
        _ => Reading::NotANumber(text.to_string()),
    })
}

/// Splits one stream (stdout or stderr) into lines and records each match in the reading
/// the streams share, so the last match of either wins.
pub struct LineScan {
    regex: Regex,
    partial: Vec<u8>,
    latest: Arc<Mutex<Reading>>,
}

impl LineScan {
    pub fn new(regex: Regex, latest: Arc<Mutex<Reading>>) -> LineScan {
        LineScan {
            regex,
            partial: Vec::new(),
            latest,
        }
    }

    pub fn feed(&mut self, mut chunk: &[u8]) {
        while let Some(end) = chunk.iter().position(|&b| b == b'\n') {
            self.partial.extend_from_slice(&chunk[..end]);
            self.line_done();
            chunk = &chunk[end + 1..];
        }
        self.partial.extend_from_slice(chunk);
        if self.partial.len() > MAX_LINE {
            self.line_done();
        }
    }

    /// The end of the stream: a last line without a newline counts too.
    pub fn finish(&mut self) {
        if !self.partial.is_empty() {
            self.line_done();
        }
    }

    fn line_done(&mut self) {
        let line = String::from_utf8_lossy(&self.partial);
        if let Some(reading) = read_line(&self.regex, line.trim_end_matches('\r')) {
            *self.latest.lock().unwrap_or_else(PoisonError::into_inner) = reading;
        }
        self.partial.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_group_of_the_last_matching_line_is_read() {
        let regex = parse_metric(r"tps = ([0-9.]+)").unwrap();
        let latest = Arc::new(Mutex::new(Reading::NoMatch));
        let mut scan = LineScan::new(regex, Arc::clone(&latest));
        // Split across reads at awkward places, with a CRLF and an unterminated last line.
        scan.feed(b"starting\ntps = 1");
        scan.feed(b"2.5 (including connections)\r\nprogress: tps = ");
        assert_eq!(*latest.lock().unwrap(), Reading::Number(12.5));
        scan.feed(b"99\nnothing here\nlatency 3 ms\ntps = 1809.25 (without)");
        assert_eq!(*latest.lock().unwrap(), Reading::Number(99.0));
        scan.finish();
        assert_eq!(*latest.lock().unwrap(), Reading::Number(1809.25));
    }

    #[test]
    fn two_streams_share_the_reading_and_non_numbers_are_reported() {
        let regex = parse_metric(r"rate: (\S+)").unwrap();
        let latest = Arc::new(Mutex::new(Reading::NoMatch));
        let mut out = LineScan::new(regex.clone(), Arc::clone(&latest));
        let mut err = LineScan::new(regex, Arc::clone(&latest));
        out.feed(b"rate: 10\n");
        err.feed(b"rate: fast\n");
        assert_eq!(*latest.lock().unwrap(), Reading::NotANumber("fast".into()));
        out.feed(b"rate: 11\n");
        assert_eq!(*latest.lock().unwrap(), Reading::Number(11.0));
        assert_eq!(
            read_line(&parse_metric("x=(.*)").unwrap(), "x=inf"),
            Some(Reading::NotANumber("inf".into()))
        );
    }

    #[test]
    fn a_regex_must_compile_and_capture() {
        assert!(parse_metric("tps = [0-9.]+")
            .unwrap_err()
            .contains("no capture group"));
        let error = parse_metric("tps = ([0-9.]+").unwrap_err();
        assert!(error.starts_with("not a regular expression"), "{error}");
        assert!(!error.contains('\n'));
    }

    #[test]
    fn an_endless_line_is_cut_and_still_read() {
        let regex = parse_metric(r"n=(\d+)").unwrap();
        let latest = Arc::new(Mutex::new(Reading::NoMatch));
        let mut scan = LineScan::new(regex, Arc::clone(&latest));
        scan.feed(b"n=7 ");
        scan.feed(&vec![b'x'; MAX_LINE + 1]);
        assert_eq!(*latest.lock().unwrap(), Reading::Number(7.0));
        assert!(scan.partial.is_empty());
    }
}
