//! Fault injection for the reliability tests (docs/reliability.md). Hidden: nothing happens unless the
//! environment variable `REWARM_FAULT` is set, and no user-facing option sets it.
//!
//! `REWARM_FAULT` holds comma-separated rules `POINT[@N]=ACTION`:
//!
//! - `POINT` is one of [`POINTS`], e.g. `checkpoint:after-weights` or `eval:mid`;
//! - `N` (default 1) is which visit of that point in this process the rule fires at;
//! - `ACTION` is `kill` (the process sends itself `SIGKILL`, like `kill -9` or a pre-emption: no
//!   destructor, no flush, the lock is left behind), `stop` (the process sends itself `SIGSTOP` and
//!   carries on where it was once it gets `SIGCONT`: a test can act while it holds a run, without a race),
//!   or `enospc` / `erofs` / `eio` (this and every later visit fail as a full disk, a read-only file
//!   system or an I/O error would).
//!
//! Example: `REWARM_FAULT=checkpoint:after-weights@2=kill` dies while writing the second checkpoint.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// Every point the code visits, in the order a step visits them.
pub const POINTS: &[&str] = &[
    "step:after-update",
    "metrics:mid-line",
    "eval:mid",
    "checkpoint:begin",
    "checkpoint:after-weights",
    "checkpoint:after-optimizer",
    "checkpoint:before-done",
    "checkpoint:before-rename",
    "checkpoint:after-rename",
    "retention:mid-delete",
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Action {
    Kill,
    Stop,
    Fail(i32),
}

#[derive(Debug)]
struct Rule {
    point: String,
    at: u64,
    action: Action,
}

fn rules() -> &'static [Rule] {
    static RULES: OnceLock<Vec<Rule>> = OnceLock::new();
    RULES.get_or_init(|| match std::env::var("REWARM_FAULT") {
        Ok(spec) if !spec.trim().is_empty() => parse(&spec).unwrap_or_else(|e| {
            eprintln!("REWARM_FAULT: {e}");
            std::process::exit(2)
        }),
        _ => Vec::new(),
    })
}

fn parse(spec: &str) -> Result<Vec<Rule>, String> {
    spec.split(',')
        .map(|rule| {
            let (lhs, action) = rule
                .trim()
                .split_once('=')
                .ok_or(format!("`{rule}`: expected POINT[@N]=ACTION"))?;
            let (point, at) = match lhs.split_once('@') {
                Some((p, n)) => (p, n.parse().map_err(|_| format!("`{rule}`: bad count"))?),
                None => (lhs, 1),
            };
            if !POINTS.contains(&point) {
                return Err(format!(
                    "`{point}`: unknown point; known: {}",
                    POINTS.join(", ")
                ));
            }
            let action = match action {
                "kill" => Action::Kill,
                "stop" => Action::Stop,
                "enospc" => Action::Fail(libc::ENOSPC),
                "erofs" => Action::Fail(libc::EROFS),
                "eio" => Action::Fail(libc::EIO),
                other => {
                    return Err(format!(
                        "`{other}`: actions are kill, stop, enospc, erofs, eio"
                    ))
                }
            };
            Ok(Rule {
                point: point.to_owned(),
                at,
                action,
            })
        })
        .collect()
}

/// Visits `point`: returns an error or kills the process if a rule says so, else does nothing.
pub fn point(point: &str) -> std::io::Result<()> {
    let rules = rules();
    if rules.is_empty() {
        return Ok(());
    }
    debug_assert!(POINTS.contains(&point), "{point}");
    static VISITS: OnceLock<Mutex<HashMap<String, AtomicU64>>> = OnceLock::new();
    let visit = {
        let mut visits = VISITS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        visits
            .entry(point.to_owned())
            .or_default()
            .fetch_add(1, Ordering::SeqCst)
            + 1
    };
    for r in rules.iter().filter(|r| r.point == point) {
        match r.action {
            Action::Kill if visit == r.at => signal_self(libc::SIGKILL),
            Action::Stop if visit == r.at => signal_self(libc::SIGSTOP),
            Action::Fail(errno) if visit >= r.at => {
                return Err(std::io::Error::from_raw_os_error(errno))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether a rule names `point`.
fn armed(point: &str) -> bool {
    rules().iter().any(|r| r.point == point)
}

/// `out.write_all(bytes)`, visiting `point` halfway through when a rule names it: a torn write, as a
/// kill or a full disk in the middle of a write leaves.
pub fn write_all(out: &mut impl std::io::Write, bytes: &[u8], point: &str) -> std::io::Result<()> {
    if !armed(point) {
        return out.write_all(bytes);
    }
    let (head, tail) = bytes.split_at(bytes.len() / 2);
    out.write_all(head)?;
    self::point(point)?;
    out.write_all(tail)
}

/// Sends the process `signal`: `SIGKILL` never returns; `SIGSTOP` returns once the process is continued.
fn signal_self(signal: i32) {
    // SAFETY: a plain libc call. Neither signal can be caught.
    unsafe {
        libc::kill(libc::getpid(), signal);
    }
    if signal == libc::SIGKILL {
        loop {
            std::thread::park();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_and_unknown_points_are_refused() {
        let r = parse("checkpoint:after-weights@3=kill, eval:mid=enospc, eval:mid@2=stop").unwrap();
        assert_eq!((r[2].at, r[2].action), (2, Action::Stop));
        assert_eq!(
            (r[0].point.as_str(), r[0].at, r[0].action),
            ("checkpoint:after-weights", 3, Action::Kill)
        );
        assert_eq!((r[1].at, r[1].action), (1, Action::Fail(libc::ENOSPC)));
        assert!(parse("checkpoint:nowhere=kill")
            .unwrap_err()
            .contains("unknown point"));
        assert!(parse("eval:mid=explode").is_err());
        assert!(parse("eval:mid").is_err());
    }
}
