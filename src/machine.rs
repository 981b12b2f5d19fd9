//! Facts about the machine the advice depends on: CPUs available to the program, memory, kernel.

use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};

/// The machine as the advice sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    /// CPUs available to the program (affinity and cgroup quota applied).
    pub cores: usize,
    pub memory_gib: f64,
    pub kernel: String,
}

pub fn describe() -> Machine {
    let system = System::new_with_specifics(
        RefreshKind::nothing()
            .with_memory(MemoryRefreshKind::nothing().with_ram())
            .with_cpu(CpuRefreshKind::nothing()),
    )
    .ok();
    let logical = system.as_ref().map_or(0, |s| s.cpus().len());
    // Affinity masks and cgroup CPU quotas can offer the program fewer CPUs than the machine has.
    let available = std::thread::available_parallelism().map_or(logical, usize::from);
    let cores = match (logical, available) {
        (0, available) => available.max(1),
        (logical, available) => logical.min(available).max(1),
    };
    let memory = system.as_ref().map_or(0, System::total_memory);
    Machine {
        cores,
        memory_gib: (memory as f64 / (1u64 << 30) as f64 * 10.0).round() / 10.0,
        kernel: System::kernel_version().unwrap_or_default(),
    }
}
