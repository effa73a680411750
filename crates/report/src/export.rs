//! `rewarm export-metrics`: a run's `metrics.jsonl` as tables that pandas, R and spreadsheets read — one
//! table per record kind, one row per record, in the order the run wrote them — as CSV or Parquet.
//!
//! A table is typed columns ([`Cells`]): integers, floats (empty where a record has no value) and text.
//! CSV writes them with Rust's shortest round-trip number format; Parquet as INT64, DOUBLE (both
//! optional) and UTF-8 BYTE_ARRAY columns, uncompressed, one row group.

use crate::ReportError;
use parquet::basic::{LogicalType, Repetition, Type as PhysicalType};
use parquet::data_type::ByteArray;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;
use rewarm_runfolder::{
    EvalRecord, Record, RepresentationRecord, RollbackRecord, TaskRecord, TrainRecord,
};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The file format of an export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Parquet,
}

impl Format {
    fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Parquet => "parquet",
        }
    }
}

/// One column's values.
#[derive(Debug, PartialEq)]
pub enum Cells {
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
    Text(Vec<String>),
}

impl Cells {
    fn len(&self) -> usize {
        match self {
            Cells::Int(v) => v.len(),
            Cells::Float(v) => v.len(),
            Cells::Text(v) => v.len(),
        }
    }

    /// Row `i` as CSV writes it (empty for a missing value).
    fn text(&self, i: usize) -> String {
        match self {
            Cells::Int(v) => v[i].map_or(String::new(), |x| x.to_string()),
            Cells::Float(v) => v[i].map_or(String::new(), |x| x.to_string()),
            Cells::Text(v) => v[i].clone(),
        }
    }
}

#[derive(Debug, PartialEq)]
pub struct Column {
    pub name: String,
    pub cells: Cells,
}

/// One record kind's table.
#[derive(Debug, PartialEq)]
pub struct Table {
    /// The file stem: `train`, `eval`, `rollbacks`, `representation` or `tasks`.
    pub name: &'static str,
    pub columns: Vec<Column>,
}

/// A run's metrics as three tables.
#[derive(Debug, PartialEq)]
pub struct MetricsTables {
    /// step, stage, tokens, lr, loss, grad_norm, batch_sequences, replay_fraction, tokens_per_second,
    /// spikes_skipped, then `tokens:SOURCE` for every source (and `SOURCE/replay`) the run logged.
    pub train: Table,
    /// step, stage, tokens, set, loss, perplexity, bits_per_byte, eval_tokens (empty where the record
    /// has none), weights (`model`, or `ema` for `[ema]`'s average).
    pub eval: Table,
    /// step, failed_step, lr_scale.
    pub rollbacks: Table,
    /// step, stage, tokens, set, rank_me, alpha_req, dormant_fraction, then per layer i
    /// `layer{i}.weight_norm`, `layer{i}.update_norm` (empty at a process's first measurement) and
    /// `layer{i}.dormant_fraction` (`[monitor]`; no rows without it).
    pub representation: Table,
    /// step, stage, tokens, task, questions, acc, acc_norm, chance (`[eval] tasks`; no rows without it).
    pub tasks: Table,
}

impl MetricsTables {
    pub fn new(records: &[Record]) -> Self {
        let (mut train, mut eval, mut rollbacks) = (Vec::new(), Vec::new(), Vec::new());
        let (mut representation, mut tasks) = (Vec::new(), Vec::new());
        for record in records {
            match record {
                Record::Train(t) => train.push(t),
                Record::Eval(e) => eval.push(e),
                Record::Rollback(b) => rollbacks.push(b),
                Record::Representation(r) => representation.push(r),
                Record::Task(t) => tasks.push(t),
                Record::Unknown => {}
            }
        }
        MetricsTables {
            train: train_table(&train),
            eval: eval_table(&eval),
            rollbacks: rollback_table(&rollbacks),
            representation: representation_table(&representation),
            tasks: task_table(&tasks),
        }
    }

