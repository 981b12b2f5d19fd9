//! The measured program: launched as a child (`run`) or found running (`attach`), and the signals around it.

pub mod attach;
pub mod launch;
pub mod signals;
