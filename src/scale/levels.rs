//! The concurrency levels a scan runs (`1,2,4,8`, `1..8`) and the command at each level (`{n}` replaced).

/// What `{n}` in the command stands for.
pub const PLACEHOLDER: &str = "{n}";

/// More levels than this is a typo (`1..1000`), not a scan anyone waits for.
pub const MAX_LEVELS: usize = 64;

/// Distinct levels, ascending (they run in this order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Levels(pub Vec<u32>);

/// Parses a comma-separated list of levels and inclusive ranges: `1,2,4,8`, `1..8`, `1..4,8,16`.
pub fn parse_levels(text: &str) -> Result<Levels, String> {
    let mut levels: Vec<u32> = Vec::new();
    for item in text.split(',').map(str::trim) {
        if item.is_empty() {
            return Err(format!(
                "{text:?} has an empty item: write levels like 1,2,4,8 or 1..8"
            ));
        }
        let (low, high) = match item.split_once("..") {
            Some((low, high)) => (parse_level(low, text)?, parse_level(high, text)?),
            None => {
                let level = parse_level(item, text)?;
                (level, level)
            }
        };
        if low > high {
            return Err(format!("{item} is an empty range: write {high}..{low}"));
        }
        let count = (high - low) as usize + 1;
        if levels.len() + count > MAX_LEVELS {
            return Err(format!(
                "{text:?} is more than {MAX_LEVELS} levels: pick a few, like 1,2,4,8,16,32"
            ));
        }
        for level in low..=high {
            if levels.contains(&level) {
                return Err(format!(
                    "level {level} is given twice in {text:?} (--repeat runs each level more than once)"
                ));
            }
            levels.push(level);
        }
    }
    levels.sort_unstable();
    Ok(Levels(levels))
}

fn parse_level(text: &str, whole: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(0) => Err(format!("level 0 in {whole:?}: levels start at 1")),
        Ok(level) => Ok(level),
        Err(_) => Err(format!(
            "{text:?} in {whole:?} is not a level: write whole numbers like 1,2,4,8 or 1..8"
        )),
    }
}

/// Whether any argument mentions `{n}`.
pub fn mentions_placeholder(command: &[String]) -> bool {
    command.iter().any(|arg| arg.contains(PLACEHOLDER))
}

/// The command with every `{n}` replaced by `level`.
pub fn substitute(command: &[String], level: u32) -> Vec<String> {
    let level = level.to_string();
    command
        .iter()
        .map(|arg| arg.replace(PLACEHOLDER, &level))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_ranges_sorted() {
        assert_eq!(parse_levels("1,2,4,8").unwrap().0, [1, 2, 4, 8]);
        assert_eq!(parse_levels("1..4").unwrap().0, [1, 2, 3, 4]);
        assert_eq!(parse_levels("16, 1..3 ,8").unwrap().0, [1, 2, 3, 8, 16]);
        assert_eq!(parse_levels("5..5").unwrap().0, [5]);
    }

    #[test]
    fn bad_levels_say_what_to_write() {
        let cases = [
            ("", "empty item"),
            ("1,,2", "empty item"),
            ("0,1", "levels start at 1"),
            ("1..0", "levels start at 1"),
            ("4..2", "empty range: write 2..4"),
            ("two", "not a level"),
            ("1.5", "not a level"),
            ("-1", "not a level"),
            ("1..3,2", "level 2 is given twice"),
            ("1..100", "more than 64 levels"),
        ];
        for (text, expected) in cases {
            let error = parse_levels(text).unwrap_err();
            assert!(error.contains(expected), "{text:?}: {error}");
        }
    }

    #[test]
    fn every_placeholder_is_replaced() {
        let command: Vec<String> = ["pgbench", "-c", "{n}", "--tag=run{n}of{n}", "db"]
            .map(String::from)
            .to_vec();
        assert!(mentions_placeholder(&command));
        assert_eq!(
            substitute(&command, 8),
            ["pgbench", "-c", "8", "--tag=run8of8", "db"]
        );
        assert!(!mentions_placeholder(&["ls".to_string()]));
    }
}