    /// Writes `train`, `eval`, `rollbacks`, `representation` and `tasks` in `format` into `out` (created
    /// if missing); returns their paths.
    pub fn write(&self, out: &Path, format: Format) -> Result<Vec<PathBuf>, ReportError> {
        let fail = |path: &Path, why: String| ReportError {
            path: path.display().to_string(),
            why,
            hint: "choose an --out folder you can write".into(),
        };
        std::fs::create_dir_all(out).map_err(|e| fail(out, e.to_string()))?;
        let mut written = Vec::new();
        for table in [
            &self.train,
            &self.eval,
            &self.rollbacks,
            &self.representation,
            &self.tasks,
        ] {
            let path = out.join(format!("{}.{}", table.name, format.extension()));
            let bytes = match format {
                Format::Csv => Ok(table.to_csv().into_bytes()),
                Format::Parquet => table.to_parquet(),
            };
            let bytes = bytes.map_err(|e| fail(&path, e.to_string()))?;
            std::fs::write(&path, bytes).map_err(|e| fail(&path, e.to_string()))?;
            written.push(path);
        }
        Ok(written)
    }
}

/// The metrics of the run folder `run` as tables.
pub fn export_metrics(run: &Path) -> Result<MetricsTables, ReportError> {
    let path = rewarm_runfolder::RunDir::new(run).metrics();
    Ok(MetricsTables::new(&rewarm_runfolder::metrics_log::read(
        &path,
    )?))
}

impl Table {
    fn rows(&self) -> usize {
        self.columns.first().map_or(0, |c| c.cells.len())
    }

    /// CSV text (RFC 4180 quoting, `\n` line ends); a table without rows has its header only.
    pub fn to_csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        let header = self.columns.iter().map(|c| c.name.as_str());
        w.write_record(header).expect("writing to memory");
        for i in 0..self.rows() {
            let row = self.columns.iter().map(|c| c.cells.text(i));
            w.write_record(row).expect("writing to memory");
        }
        String::from_utf8(w.into_inner().expect("writing to memory")).expect("CSV of UTF-8 fields")
    }

    /// A Parquet file of the table.
    pub fn to_parquet(&self) -> parquet::errors::Result<Vec<u8>> {
        let fields = self
            .columns
            .iter()
            .map(parquet_field)
            .collect::<Result<_, _>>()?;
        let schema = Type::group_type_builder(self.name)
            .with_fields(fields)
            .build()?;
        let props = Arc::new(WriterProperties::builder().build());
        let mut out = Vec::new();
        let mut writer = SerializedFileWriter::new(&mut out, Arc::new(schema), props)?;
        let mut group = writer.next_row_group()?;
        for column in &self.columns {
            let mut w = group.next_column()?.expect("one writer per schema field");
            write_cells(&mut w, &column.cells)?;
            w.close()?;
        }
        group.close()?;
        writer.close()?;
        Ok(out)
    }
}

/// A column's Parquet field: INT64 and DOUBLE optional, text a required UTF-8 string.
fn parquet_field(column: &Column) -> parquet::errors::Result<Arc<Type>> {
    let (physical, repetition, logical) = match column.cells {
        Cells::Int(_) => (PhysicalType::INT64, Repetition::OPTIONAL, None),
        Cells::Float(_) => (PhysicalType::DOUBLE, Repetition::OPTIONAL, None),
        Cells::Text(_) => (
            PhysicalType::BYTE_ARRAY,
            Repetition::REQUIRED,
            Some(LogicalType::String),
        ),
    };
    let field = Type::primitive_type_builder(&column.name, physical)
        .with_repetition(repetition)
        .with_logical_type(logical)
        .build()?;
    Ok(Arc::new(field))
}

/// Writes `cells` into a column writer of the matching type (definition level 1 = present).
fn write_cells(
    w: &mut parquet::file::writer::SerializedColumnWriter<'_>,
    cells: &Cells,
) -> parquet::errors::Result<()> {
    use parquet::data_type::{ByteArrayType, DoubleType, Int64Type};
    fn present<T: Copy>(v: &[Option<T>]) -> (Vec<T>, Vec<i16>) {
        (
            v.iter().flatten().copied().collect(),
            v.iter().map(|x| x.is_some() as i16).collect(),
        )
    }
    match cells {
        Cells::Int(v) => {
            let (values, defined) = present(v);
            w.typed::<Int64Type>()
                .write_batch(&values, Some(&defined), None)?;
        }
        Cells::Float(v) => {
            let (values, defined) = present(v);
            w.typed::<DoubleType>()
                .write_batch(&values, Some(&defined), None)?;
        }
        Cells::Text(v) => {
            let values: Vec<ByteArray> = v.iter().map(|s| ByteArray::from(s.as_str())).collect();
            w.typed::<ByteArrayType>()
                .write_batch(&values, None, None)?;
        }
    }
    Ok(())
}

