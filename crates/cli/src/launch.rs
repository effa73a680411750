//! `rewarm launch`: starts one rewarm process per device on this machine with the environment
//! torch.distributed's launchers set (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR,
//! MASTER_PORT), waits for all of them, and stops the rest as soon as one fails, so that no process is
//! left waiting on a collective whose peer is gone. Multi-node: run it once per machine with the same
//! `--nnodes`, `--master-addr` and `--master-port` and each machine's `--node-rank`.

use anyhow::{bail, Context, Result};
use clap::Args;
use std::process::{Child, Command, ExitStatus};
use std::time::Duration;

#[derive(Args)]
pub struct LaunchArgs {
    /// Processes on this machine (one per GPU; on the CPU they share the cores).
    #[arg(long)]
    nproc: usize,
    /// Machines taking part.
    #[arg(long, default_value_t = 1)]
    nnodes: usize,
    /// This machine's index among them.
    #[arg(long, default_value_t = 0)]
    node_rank: usize,
    /// Address of the machine running global rank 0 (it serves the rendezvous store).
    #[arg(long, default_value = "127.0.0.1")]
    master_addr: String,
    /// Port of the rendezvous store (default: a free port, single machine only).
    #[arg(long)]
    master_port: Option<u16>,
    /// The rewarm command each process runs, after `--`: e.g. `-- train plan.toml --run runs/x`.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

pub fn launch(args: LaunchArgs) -> Result<()> {
    if args.nproc == 0 || args.nnodes == 0 || args.node_rank >= args.nnodes {
        bail!(
            "--nproc {} --nnodes {} --node-rank {}: need at least one process and node, and node-rank < nnodes",
            args.nproc,
            args.nnodes,
            args.node_rank
        );
    }
    if args.command.first().map(String::as_str) != Some("train") {
        bail!("rewarm launch runs `train` in every process: `rewarm launch --nproc N -- train PLAN --run DIR`");
    }
    let port = match args.master_port {
        Some(p) => p,
        None if args.nnodes == 1 => free_port()?,
        None => bail!(
            "--master-port is needed with --nnodes > 1 (every machine must name the same port)"
        ),
    };
    let exe = std::env::current_exe().context("locating the rewarm binary")?;
    let world = args.nproc * args.nnodes;
    let mut children: Vec<(usize, Child)> = Vec::new();
    for local in 0..args.nproc {
        let rank = args.node_rank * args.nproc + local;
        let child = Command::new(&exe)
            .args(&args.command)
            .env("RANK", rank.to_string())
            .env("WORLD_SIZE", world.to_string())
            .env("LOCAL_RANK", local.to_string())
            .env("LOCAL_WORLD_SIZE", args.nproc.to_string())
            .env("MASTER_ADDR", &args.master_addr)
            .env("MASTER_PORT", port.to_string())
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
    // Wait for all; the first failure stops the others.
    let mut failed: Option<(usize, ExitStatus)> = None;
    while !children.is_empty() {
        let mut i = 0;
        while i < children.len() {
            match children[i].1.try_wait()? {
                Some(status) => {
                    let (rank, _) = children.remove(i);
                    if !status.success() && failed.is_none() {
                        failed = Some((rank, status));
                        stop(&mut children);
                    }
                }
                None => i += 1,
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    match failed {
        Some((rank, status)) => bail!(
            "rank {rank} failed ({status}); the other processes were stopped\nHINT: its error is printed above; run the same command again to resume from the last checkpoint"
        ),
        None => Ok(()),
    }
}

/// Terminates the remaining processes (SIGTERM) and reaps them.
fn stop(children: &mut Vec<(usize, Child)>) {
    for (_, c) in children.iter_mut() {
        // SAFETY: kill on the pid of a child we have not reaped yet.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
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
