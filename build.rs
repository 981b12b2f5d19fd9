//! Build script: the version string, with the git commit when built from a checkout of concadvise.
//!
//! `cargo install --path .`, a crate tarball or a wheel build outside git still build: without
//! git, or outside a checkout of this very package, the version is the package's alone.

use std::path::Path;
use std::process::Command;

fn main() {
    let version = env!("CARGO_PKG_VERSION");
    let described = match commit() {
        Some(commit) => format!("{version} ({commit})"),
        None => version.to_string(),
    };
    println!("cargo:rustc-env=CONCADVISE_VERSION={described}");
    println!("cargo:rerun-if-changed=build.rs");
}

/// The short commit of HEAD, if the package's directory is the top of a git checkout; also
/// tells cargo to run again when HEAD moves.
fn commit() -> Option<String> {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").ok()?;
    let git = |args: &[&str]| -> Option<String> {
        let output = Command::new("git")
            .args(args)
            .current_dir(&manifest_dir)
            .output()
            .ok()?;
        let text = String::from_utf8(output.stdout).ok()?;
        (output.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
    };
    // A package unpacked inside some other repository is not a checkout of concadvise.
    let top = git(&["rev-parse", "--show-toplevel"])?;
    if Path::new(&top).canonicalize().ok()? != Path::new(&manifest_dir).canonicalize().ok()? {
        return None;
    }
    let commit = git(&["rev-parse", "--short", "HEAD"])?;
    // HEAD names a branch whose ref file (or packed-refs) moves with each commit. Only files
    // that exist: cargo would rerun this script on every build for a missing one.
    let branch = git(&["symbolic-ref", "-q", "HEAD"]);
    for path in ["HEAD", "packed-refs"].into_iter().chain(branch.as_deref()) {
        if let Some(file) = git(&["rev-parse", "--git-path", path]) {
            let file = Path::new(&manifest_dir).join(file);
            if file.exists() {
                println!("cargo:rerun-if-changed={}", file.display());
            }
        }
    }
    Some(commit)
}
