//! The diagnosis as text: a heading, one wrapped line per check (and what to do under it), and
//! whether a full measurement is possible.

use console::Style;

use super::{Diagnosis, State};
use crate::report::terminal::{wrap, Look};

/// Width of the state column ("limited ") and of the name column ("open-files ").
const STATE_WIDTH: usize = 8;
const NAME_WIDTH: usize = 11;

pub fn render(diagnosis: &Diagnosis, look: Look) -> String {
    let paint = |state: State, text: &str| -> String {
        let style = match state {
            State::Ok => Style::new().green(),
            State::Limited => Style::new().yellow(),
            State::Missing => Style::new().red(),
        };
        if look.color {
            style.force_styling(true).apply_to(text).to_string()
        } else {
            text.to_string()
        }
    };
    let about = match &diagnosis.target {
        Some(target) => format!("PID {} ({})", target.pid, target.command.join(" ")),
        None => "your own processes".to_string(),
    };
    let mut out = wrap(
        &format!(
            "concadvise doctor: {about}, as {}",
            diagnosis.user.describe()
        ),
        look.width,
        "",
        "  ",
    );
    let indent = " ".repeat(STATE_WIDTH + NAME_WIDTH);
    for check in &diagnosis.checks {
        let lead = format!(
            "{:<STATE_WIDTH$}{:<NAME_WIDTH$}",
            check.state.word(),
            check.name
        );
        let text = wrap(&check.found, look.width, &lead, &indent);
        // Colour only the state word, after wrapping (escape codes have no width).
        out.push_str(&text.replacen(
            check.state.word(),
            &paint(check.state, check.state.word()),
            1,
        ));
        if let Some(todo) = &check.todo {
            out.push_str(&wrap(
                &format!("-> {todo}"),
                look.width,
                &indent,
                &format!("{indent}   "),
            ));
        }
    }
    let not_ok: Vec<&str> = diagnosis
        .checks
        .iter()
        .filter(|c| c.state != State::Ok)
        .map(|c| c.name)
        .collect();
    if not_ok.is_empty() {
        out.push_str("a full measurement is possible\n");
    } else {
        out.push_str(&wrap(
            &format!(
                "a measurement now would lose what these lines say: {}",
                not_ok.join(", ")
            ),
            look.width,
            "",
            "  ",
        ));
    }
    out
}
