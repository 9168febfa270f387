//! What machine the figures came from: CPU model, cores, kernel, isolated CPUs, `nohz_full` and the
//! frequency governor when Linux exposes them (read from `/proc` and `/sys`; absent fields are
//! `null`, never guessed).

use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub cpu_model: Option<String>,
    /// Logical CPUs this process may run on.
    pub cores: usize,
    pub kernel: Option<String>,
    /// `/sys/devices/system/cpu/isolated` (the `isolcpus=` list); empty: none isolated.
    pub isolated_cpus: Option<String>,
    /// `/sys/devices/system/cpu/nohz_full`.
    pub nohz_full: Option<String>,
    /// cpu0's `scaling_governor`.
    pub governor: Option<String>,
    /// Whether this looks like a virtual machine (`hypervisor` in the CPU flags).
    pub virtualized: Option<bool>,
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// Detects what it can.
pub fn detect() -> Machine {
    let cpuinfo = read("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        cpuinfo
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    };
    Machine {
        cpu_model: field("model name"),
        cores: qalpha_engine::runtime::available_cores().len().max(1),
        kernel: read("/proc/sys/kernel/osrelease"),
        isolated_cpus: read("/sys/devices/system/cpu/isolated"),
        nohz_full: read("/sys/devices/system/cpu/nohz_full"),
        governor: read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        virtualized: field("flags").map(|f| f.split_whitespace().any(|x| x == "hypervisor")),
    }
}
