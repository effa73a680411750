//! `rewarm export-metrics`: a run's `metrics.jsonl` as CSV tables that pandas, R and spreadsheets read —
//! one table per record kind, one row per record, in the order the run wrote them.

use crate::ReportError;
use rewarm_runfolder::{EvalRecord, Record, RollbackRecord, TrainRecord};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The CSV text of each table; a table without rows has its header only.
#[derive(Debug, PartialEq)]
pub struct MetricsCsv {
    /// `train.csv`: step, stage, tokens, lr, loss, grad_norm, batch_sequences, replay_fraction,
    /// tokens_per_second, spikes_skipped, then `tokens:SOURCE` for every source (and `SOURCE/replay`) the run logged.
    pub train: String,
    /// `eval.csv`: step, stage, tokens, set, loss, perplexity, bits_per_byte, eval_tokens (empty where
    /// the record has none).
    pub eval: String,
    /// `rollbacks.csv`: step, failed_step, lr_scale.
    pub rollbacks: String,
}

impl MetricsCsv {
    pub fn new(records: &[Record]) -> Self {
        let (mut train, mut eval, mut rollbacks) = (Vec::new(), Vec::new(), Vec::new());
        for record in records {
            match record {
                Record::Train(t) => train.push(t),
                Record::Eval(e) => eval.push(e),
                Record::Rollback(b) => rollbacks.push(b),
                Record::Unknown => {}
            }
        }
        MetricsCsv {
            train: train_table(&train),
            eval: eval_table(&eval),
            rollbacks: rollback_table(&rollbacks),
        }
    }

    /// Writes `train.csv`, `eval.csv` and `rollbacks.csv` into `out` (created if missing); returns their
    /// paths.
    pub fn write(&self, out: &Path) -> Result<Vec<PathBuf>, ReportError> {
        let fail = |path: &Path, e: std::io::Error| ReportError {
            path: path.display().to_string(),
            why: e.to_string(),
            hint: "choose an --out folder you can write".into(),
        };
        std::fs::create_dir_all(out).map_err(|e| fail(out, e))?;
        let mut written = Vec::new();
        for (name, text) in [
            ("train.csv", &self.train),
            ("eval.csv", &self.eval),
            ("rollbacks.csv", &self.rollbacks),
        ] {
            let path = out.join(name);
            std::fs::write(&path, text).map_err(|e| fail(&path, e))?;
            written.push(path);
        }
        Ok(written)
    }
}

/// The metrics of the run folder `run` as CSV tables.
pub fn export_metrics(run: &Path) -> Result<MetricsCsv, ReportError> {
    let path = rewarm_runfolder::RunDir::new(run).metrics();
    Ok(MetricsCsv::new(&rewarm_runfolder::metrics_log::read(
        &path,
    )?))
}

fn train_table(rows: &[&TrainRecord]) -> String {
    let sources: BTreeSet<&String> = rows
        .iter()
        .flat_map(|t| t.tokens_by_source.keys())
        .collect();
    let mut header: Vec<String> = [
        "step",
        "stage",
        "tokens",
        "lr",
        "loss",
        "grad_norm",
        "batch_sequences",
        "replay_fraction",
        "tokens_per_second",
        "spikes_skipped",
    ]
    .map(String::from)
    .to_vec();
    header.extend(sources.iter().map(|s| format!("tokens:{s}")));
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    table(
        &header,
        rows.iter().map(|t| {
            let mut row = vec![
                t.step.to_string(),
                t.stage.clone(),
                t.tokens.to_string(),
                t.lr.to_string(),
                t.loss.to_string(),
                t.grad_norm.to_string(),
                t.batch_sequences.to_string(),
                t.replay_fraction.to_string(),
                t.tokens_per_second.to_string(),
                t.spikes_skipped.to_string(),
            ];
            row.extend(
                sources
                    .iter()
                    .map(|s| t.tokens_by_source.get(*s).copied().unwrap_or(0).to_string()),
            );
            row
        }),
    )
}

fn rollback_table(rows: &[&RollbackRecord]) -> String {
    table(
        &["step", "failed_step", "lr_scale"],
        rows.iter().map(|b| {
            vec![
                b.step.to_string(),
                b.failed_step.to_string(),
                b.lr_scale.to_string(),
            ]
        }),
    )
}

fn eval_table(rows: &[&EvalRecord]) -> String {
    let optional = |v: Option<String>| v.unwrap_or_default();
    table(
        &[
            "step",
            "stage",
            "tokens",
            "set",
            "loss",
            "perplexity",
            "bits_per_byte",
            "eval_tokens",
        ],
        rows.iter().map(|e| {
            vec![
                e.step.to_string(),
                e.stage.clone(),
                e.tokens.to_string(),
                e.set.clone(),
                e.loss.to_string(),
                e.perplexity.to_string(),
                optional(e.bits_per_byte.map(|b| b.to_string())),
                optional(e.eval_tokens.map(|n| n.to_string())),
            ]
        }),
    )
}

/// CSV text (RFC 4180 quoting, `\n` line ends) of a header and rows.
fn table(header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header).expect("writing to memory");
    for row in rows {
        w.write_record(&row).expect("writing to memory");
    }
    String::from_utf8(w.into_inner().expect("writing to memory")).expect("CSV of UTF-8 fields")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn each_kind_becomes_a_table_with_one_row_per_record() {
        let train = |step, sources: &[(&str, u64)]| {
            Record::Train(TrainRecord {
                step,
                stage: "cpt, de".into(),
                tokens: sources.iter().map(|s| s.1).sum(),
                tokens_by_source: sources
                    .iter()
                    .map(|&(k, v)| (k.to_owned(), v))
                    .collect::<BTreeMap<_, _>>(),
                lr: 0.001,
                loss: 2.5,
                grad_norm: 0.75,
                batch_sequences: 32,
                replay_fraction: 0.25,
                tokens_per_second: 9000.5,
                spikes_skipped: 0,
            })
        };
        let records = vec![
            Record::Eval(EvalRecord {
                step: 0,
                stage: "cpt, de".into(),
                tokens: 0,
                set: "en".into(),
                loss: 4.5,
                perplexity: 90.0,
                bits_per_byte: None,
                eval_tokens: Some(128),
            }),
            train(5, &[("de", 96)]),
            train(10, &[("de", 192), ("en/replay", 64)]),
            Record::Unknown,
            Record::Rollback(RollbackRecord {
                step: 5,
                failed_step: 8,
                lr_scale: 0.5,
            }),
        ];
        let csv = MetricsCsv::new(&records);
        assert_eq!(
            csv.train,
            "step,stage,tokens,lr,loss,grad_norm,batch_sequences,replay_fraction,tokens_per_second,spikes_skipped,tokens:de,tokens:en/replay\n\
             5,\"cpt, de\",96,0.001,2.5,0.75,32,0.25,9000.5,0,96,0\n\
             10,\"cpt, de\",256,0.001,2.5,0.75,32,0.25,9000.5,0,192,64\n"
        );
        assert_eq!(
            csv.eval,
            "step,stage,tokens,set,loss,perplexity,bits_per_byte,eval_tokens\n0,\"cpt, de\",0,en,4.5,90,,128\n"
        );
        assert_eq!(csv.rollbacks, "step,failed_step,lr_scale\n5,8,0.5\n");
        let empty = MetricsCsv::new(&[]);
        assert_eq!(empty.rollbacks, "step,failed_step,lr_scale\n");
    }
}
