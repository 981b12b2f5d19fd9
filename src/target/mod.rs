//! The measured program: launched as a child (`run`) or found running (`attach`), the signals around it, and facts about it (its runtime, its CPU cgroup, its Python).

pub mod attach;
pub mod cgroup;
pub mod launch;
pub mod py_spy;
pub mod python;
pub mod runtime;
pub mod signals;
