//! `concadvise man`: manual pages (roff) generated from the command-line definition: concadvise(1) and one per subcommand.

use std::path::Path;

use clap::CommandFactory;
use clap_mangen::roff::{roman, Roff};
use clap_mangen::Man;

use crate::cli::{Cli, ManArgs};
use crate::error::Error;
use crate::report::write::Destination;

pub fn man(args: ManArgs) -> Result<u8, Error> {
    let mut command = Cli::command().disable_help_subcommand(true);
    // Gives subcommands their display names ("concadvise-run"), which name their pages.
    command.build();
    if let Some(dir) = &args.dir {
        return write_all(&command, dir);
    }
    let page = match &args.command {
        None => &command,
        Some(name) => command.find_subcommand(name).ok_or_else(|| {
            let names: Vec<&str> = command.get_subcommands().map(|c| c.get_name()).collect();
            Error::Usage(format!(
                "no subcommand {name:?} (pages: {})",
                names.join(", ")
            ))
        })?,
    };
    Destination::Stdout.commit(&render(page)?)?;
    Ok(0)
}

/// concadvise.1 and concadvise-SUBCOMMAND.1 into `dir`.
fn write_all(command: &clap::Command, dir: &Path) -> Result<u8, Error> {
    for page in std::iter::once(command).chain(command.get_subcommands()) {
        let name = Man::new(page.clone()).get_filename();
        let destination = Destination::prepare(&dir.join(name))?;
        destination.commit(&render(page)?)?;
    }
    Ok(0)
}

/// The page of one command: clap_mangen's sections, then the text after its help split into
/// EXAMPLES, EXIT STATUS and NOTES (clap_mangen would print it whole under EXTRA).
fn render(command: &clap::Command) -> Result<Vec<u8>, Error> {
    let failed = |e: std::io::Error| Error::Setup(format!("writing the manual page: {e}"));
    let man = Man::new(command.clone()).source(format!("concadvise {}", crate::VERSION));
    let mut page = Vec::new();
    man.render_title(&mut page).map_err(failed)?;
    man.render_name_section(&mut page).map_err(failed)?;
    man.render_synopsis_section(&mut page).map_err(failed)?;
    man.render_description_section(&mut page).map_err(failed)?;
    if command.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut page).map_err(failed)?;
    }
    if command.has_subcommands() {
        man.render_subcommands_section(&mut page).map_err(failed)?;
    }
    if let Some(after) = command.get_after_help() {
        after_help(&after.to_string())
            .to_writer(&mut page)
            .map_err(failed)?;
    }
    if command.get_version().is_some() {
        man.render_version_section(&mut page).map_err(failed)?;
    }
    Ok(page)
}

/// Paragraphs of the after-help text, each under the section its first words name; indented
/// lines (the examples) are kept as they are.
fn after_help(text: &str) -> Roff {
    let mut roff = Roff::new();
    let mut section = "";
    for paragraph in text.split("\n\n") {
        let heading = if paragraph.starts_with("Example") {
            "EXAMPLES"
        } else if paragraph.starts_with("Exit status") {
            "EXIT STATUS"
        } else if section == "EXAMPLES" || section.is_empty() {
            "NOTES"
        } else {
            section
        };
        if heading != section {
            roff.control("SH", [heading]);
            section = heading;
        } else {
            roff.control("PP", []);
        }
        let mut lines = paragraph.lines().peekable();
        // "Examples:" and "Exit status:" only repeat the heading.
        if lines.peek().is_some_and(|l| l.starts_with("Example")) {
            lines.next();
        }
        for line in lines {
            if let Some(example) = line.strip_prefix("  ") {
                roff.control("nf", []);
                roff.text([roman(example)]);
                roff.control("fi", []);
            } else {
                roff.text([roman(line.trim_start_matches("Exit status: "))]);
            }
        }
    }
    roff
}
