//! `rewarm launch`: starts one rewarm process per device on this machine with the environment
//! torch.distributed's launchers set (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR,
//! MASTER_PORT), waits for all of them, and kills the rest as soon as one fails, so that no process is
//! left waiting on a collective whose peer is gone. SIGTERM or SIGINT to the launcher (Ctrl-C included:
//! the ranks sit in process groups of their own, so the terminal's signal reaches them only this way,
//! once) is passed on to every rank: they stop together after a step, with a checkpoint. Multi-node: run
//! it once per machine with the same `nnodes`, `master_addr` and `master_port` and each machine's
//! `node_rank`.

use crate::signals::{self, signal_name, Stopped, STOP_SIGNALS};
use anyhow::{bail, Context, Result};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

/// Where this machine's processes sit in the job.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    /// Processes on this machine.
    pub nproc: usize,
    pub nnodes: usize,
    pub node_rank: usize,
    pub master_addr: String,
    /// `None`: a free port (single machine only).
    pub master_port: Option<u16>,
}

impl Layout {
    /// Checks the counts and picks the port.
    fn port(&self) -> Result<u16> {
        if self.nproc == 0 || self.nnodes == 0 || self.node_rank >= self.nnodes {
            bail!(
                "--nproc {} --nnodes {} --node-rank {}: need at least one process and node, and node-rank < nnodes",
                self.nproc,
                self.nnodes,
                self.node_rank
            );
        }
        match self.master_port {
            Some(p) => Ok(p),
            None if self.nnodes == 1 => free_port(),
            None => bail!(
                "--master-port is needed with --nnodes > 1 (every machine must name the same port)"
            ),
        }
    }

