//! TensorBoard's view of `metrics.jsonl`: one event file, `tensorboard/events.out.tfevents.<unix
//! time>.rewarm`, holding every record's numbers as scalars, so that `tensorboard --logdir RUN_OR_SWEEP`
//! follows a run while it trains (docs/metrics.md#tensorboard).
//!
//! The file is a function of metrics.jsonl: when the log is opened (a start or a resume) it is written
//! afresh from the records kept, replacing any earlier event file, and then every record appended to the
//! log is appended to it. So a resume never shows a step twice, whatever reads the file.
//!
//! Format (TensorFlow's `event.proto`, `summary.proto` and TFRecord framing): each record is its length
//! (u64 little-endian), the masked CRC-32C of those 8 bytes, an `Event` protobuf and its masked CRC-32C.
//! The first event says the file version; each later one has a wall time, a step and a `Summary` of
//! (tag, simple value) pairs.

use crate::atomic::write_atomic;
use crate::error::{Result, RunFolderError};
use crate::records::Record;
use crate::RunDir;
use prost::Message;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// `Event` of TensorFlow's event.proto, with the two kinds of content rewarm writes.
#[derive(Clone, PartialEq, Message)]
pub struct Event {
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    #[prost(int64, tag = "2")]
    pub step: i64,
    #[prost(oneof = "What", tags = "3, 5")]
    pub what: Option<What>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum What {
    #[prost(string, tag = "3")]
    FileVersion(String),
    #[prost(message, tag = "5")]
    Summary(Summary),
}

/// `Summary` of summary.proto: scalar values only.
#[derive(Clone, PartialEq, Message)]
pub struct Summary {
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<Value>,
}

/// `Summary.Value`: a tag and its `simple_value` (a field of a oneof, so present even when 0).
#[derive(Clone, PartialEq, Message)]
pub struct Value {
    #[prost(string, tag = "1")]
    pub tag: String,
    #[prost(float, optional, tag = "2")]
    pub simple_value: Option<f32>,
}

/// What TensorBoard's readers expect as the first event.
const FILE_VERSION: &str = "brain.Event:2";

/// The event file of a run, open for appending.
pub struct EventFile {
    path: PathBuf,
    file: std::fs::File,
}

impl EventFile {
    /// Writes the run's event file afresh from `records` (removing earlier event files) and opens it for
    /// appending.
    pub fn rewrite(run: &RunDir, records: &[Record]) -> Result<Self> {
        let dir = run.tensorboard();
        std::fs::create_dir_all(&dir).map_err(|e| RunFolderError::io(&dir, e))?;
        let now = wall_time();
        let path = dir.join(format!("events.out.tfevents.{}.rewarm", now as u64));
        let mut bytes = frame(&Event {
            wall_time: now,
            step: 0,
            what: Some(What::FileVersion(FILE_VERSION.into())),
        });
        for r in records {
            bytes.extend(scalar_event(r, now).map_or_else(Vec::new, |e| frame(&e)));
        }
        write_atomic(&path, &bytes).map_err(|e| RunFolderError::io(&path, e))?;
        remove_other_event_files(&dir, &path)?;
        let file = crate::atomic::open_in_place(std::fs::OpenOptions::new().append(true), &path)?;
        Ok(EventFile { path, file })
    }

