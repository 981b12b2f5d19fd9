//! The diagnosis as text: a heading, one wrapped line per check (and what to do under it), and
//! whether a full measurement is possible.

use console::Style;

use super::{Check, Diagnosis, State};
use crate::report::terminal::{wrap, Look};

/// Width of the state column ("limited ") and of the name column ("open-files ").
const STATE_WIDTH: usize = 8;
const NAME_WIDTH: usize = 11;

pub fn render(diagnosis: &Diagnosis, look: Look) -> String {
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
    for check in &diagnosis.checks {
        out.push_str(&render_check(check, look));
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

/// "STATE   NAME       found..." wrapped under the name column, then "-> todo".
fn render_check(check: &Check, look: Look) -> String {
    let indent = " ".repeat(STATE_WIDTH + NAME_WIDTH);
    let lead = format!(
        "{:<STATE_WIDTH$}{:<NAME_WIDTH$}",
        check.state.word(),
        check.name
    );
    let word = check.state.word();
    let painted = if look.color {
        let style = match check.state {
            State::Ok => Style::new().green(),
            State::Limited => Style::new().yellow(),
            State::Missing => Style::new().red(),
        };
        style.force_styling(true).apply_to(word).to_string()
    } else {
        word.to_string()
    };
    // Colour only the state word, after wrapping (escape codes have no width).
    let mut out = wrap(&check.found, look.width, &lead, &indent).replacen(word, &painted, 1);
    if let Some(todo) = &check.todo {
        out.push_str(&wrap(
            &format!("-> {todo}"),
            look.width,
            &indent,
            &format!("{indent}   "),
        ));
    }
    out
}
