//! Facts about the machine the advice depends on: CPUs available to the program, memory, kernel.

use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};

/// The machine as the advice sees it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Machine {
    /// CPUs available to the program (affinity and cgroup quota applied).
    pub cores: usize,
    pub memory_gib: f64,
    pub kernel: String,
    /// Cores' worth of CPU that other work on the machine used during the measurement, on
    /// average (the machine's busy time from /proc/stat less the tree's and concadvise's).
    pub other_load_cores: Option<f64>,
}

/// The machine's busy and total CPU time so far, in clock ticks (the `cpu` line of /proc/stat).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuClock {
    busy_ticks: u64,
}

impl CpuClock {
    pub fn now() -> Option<CpuClock> {
        let text = std::fs::read_to_string("/proc/stat").ok()?;
        let line = text.lines().find(|line| line.starts_with("cpu "))?;
        let fields: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|f| f.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal (guest time is inside user).
        let (idle, iowait) = (*fields.get(3)?, *fields.get(4)?);
        let total: u64 = fields.iter().take(8).sum();
        Some(CpuClock {
            busy_ticks: total.saturating_sub(idle + iowait),
        })
    }

    /// CPU seconds the whole machine was busy since `earlier`.
    pub fn busy_since(&self, earlier: &CpuClock) -> f64 {
        let per_second = procfs::ticks_per_second().max(1) as f64;
        self.busy_ticks.saturating_sub(earlier.busy_ticks) as f64 / per_second
    }
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
        other_load_cores: None,
    }
}
