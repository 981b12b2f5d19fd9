//! The measured program: launched as a child (`run`) or found running (`attach`), the signals around it, and what runtime each of its processes runs.

pub mod attach;
pub mod launch;
pub mod runtime;
pub mod signals;
