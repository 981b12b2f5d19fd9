//! `concadvise profiles`: list the runtime profiles in force and where each came from, or print one.

use crate::cli::{ProfilesAction, ProfilesArgs};
use crate::error::Error;
use crate::printable::printable;
use crate::profile::ProfileSet;
use crate::report::write::to_stdout;

pub fn profiles(args: ProfilesArgs) -> Result<u8, Error> {
    let set = ProfileSet::load(args.profiles.as_deref())?;
    let text = match args.action {
        None => {
            let mut text = String::new();
            for profile in set.iter() {
                text.push_str(&format!(
                    "{:<10} {:<60} {}\n",
                    printable(&profile.name),
                    printable(&profile.description),
                    printable(&profile.source)
                ));
            }
            text
        }
        Some(ProfilesAction::Show { name }) => match set.get(&name) {
            Some(profile) => profile.text.clone(),
            None => {
                return Err(Error::UnknownRuntime {
                    name,
                    known: set.names().iter().map(|n| n.to_string()).collect(),
                })
            }
        },
    };
    to_stdout(text.as_bytes())?;
    Ok(0)
}
