//! Reads a file the user names (a report, a profile) as text, at most `MAX_INPUT_BYTES`: a device, an endless pipe or a huge file is refused in one line instead of filling memory.

use std::io::Read;
use std::path::Path;

use crate::error::io_message as plain;

/// The largest report or profile read (64 MiB; a long run's report is a few hundred KiB).
pub const MAX_INPUT_BYTES: u64 = 64 * 1024 * 1024;

/// The file's text, or why it is not a readable text file (one line, without the path).
pub fn read_text(path: &Path) -> Result<String, String> {
    let mut file = std::fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        _ => plain(&e),
    })?;
    if file.metadata().is_ok_and(|meta| meta.is_dir()) {
        return Err("it is a directory, not a file".to_string());
    }
    let mut bytes = Vec::new();
    (&mut file)
        .take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| plain(&e))?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(format!(
            "larger than {} MiB, so not a file concadvise wrote or reads",
            MAX_INPUT_BYTES / (1024 * 1024)
        ));
    }
    String::from_utf8(bytes).map_err(|_| "not a text file (not UTF-8)".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endless_devices_and_directories_are_refused_in_one_line() {
        let error = read_text(Path::new("/dev/zero")).unwrap_err();
        assert!(error.contains("larger than 64 MiB"), "{error}");
        assert!(read_text(Path::new("/")).unwrap_err().contains("directory"));
        assert_eq!(
            read_text(Path::new("/nonexistent")).unwrap_err(),
            "no such file"
        );
    }
}
