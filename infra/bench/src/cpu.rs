//! Lambda's CPU share by memory size, as a CPU quota on the function's processes.
//!
//! Lambda gives a function CPU in proportion to its memory: one full vCPU at 1,769 MB (AWS's
//! documented figure), so 128 MB is about 7% of a core. The model is CFS bandwidth control:
//! per period, the processes of a function may run `period × MB / 1769`, then wait for the
//! next period. What is assumed:
//! - init runs with burst CPU, unlimited until the first `/next` (AWS's Lambda Web Adapter
//!   documentation: managed runtimes get "up to 10 seconds for function initialization with
//!   burst CPU"; the Lambda documentation itself says nothing); `--init-cpu share` limits
//!   init as invocations are, the pessimistic case;
//! - the Linux default period, 100 ms (AWS does not publish Lambda's; `--cfs-period-us`).
//!
//! cgroup v1 (`/sys/fs/cgroup/cpu/NAME/cpu.cfs_quota_us`) where the cpu controller is mounted
//! on its own, else cgroup v2 (`/sys/fs/cgroup/NAME/cpu.max`). Either needs root.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// What the model assumes, for the report.
pub const ASSUMPTIONS: &str = "CPU share = memory / 1,769 MB of one core (AWS: one vCPU at 1,769 MB), as a CFS quota \
on every thread of the function; AWS services not throttled";

/// Memory at which a function gets one full vCPU.
pub const FULL_VCPU_MB: u32 = 1769;

/// CFS's smallest quota.
const MIN_QUOTA_US: u64 = 1000;

/// One cgroup with the CPU share of `memory_mb`; removed when dropped (once no process is
/// left in it).
pub struct CpuShare {
    pub memory_mb: u32,
    pub quota_us: u64,
    pub period_us: u64,
    pub dir: PathBuf,
}

enum Hierarchy {
    V1(PathBuf),
    V2(PathBuf),
}

fn hierarchy() -> Result<Hierarchy> {
    let v1 = Path::new("/sys/fs/cgroup/cpu");
    if v1.join("cpu.cfs_quota_us").is_file() {
        return Ok(Hierarchy::V1(v1.to_owned()));
    }
    let v2 = Path::new("/sys/fs/cgroup");
    if v2.join("cgroup.controllers").is_file() {
        return Ok(Hierarchy::V2(v2.to_owned()));
    }
    bail!("no cgroup cpu controller under /sys/fs/cgroup")
}

/// The quota of `memory_mb` per `period_us`.
pub fn quota_us(memory_mb: u32, period_us: u64) -> u64 {
    (period_us * u64::from(memory_mb) / u64::from(FULL_VCPU_MB)).max(MIN_QUOTA_US)
}

impl CpuShare {
    pub fn create(memory_mb: u32, period_us: u64) -> Result<Self> {
        let name = format!("ecommerce-bench-{}-{memory_mb}mb", std::process::id());
        let quota_us = quota_us(memory_mb, period_us);
        let write = |path: PathBuf, value: String| {
            std::fs::write(&path, &value).with_context(|| format!("writing {value:?} to {}", path.display()))
        };
        let dir = match hierarchy()? {
            Hierarchy::V1(root) => {
                let dir = root.join(&name);
                std::fs::create_dir_all(&dir).with_context(|| format!("creating {} (as root?)", dir.display()))?;
                write(dir.join("cpu.cfs_period_us"), period_us.to_string())?;
                write(dir.join("cpu.cfs_quota_us"), quota_us.to_string())?;
                dir
            }
            Hierarchy::V2(root) => {
                // The cpu controller must be on for the root's children.
                write(root.join("cgroup.subtree_control"), "+cpu".into())?;
                let dir = root.join(&name);
                std::fs::create_dir_all(&dir).with_context(|| format!("creating {} (as root?)", dir.display()))?;
                write(dir.join("cpu.max"), format!("{quota_us} {period_us}"))?;
                dir
            }
        };
        Ok(Self { memory_mb, quota_us, period_us, dir })
    }

    /// What the share is, in a few words.
    pub fn describe(&self) -> String {
        format!(
            "{} MB: {:.1}% of a core ({} µs per {} µs)",
            self.memory_mb,
            100.0 * self.quota_us as f64 / self.period_us as f64,
            self.quota_us,
            self.period_us
        )
    }
}

impl Drop for CpuShare {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir(&self.dir) {
            eprintln!("bench: {} left behind: {e}", self.dir.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_is_proportional_to_memory_with_a_full_core_at_1769_mb() {
        assert_eq!(quota_us(1769, 100_000), 100_000);
        assert_eq!(quota_us(128, 100_000), 7_235);
        assert_eq!(quota_us(1024, 100_000), 57_885);
        // Never below what CFS accepts.
        assert_eq!(quota_us(128, 10_000), MIN_QUOTA_US);
    }
}