fn ints<T>(name: &str, rows: &[&T], f: impl Fn(&T) -> Option<i64>) -> Column {
    let cells = Cells::Int(rows.iter().map(|r| f(r)).collect());
    Column {
        name: name.into(),
        cells,
    }
}

fn floats<T>(name: &str, rows: &[&T], f: impl Fn(&T) -> Option<f64>) -> Column {
    let cells = Cells::Float(rows.iter().map(|r| f(r)).collect());
    Column {
        name: name.into(),
        cells,
    }
}

fn texts<T>(name: &str, rows: &[&T], f: impl Fn(&T) -> String) -> Column {
    let cells = Cells::Text(rows.iter().map(|r| f(r)).collect());
    Column {
        name: name.into(),
        cells,
    }
}

fn train_table(rows: &[&TrainRecord]) -> Table {
    let sources: BTreeSet<&String> = rows
        .iter()
        .flat_map(|t| t.tokens_by_source.keys())
        .collect();
    let int = |x: u64| Some(x as i64);
    let mut columns = vec![
        ints("step", rows, |t| int(t.step)),
        texts("stage", rows, |t| t.stage.clone()),
        ints("tokens", rows, |t| int(t.tokens)),
        floats("lr", rows, |t| Some(t.lr)),
        floats("loss", rows, |t| Some(t.loss)),
        floats("grad_norm", rows, |t| Some(t.grad_norm)),
        floats("grad_norm_l1", rows, |t| t.grad_norm_l1),
        ints("batch_sequences", rows, |t| int(t.batch_sequences)),
        floats("replay_fraction", rows, |t| Some(t.replay_fraction)),
        floats("tokens_per_second", rows, |t| Some(t.tokens_per_second)),
        ints("spikes_skipped", rows, |t| int(t.spikes_skipped)),
    ];
    columns.extend(sources.iter().map(|s| {
        // 0 before a source first appears.
        ints(&format!("tokens:{s}"), rows, |t| {
            int(t.tokens_by_source.get(*s).copied().unwrap_or(0))
        })
    }));
    Table {
        name: "train",
        columns,
    }
}

fn rollback_table(rows: &[&RollbackRecord]) -> Table {
    Table {
        name: "rollbacks",
        columns: vec![
            ints("step", rows, |b| Some(b.step as i64)),
            ints("failed_step", rows, |b| Some(b.failed_step as i64)),
            floats("lr_scale", rows, |b| Some(b.lr_scale)),
        ],
    }
}

fn representation_table(rows: &[&RepresentationRecord]) -> Table {
    let layers = rows.iter().map(|r| r.layers.len()).max().unwrap_or(0);
    let mut columns = vec![
        ints("step", rows, |r| Some(r.step as i64)),
        texts("stage", rows, |r| r.stage.clone()),
        ints("tokens", rows, |r| Some(r.tokens as i64)),
        texts("set", rows, |r| r.set.clone()),
        floats("rank_me", rows, |r| Some(r.rank_me)),
        floats("alpha_req", rows, |r| Some(r.alpha_req)),
        floats("dormant_fraction", rows, |r| Some(r.dormant_fraction)),
    ];
    for i in 0..layers {
        let layer = move |r: &RepresentationRecord| r.layers.get(i).cloned();
        columns.push(floats(&format!("layer{i}.weight_norm"), rows, |r| {
            layer(r).map(|l| l.weight_norm)
        }));
        columns.push(floats(&format!("layer{i}.update_norm"), rows, |r| {
            layer(r).and_then(|l| l.update_norm)
        }));
        columns.push(floats(&format!("layer{i}.dormant_fraction"), rows, |r| {
            layer(r).map(|l| l.dormant_fraction)
        }));
    }
    Table {
        name: "representation",
        columns,
    }
}

fn task_table(rows: &[&TaskRecord]) -> Table {
    Table {
        name: "tasks",
        columns: vec![
            ints("step", rows, |t| Some(t.step as i64)),
            texts("stage", rows, |t| t.stage.clone()),
            ints("tokens", rows, |t| Some(t.tokens as i64)),
            texts("task", rows, |t| t.task.clone()),
            ints("questions", rows, |t| Some(t.questions as i64)),
            floats("acc", rows, |t| Some(t.acc)),
            floats("acc_norm", rows, |t| Some(t.acc_norm)),
            floats("chance", rows, |t| Some(t.chance)),
        ],
    }
}

