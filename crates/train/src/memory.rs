//! The check, before the model is allocated, that the plan's model and largest micro-batch fit in the
//! memory the device has free: a plan whose sizes are each in range but whose product is huge ends with
//! an error naming the sizes, not with an allocator's panic or the OOM killer.

use crate::backend::dist::World;
use crate::error::{TrainError, TrainResult};
use rewarm_arch::{gib, TrainingMemory};
use rewarm_plan::Plan;
use tch::Device;

/// Refuses a plan whose training needs at least more than the memory free for it: on the CPU what the
/// kernel says is available (within this process's cgroup limit), shared by the processes on this
/// machine; on a GPU what cudaMemGetInfo says is free. Where the free memory cannot be read, nothing is
/// checked.
pub fn check_fits(plan: &Plan, device: Device, world: Option<&World>) -> TrainResult<()> {
    let (micro, processes) = largest_micro_batch(plan, world);
    let recompute = plan.config.train.activation_checkpointing;
    let need = TrainingMemory::at_least(&plan.model, micro, plan.seq_len as u64, recompute);
    let Some((free, what)) = free_memory(device) else {
        return Ok(());
    };
    let total = need.total().saturating_mul(processes);
    if total <= free {
        return Ok(());
    }
    let m = &plan.model;
    let share = if processes > 1 {
        format!(" for each of {processes} processes on this machine")
    } else {
        String::new()
    };
    Err(TrainError::Config(format!(
        "the model ({} parameters: {} layers, hidden {}, MLP {}, vocabulary {}) trained on micro-batches of {micro} sequences × {} tokens needs at least {}{share}, but {device:?} has {} {what}\nHINT: lower train.micro_batch_sequences (gradients accumulate, the batch stays), set train.activation_checkpointing = true, lower max_seq_len, or the model's sizes in [model]",
        m.num_params(),
        m.num_layers,
        m.hidden_size,
        m.intermediate_size,
        m.vocab_size,
        plan.seq_len,
        need.to_text(),
        gib(free),
    )))
}

/// The most sequences one forward pass of this process holds over the whole plan, and how many processes
/// share this machine's memory.
fn largest_micro_batch(plan: &Plan, world: Option<&World>) -> (u64, u64) {
    let (ranks, local) = world.map_or((1, 1), |w| (w.size as u64, w.local_size as u64));
    let largest = plan
        .stages
        .iter()
        .map(|st| plan.step(st.first_step + st.steps - 1).batch_sequences)
        .max()
        .unwrap_or(1);
    let rows = (largest / ranks).max(1);
    (plan.micro_batch_sequences(rows), local)
}

/// Bytes free for training on `device`, and where the number comes from.
fn free_memory(device: Device) -> Option<(u64, &'static str)> {
    match device {
        Device::Cuda(index) => crate::backend::cuda::device_memory(index)
            .ok()
            .map(|(free, _)| (free, "free (cudaMemGetInfo)")),
        _ => {
            let available = meminfo_available()?;
            Some(match cgroup_room() {
                Some(room) if room < available => {
                    (room, "left under this process's cgroup memory limit")
                }
                _ => (available, "available (MemAvailable in /proc/meminfo)"),
            })
        }
    }
}

/// `MemAvailable` of /proc/meminfo, in bytes.
fn meminfo_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Bytes this process's memory cgroup may still use: its limit less the anonymous memory in it (file
/// cache, which the kernel reclaims, does not count), cgroup v2 or v1; `None` without a limit.
fn cgroup_room() -> Option<u64> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    for line in cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let (dir, limit_file, anon_keys) = if controllers.is_empty() {
            (format!("/sys/fs/cgroup{path}"), "memory.max", &["anon"][..])
        } else if controllers.split(',').any(|c| c == "memory") {
            let dir = format!("/sys/fs/cgroup/memory{path}");
            (dir, "memory.limit_in_bytes", &["total_rss", "rss"][..])
        } else {
            continue;
        };
        let Some(limit) = std::fs::read_to_string(format!("{dir}/{limit_file}"))
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
            .filter(|&l| l < 1 << 60)
        else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("{dir}/memory.stat")).unwrap_or_default();
        let anon = anon_keys.iter().find_map(|key| {
            stat.lines().find_map(|l| {
                l.strip_prefix(key)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
        });
        return Some(limit.saturating_sub(anon.unwrap_or(0)));
    }
    None
}