    /// (global rank, environment) of each process this machine starts.
    pub fn ranks(&self, port: u16) -> Vec<(usize, Vec<(&'static str, String)>)> {
        let world = self.nproc * self.nnodes;
        (0..self.nproc)
            .map(|local| {
                let rank = self.node_rank * self.nproc + local;
                let env = vec![
                    ("RANK", rank.to_string()),
                    ("WORLD_SIZE", world.to_string()),
                    ("LOCAL_RANK", local.to_string()),
                    ("LOCAL_WORLD_SIZE", self.nproc.to_string()),
                    ("MASTER_ADDR", self.master_addr.clone()),
                    ("MASTER_PORT", port.to_string()),
                ];
                (rank, env)
            })
            .collect()
    }
}

/// Runs `program args…` once per local rank and waits for all; the first failure stops the others.
pub fn launch(layout: &Layout, program: &std::path::Path, args: &[String]) -> Result<()> {
    if args.first().map(String::as_str) != Some("train") {
        bail!("rewarm launch runs `train` in every process: `rewarm launch --nproc N -- train PLAN --run DIR`");
    }
    let port = layout.port()?;
    let arrived = Arc::new(AtomicUsize::new(0));
    for signal in STOP_SIGNALS {
        signal_hook::flag::register_usize(signal, arrived.clone(), signal as usize)?;
    }
    let mut children: Vec<(usize, Child)> = Vec::new();
    for (rank, env) in layout.ranks(port) {
        let child = Command::new(program)
            .args(args)
            .envs(env)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting rank {rank}"));
        match child {
            Ok(c) => children.push((rank, c)),
            Err(e) => {
                stop(&mut children);
                return Err(e);
            }
        }
    }
    match wait_all(&mut children, &arrived)? {
        Ended::Stopped(signal) => Err(Stopped {
            signal,
            message: format!(
                "every rank was sent {} and stopped after a step, with a checkpoint\nHINT: run the same command again to resume",
                signal_name(signal)
            ),
        }
        .into()),
        Ended::Failed(rank, status) => bail!(
            "rank {rank} failed ({status}); the other processes were stopped\nHINT: its error is printed above; run the same command again to resume from the last checkpoint"
        ),
        Ended::Done => Ok(()),
    }
}

/// How the ranks ended.
enum Ended {
    Done,
    /// A rank failed (the rest were killed).
    Failed(usize, ExitStatus),
    /// The launcher passed a stop signal on to them.
    Stopped(i32),
}

/// Waits for every child, passing on each stop signal that arrives; at the first failure (when no
/// signal was passed on) kills the rest.
fn wait_all(children: &mut Vec<(usize, Child)>, arrived: &AtomicUsize) -> Result<Ended> {
    let mut ended = Ended::Done;
    while !children.is_empty() {
        if let Some(signal) = signals::take(arrived) {
            for (_, c) in children.iter() {
                // SAFETY: kill on the pid of a child we have not reaped yet.
                unsafe { libc::kill(c.id() as i32, signal) };
            }
            ended = Ended::Stopped(signal);
        }
        let mut i = 0;
        while i < children.len() {
            match children[i].1.try_wait()? {
                Some(status) => {
                    let (rank, _) = children.remove(i);
                    if !status.success() && matches!(ended, Ended::Done) {
                        ended = Ended::Failed(rank, status);
                        stop(children);
                    }
                }
                None => i += 1,
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(ended)
}

/// Kills the remaining processes and reaps them: waiting on a collective whose peer is gone, they could
/// not finish a step to honour SIGTERM.
fn stop(children: &mut Vec<(usize, Child)>) {
    for (_, c) in children.iter_mut() {
        let _ = c.kill();
    }
    for (_, c) in children.iter_mut() {
        let _ = c.wait();
    }
    children.clear();
}

/// A port nothing listens on now (the OS picks it; rank 0's store binds it a moment later).
fn free_port() -> Result<u16> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port for the store")?;
    Ok(listener.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(nproc: usize, nnodes: usize, node_rank: usize, port: Option<u16>) -> Layout {
        Layout {
            nproc,
            nnodes,
            node_rank,
            master_addr: "10.0.0.1".into(),
            master_port: port,
        }
    }

    #[test]
    fn ranks_get_torchrun_variables_numbered_across_nodes() {
        let ranks = layout(2, 3, 1, Some(29500)).ranks(29500);
        let (rank, env) = &ranks[1];
        assert_eq!(*rank, 3);
        let get = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("RANK"), Some("3"));
        assert_eq!(get("WORLD_SIZE"), Some("6"));
        assert_eq!(get("LOCAL_RANK"), Some("1"));
        assert_eq!(get("LOCAL_WORLD_SIZE"), Some("2"));
        assert_eq!(get("MASTER_ADDR"), Some("10.0.0.1"));
        assert_eq!(get("MASTER_PORT"), Some("29500"));
    }

    #[test]
    fn bad_counts_and_a_missing_multi_node_port_are_refused() {
        assert!(layout(0, 1, 0, None).port().is_err());
        assert!(layout(1, 2, 2, Some(1)).port().is_err());
        let e = layout(1, 2, 0, None).port().unwrap_err().to_string();
        assert!(e.contains("--master-port"), "{e}");
        assert!(layout(1, 1, 0, None).port().is_ok());
    }

    #[test]
    fn a_failing_rank_stops_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let done = dir.path().join("rank0-finished");
        // Rank 1 fails at once; rank 0 would finish (and leave a file) half a minute later.
        let fake = dir.path().join("fake-rewarm");
        std::fs::write(
            &fake,
            format!(
                "#!/bin/sh\nif [ \"$RANK\" = 1 ]; then exit 3; fi\nsleep 30\ntouch {}\n",
                done.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let e = launch(&layout(2, 1, 0, None), &fake, &["sample".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("runs `train`"), "{e}");
        let e = launch(&layout(2, 1, 0, None), &fake, &["train".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("rank 1 failed"), "{e}");
        assert!(
            !done.exists(),
            "rank 0 ran to the end instead of being stopped"
        );
    }
}