    /// Appends `record`'s scalars (nothing for a record without any).
    pub fn write(&mut self, record: &Record) -> Result<()> {
        let Some(event) = scalar_event(record, wall_time()) else {
            return Ok(());
        };
        self.file
            .write_all(&frame(&event))
            .map_err(|e| RunFolderError::io(&self.path, e))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn wall_time() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn remove_other_event_files(dir: &Path, keep: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| RunFolderError::io(dir, e))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let is_events = entry.file_name().to_string_lossy().contains("tfevents");
        if is_events && path != keep {
            std::fs::remove_file(&path).map_err(|e| RunFolderError::io(&path, e))?;
        }
    }
    Ok(())
}

/// The scalars of a record under TensorBoard tags (`train/…`, `eval/<set>/…`, `rollback/…`).
pub fn scalars(record: &Record) -> Option<(u64, Vec<(String, f64)>)> {
    let tagged = |pairs: &[(&str, f64)]| -> Vec<(String, f64)> {
        pairs.iter().map(|(t, v)| (t.to_string(), *v)).collect()
    };
    match record {
        Record::Train(t) => {
            let mut values = tagged(&[
                ("train/loss", t.loss),
                ("train/lr", t.lr),
                ("train/grad_norm", t.grad_norm),
                ("train/tokens", t.tokens as f64),
                ("train/tokens_per_second", t.tokens_per_second),
                ("train/replay_fraction", t.replay_fraction),
                ("train/spikes_skipped", t.spikes_skipped as f64),
            ]);
            if let Some(l1) = t.grad_norm_l1 {
                values.push(("train/grad_norm_l1".into(), l1));
            }
            Some((t.step, values))
        }
        Record::Eval(e) => {
            let mut values = vec![(format!("eval/{}/loss", e.set), e.loss)];
            if let Some(bpb) = e.bits_per_byte {
                values.push((format!("eval/{}/bits_per_byte", e.set), bpb));
            }
            Some((e.step, values))
        }
        Record::Rollback(r) => Some((r.step, tagged(&[("rollback/lr_scale", r.lr_scale)]))),
        Record::Representation(r) => {
            let mut values = tagged(&[
                ("representation/rank_me", r.rank_me),
                ("representation/alpha_req", r.alpha_req),
                ("representation/dormant_fraction", r.dormant_fraction),
            ]);
            for (i, l) in r.layers.iter().enumerate() {
                values.push((
                    format!("representation/layer{i}/weight_norm"),
                    l.weight_norm,
                ));
                if let Some(u) = l.update_norm {
                    values.push((format!("representation/layer{i}/update_norm"), u));
                }
            }
            Some((r.step, values))
        }
        Record::Task(t) => Some((
            t.step,
            vec![
                (format!("task/{}/acc", t.task), t.acc),
                (format!("task/{}/acc_norm", t.task), t.acc_norm),
            ],
        )),
        Record::Unknown => None,
    }
}

fn scalar_event(record: &Record, wall_time: f64) -> Option<Event> {
    let (step, values) = scalars(record)?;
    let value = values
        .into_iter()
        .map(|(tag, v)| Value {
            tag,
            simple_value: Some(v as f32),
        })
        .collect();
    Some(Event {
        wall_time,
        step: step as i64,
        what: Some(What::Summary(Summary { value })),
    })
}

/// CRC-32C, masked as TFRecord does (so that a CRC of data holding CRCs stays well distributed).
fn masked_crc(bytes: &[u8]) -> u32 {
    const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
    let c = CRC32C.checksum(bytes);
    c.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// One TFRecord: length, its masked CRC, the event, its masked CRC.
fn frame(event: &Event) -> Vec<u8> {
    let data = event.encode_to_vec();
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend(len);
    out.extend(masked_crc(&len).to_le_bytes());
    out.extend(&data);
    out.extend(masked_crc(&data).to_le_bytes());
    out
}

/// The events of an event file, each record's CRCs checked (for tests and `rewarm` itself; TensorBoard
/// has its own reader).
pub fn read_events(path: &Path) -> Result<Vec<Event>> {
    let bytes = std::fs::read(path).map_err(|e| RunFolderError::io(path, e))?;
    let bad = |what: &str| {
        RunFolderError::format(
            path,
            what.to_owned(),
            "the event file is damaged; it is rewritten from metrics.jsonl when the run resumes",
        )
    };
    let mut events = Vec::new();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let (head, tail) = rest
            .split_at_checked(12)
            .ok_or_else(|| bad("a cut record"))?;
        let len = u64::from_le_bytes(head[..8].try_into().expect("8 bytes")) as usize;
        if masked_crc(&head[..8]).to_le_bytes() != head[8..12] {
            return Err(bad("a record length whose CRC does not match"));
        }
        let (data, tail) = tail
            .split_at_checked(len)
            .ok_or_else(|| bad("a cut record"))?;
        let (crc, tail) = tail
            .split_at_checked(4)
            .ok_or_else(|| bad("a cut record"))?;
        if masked_crc(data).to_le_bytes() != crc {
            return Err(bad("a record whose CRC does not match"));
        }
        events.push(Event::decode(data).map_err(|e| bad(&e.to_string()))?);
        rest = tail;
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_masked_crc_matches_tensorflows_for_a_known_input() {
        // CRC-32C("123456789") = 0xE3069283 (the standard check value); masked (rotated right by 15,
        // plus 0xA282EAD8 mod 2³², worked out by hand in Python): 0xC78AB0E5.
        assert_eq!(masked_crc(b"123456789"), 0xc78a_b0e5);
    }

    #[test]
    fn a_zero_value_is_still_written() {
        let v = Value {
            tag: "x".into(),
            simple_value: Some(0.0),
        };
        // tag (field 1, "x") then field 2 as a 32-bit float: 0x15 and four zero bytes.
        assert_eq!(v.encode_to_vec(), [0x0a, 0x01, b'x', 0x15, 0, 0, 0, 0]);
    }
}
