//! Messages to the user on stderr that never fail the run: a closed stderr must not lose the program's exit code or the report.

use std::io::Write;

/// Writes `text` to stderr, ignoring errors (a closed or full stderr).
pub fn to_stderr(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(text.as_bytes());
    let _ = stderr.flush();
}

/// One line, prefixed "concadvise: ", with any control character in it escaped (messages
/// quote paths, names and file contents).
pub fn line(message: &str) {
    to_stderr(&format!(
        "concadvise: {}\n",
        crate::printable::printable(message)
    ));
}