fn eval_table(rows: &[&EvalRecord]) -> Table {
    Table {
        name: "eval",
        columns: vec![
            ints("step", rows, |e| Some(e.step as i64)),
            texts("stage", rows, |e| e.stage.clone()),
            ints("tokens", rows, |e| Some(e.tokens as i64)),
            texts("set", rows, |e| e.set.clone()),
            floats("loss", rows, |e| Some(e.loss)),
            floats("perplexity", rows, |e| Some(e.perplexity)),
            floats("bits_per_byte", rows, |e| e.bits_per_byte),
            ints("eval_tokens", rows, |e| e.eval_tokens.map(|n| n as i64)),
            texts("weights", rows, |e| {
                e.weights.clone().unwrap_or_else(|| "model".into())
            }),
        ],
    }
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
                grad_norm_l1: Some(12.5),
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
                weights: None,
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
        let tables = MetricsTables::new(&records);
        assert_eq!(
            tables.train.to_csv(),
            "step,stage,tokens,lr,loss,grad_norm,grad_norm_l1,batch_sequences,replay_fraction,tokens_per_second,spikes_skipped,tokens:de,tokens:en/replay\n\
             5,\"cpt, de\",96,0.001,2.5,0.75,12.5,32,0.25,9000.5,0,96,0\n\
             10,\"cpt, de\",256,0.001,2.5,0.75,12.5,32,0.25,9000.5,0,192,64\n"
        );
        assert_eq!(
            tables.eval.to_csv(),
            "step,stage,tokens,set,loss,perplexity,bits_per_byte,eval_tokens,weights\n0,\"cpt, de\",0,en,4.5,90,,128,model\n"
        );
        assert_eq!(
            tables.rollbacks.to_csv(),
            "step,failed_step,lr_scale\n5,8,0.5\n"
        );
        // Parquet holds the same rows, typed: integers, floats, text, and null where CSV is empty.
        let dir = tempfile::tempdir().unwrap();
        let written = tables.write(dir.path(), Format::Parquet).unwrap();
        let rows = |name: &str| -> Vec<String> {
            use parquet::file::reader::{FileReader, SerializedFileReader};
            let file = std::fs::File::open(dir.path().join(name)).unwrap();
            let reader = SerializedFileReader::new(file).unwrap();
            let rows = reader.get_row_iter(None).unwrap();
            rows.map(|r| r.unwrap().to_string()).collect()
        };
        assert_eq!(written.len(), 5);
        assert_eq!(
            rows("eval.parquet"),
            ["{step: 0, stage: \"cpt, de\", tokens: 0, set: \"en\", loss: 4.5, perplexity: 90.0, \
              bits_per_byte: null, eval_tokens: 128, weights: \"model\"}"]
        );
        assert_eq!(
            rows("train.parquet")[1],
            "{step: 10, stage: \"cpt, de\", tokens: 256, lr: 0.001, loss: 2.5, grad_norm: 0.75, \
             grad_norm_l1: 12.5, batch_sequences: 32, replay_fraction: 0.25, tokens_per_second: 9000.5, spikes_skipped: 0, \
             tokens:de: 192, tokens:en/replay: 64}"
        );
        assert_eq!(
            rows("rollbacks.parquet"),
            ["{step: 5, failed_step: 8, lr_scale: 0.5}"]
        );
        let empty = MetricsTables::new(&[]);
        assert_eq!(empty.rollbacks.to_csv(), "step,failed_step,lr_scale\n");
    }

    #[test]
    fn representation_records_get_a_column_per_layer_and_measure() {
        use rewarm_runfolder::LayerStats;
        let layer = |w, u| LayerStats {
            weight_norm: w,
            update_norm: u,
            dormant_fraction: 0.0,
        };
        let record = |step, u| {
            Record::Representation(RepresentationRecord {
                step,
                stage: "s".into(),
                tokens: 10 * step,
                set: "en".into(),
                rank_me: 12.5,
                alpha_req: 1.25,
                dormant_fraction: 0.5,
                layers: vec![layer(3.0, u), layer(4.0, u)],
            })
        };
        let tables = MetricsTables::new(&[record(0, None), record(10, Some(0.5))]);
        assert_eq!(
            tables.representation.to_csv(),
            "step,stage,tokens,set,rank_me,alpha_req,dormant_fraction,\
             layer0.weight_norm,layer0.update_norm,layer0.dormant_fraction,\
             layer1.weight_norm,layer1.update_norm,layer1.dormant_fraction\n\
             0,s,0,en,12.5,1.25,0.5,3,,0,4,,0\n\
             10,s,100,en,12.5,1.25,0.5,3,0.5,0,4,0.5,0\n"
        );
    }
}
