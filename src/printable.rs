//! Escapes control characters in text that came from data (reports, /proc, profiles, paths) before it reaches a terminal, so no byte of it is taken as a terminal command.
//!
//! C0 controls (U+0000-U+001F, tab and newline included: data printed in one field must not
//! move the layout), DEL (U+007F) and C1 controls (U+0080-U+009F, which some terminals obey
//! like ESC sequences) are written as Rust-style escapes: `\t`, `\n`, `\r`, `\x1b`, `\u{9b}`.
//! Everything else, other scripts and emoji included, is printed as it is.

use std::borrow::Cow;
use std::fmt::Write;

/// `text` with every control character escaped (borrowed when there is none).
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x80 && c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_and_the_rest_kept() {
        assert_eq!(printable("plain café 名前"), "plain café 名前");
        assert!(matches!(printable("plain"), Cow::Borrowed(_)));
        assert_eq!(printable("\u{1b}]0;PWNED\u{7}"), "\\x1b]0;PWNED\\x07");
        assert_eq!(printable("a\tb\nc\r"), "a\\tb\\nc\\r");
        assert_eq!(printable("\u{7f}\u{9b}31m"), "\\x7f\\u{9b}31m");
        assert_eq!(printable("\0"), "\\x00");
    }
}
