//! A model loaded to generate from or to look at its logits (`rewarm sample`, `rewarm logits`), with the
//! rules of its folder for turning text into ids: the tokenizer, a BOS token when `tokenizer_config.json`
//! says so, and the ids that end generation. Also `rewarm export`'s tokenizer handling.

use anyhow::{bail, Context, Result};
use rewarm_data::{Tokenizer, TokenizerSpec};
use rewarm_model::generate::{generate, generate_batch, SamplingOptions};
use rewarm_model::pretrained::{self, ExportTokenizer, Source};
use rewarm_model::Model;
use std::path::{Path, PathBuf};

/// A model loaded for inference with what its folder says about encoding text.
pub struct LoadedModel {
    pub model: Model,
    _vs: tch::nn::VarStore,
    /// The path given on the command line, for messages.
    path: PathBuf,
    pub source: Source,
    /// config.json of a Hugging Face folder.
    hf_config: Option<serde_json::Value>,
}

/// Ids from a config.json field that may be a number or a list of numbers.
fn ids_in(value: &serde_json::Value) -> Vec<i64> {
    match value {
        serde_json::Value::Array(items) => items.iter().filter_map(|v| v.as_i64()).collect(),
        other => other.as_i64().into_iter().collect(),
    }
}

impl LoadedModel {
    /// The model at `path` (a Hugging Face folder, a checkpoint or a run folder) on `device`, its weights
    /// in f32.
    pub fn load(path: &Path, device: tch::Device) -> Result<Self> {
        Self::load_as(path, device, false)
    }

    /// [`Self::load`], the weights converted to bf16 when `bf16` (half the bytes to read per token).
    pub fn load_as(path: &Path, device: tch::Device, bf16: bool) -> Result<Self> {
        let (model, mut vs, source) = pretrained::load_model(path, device)?;
        if bf16 {
            vs.bfloat16();
        }
        let hf_config = match &source {
            Source::HfFolder(dir) => Some(rewarm_interop::hf::read_config(dir)?),
            _ => None,
        };
        Ok(LoadedModel {
            model,
            _vs: vs,
            path: path.to_owned(),
            source,
            hf_config,
        })
    }

    fn hf_dir(&self) -> Option<&Path> {
        match &self.source {
            Source::HfFolder(dir) => Some(dir),
            _ => None,
        }
    }

    /// `spec` (`gpt2` or a tokenizer.json) if given, else the Hugging Face folder's tokenizer.json.
    pub fn tokenizer(&self, spec: Option<&str>) -> Result<Tokenizer> {
        let spec: TokenizerSpec = match (spec, self.hf_dir()) {
            (Some(t), _) => t.parse()?,
            (None, Some(dir)) if dir.join("tokenizer.json").is_file() => {
                TokenizerSpec::HfFile(dir.join("tokenizer.json"))
            }
            _ => bail!(
                "{}: no tokenizer to encode the text with\nHINT: pass --tokenizer gpt2 or --tokenizer <tokenizer.json> (the one the data was prepared with)",
                self.path.display()
            ),
        };
        Tokenizer::load(&spec, None).context("loading the tokenizer")
    }

    /// The ids of `text` as the model reads it: the tokenizer's ordinary encoding, after [`Self::bos`].
    pub fn encode(&self, tokenizer: &Tokenizer, text: &str) -> Result<Vec<i64>> {
        let mut ids = self.bos();
        ids.extend(tokenizer.encode(text)?.into_iter().map(i64::from));
        Ok(ids)
    }

    /// The folder's BOS id when its tokenizer_config.json says `add_bos_token`, else nothing.
    fn bos(&self) -> Vec<i64> {
        let (Some(dir), Some(config)) = (self.hf_dir(), &self.hf_config) else {
            return Vec::new();
        };
        let tok_config = std::fs::read_to_string(dir.join("tokenizer_config.json")).ok();
        let tok_config: serde_json::Value = tok_config
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        if tok_config["add_bos_token"] == serde_json::Value::Bool(true) {
            ids_in(&config["bos_token_id"])
        } else {
            Vec::new()
        }
    }

    /// The ids that end generation: the tokenizer's end-of-text and the folder's `eos_token_id`.
    pub fn stop_ids(&self, tokenizer: &Tokenizer) -> Vec<i64> {
        let mut stop = vec![tokenizer.info().eot_id as i64];
        if let Some(config) = &self.hf_config {
            stop.extend(ids_in(&config["eos_token_id"]));
        }
        stop
    }
}

/// The options of `rewarm sample`.
pub struct SampleRequest<'a> {
    pub prompt: &'a str,
    pub max_tokens: usize,
    pub sampling: SamplingOptions,
    /// Keep generating after the end-of-text token.
    pub ignore_eos: bool,
}

impl LoadedModel {
    /// Continues `request.prompt`, calling `emit` with each new piece of decoded text as it is generated
    /// (an incomplete UTF-8 sequence is held back until the next token completes it); returns the number
    /// of tokens generated.
    pub fn sample(
        &self,
        tokenizer: &Tokenizer,
        request: &SampleRequest,
        mut emit: impl FnMut(&str) -> Result<()>,
    ) -> Result<usize> {
        let opts = &request.sampling;
        check_sampling(opts)?;
        let prompt = self.encode(tokenizer, request.prompt)?;
        let stop = self.stops(tokenizer, request.ignore_eos);
        let mut text = StreamedText::default();
        // One sequence decodes one position at a time: spread those products over the cores. In f32
        // only: libtorch already runs bf16's over all its threads, faster than the split (BENCHMARKS.md).
        let f32_on_cpu =
            self.model.device() == tch::Device::Cpu && self.model.kind() == tch::Kind::Float;
        let _threads = f32_on_cpu.then(rewarm_model::gemv::DecodeThreads::spread);
        let mut failure = None;
        let new = generate(
            &self.model,
            &prompt,
            request.max_tokens,
            opts,
            &stop,
            |token| {
                if failure.is_none() && !stop.contains(&token) {
                    failure = text.push(tokenizer, token as u32, &mut emit).err();
                }
            },
        )?;
        if let Some(e) = failure {
            return Err(e);
        }
        text.finish(tokenizer, &mut emit)?;
        Ok(new.len())
    }

    /// Continues every prompt of `prompts` in one batch ([`generate_batch`]), each as
    /// [`Self::sample`] would with `request`'s settings (its `prompt` is not used); returns each
    /// continuation's text and the tokens generated in all.
    pub fn sample_batch(
        &self,
        tokenizer: &Tokenizer,
        prompts: &[String],
        request: &SampleRequest,
    ) -> Result<(Vec<String>, usize)> {
        check_sampling(&request.sampling)?;
        let encoded = prompts
            .iter()
            .map(|p| self.encode(tokenizer, p))
            .collect::<Result<Vec<_>>>()?;
        let stop = self.stops(tokenizer, request.ignore_eos);
        let new = generate_batch(
            &self.model,
            &encoded,
            request.max_tokens,
            &request.sampling,
            &stop,
        )?;
        let total = new.iter().map(Vec::len).sum();
        let texts = new
            .into_iter()
            .map(|tokens| {
                let kept: Vec<u32> = tokens
                    .into_iter()
                    .filter(|t| !stop.contains(t))
                    .map(|t| t as u32)
                    .collect();
                Ok(tokenizer.decode(&kept)?)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((texts, total))
    }

    /// The ids that end generation, none with `ignore_eos`.
    fn stops(&self, tokenizer: &Tokenizer, ignore_eos: bool) -> Vec<i64> {
        match ignore_eos {
            true => Vec::new(),
            false => self.stop_ids(tokenizer),
        }
    }

    /// A multiple-choice question's summed log-probability of each choice after its context
    /// ([`crate::tasks::choice_pairs`], after the folder's BOS).
    pub fn choice_logprobs(
        &self,
        tokenizer: &Tokenizer,
        item: &crate::tasks::TaskItem,
    ) -> Result<Vec<f64>> {
        let encode = |text: &str| -> rewarm_data::Result<Vec<i64>> {
            Ok(tokenizer.encode(text)?.into_iter().map(i64::from).collect())
        };
        let pairs = crate::tasks::choice_pairs(item, &self.bos(), &encode)?;
        Ok(self.model.f_continuation_logprobs(&pairs)?)
    }

    /// The model's logits on `tokens` (ids of its vocabulary), as f32 on the host: (T·V) row-major, and
    /// the dtype the model computed them in.
    pub fn logits(&self, tokens: &[i64]) -> Result<(Vec<f32>, String)> {
        let v = self.model.config().vocab_size;
        if tokens.is_empty() {
            bail!("no tokens to run the model on\nHINT: give a non-empty --text or --ids");
        }
        if let Some((t, id)) = tokens
            .iter()
            .enumerate()
            .find(|(_, &id)| !(0..v as i64).contains(&id))
        {
            bail!(
                "token {id} at position {t} is outside the model's vocabulary (0..{v})\nHINT: the ids must come from the tokenizer the model was trained with"
            );
        }
        let device = self.model.output_weight().device();
        let input = tch::Tensor::from_slice(tokens).to(device).unsqueeze(0); // (1, T)
        let logits = tch::no_grad(|| self.model.f_forward(&input))?; // (1, T, V)
        let dtype = format!("{:?}", logits.kind()).to_lowercase();
        let host = logits
            .squeeze_dim(0)
            .to_kind(tch::Kind::Float)
            .to(tch::Device::Cpu)
            .reshape([-1]);
        let values = Vec::<f32>::try_from(host).context("copying the logits to the host")?;
        Ok((values, dtype))
    }
}

/// Temperature ≥ 0 and top-p in (0, 1], as the command line names them.
fn check_sampling(opts: &SamplingOptions) -> Result<()> {
    if !(opts.temperature >= 0.0 && opts.temperature.is_finite()) {
        bail!(
            "--temperature {} must be ≥ 0 (0 is greedy)",
            opts.temperature
        );
    }
    if let Some(p) = opts.top_p.filter(|p| !(*p > 0.0 && *p <= 1.0)) {
        bail!("--top-p {p} must be in (0, 1]");
    }
    Ok(())
}

/// Each model's score on `items` (a multiple-choice task), every model reading text with `tokenizer`
/// (`gpt2` or a tokenizer.json); `on_item` is called after each question.
pub fn score_models(
    models: &[(String, PathBuf)],
    tokenizer: &str,
    items: &[crate::tasks::TaskItem],
    on_item: &dyn Fn(),
) -> Result<Vec<(String, crate::tasks::TaskScore)>> {
    let mut scores = Vec::with_capacity(models.len());
    for (name, path) in models {
        let loaded = LoadedModel::load(path, tch::Device::Cpu)?;
        let tok = loaded.tokenizer(Some(tokenizer))?;
        let logprobs = items
            .iter()
            .map(|item| {
                let lp = loaded.choice_logprobs(&tok, item);
                on_item();
                lp
            })
            .collect::<Result<Vec<_>>>()?;
        scores.push((name.clone(), crate::tasks::score(items, &logprobs)));
    }
    Ok(scores)
}

/// Generated text streamed out: everything decoded so far, and how much of it was emitted.
#[derive(Default)]
struct StreamedText {
    tokens: Vec<u32>,
    emitted: String,
}

impl StreamedText {
    /// Adds a token and emits what is new, unless the text ends in an incomplete UTF-8 sequence (decoded
    /// as U+FFFD).
    fn push(
        &mut self,
        tokenizer: &Tokenizer,
        token: u32,
        emit: &mut impl FnMut(&str) -> Result<()>,
    ) -> Result<()> {
        self.tokens.push(token);
        self.emit_new(tokenizer, false, emit)
    }

    /// Emits the rest, complete or not.
    fn finish(
        &mut self,
        tokenizer: &Tokenizer,
        emit: &mut impl FnMut(&str) -> Result<()>,
    ) -> Result<()> {
        self.emit_new(tokenizer, true, emit)
    }

    fn emit_new(
        &mut self,
        tokenizer: &Tokenizer,
        last: bool,
        emit: &mut impl FnMut(&str) -> Result<()>,
    ) -> Result<()> {
        let text = tokenizer.decode(&self.tokens)?;
        if !last && text.ends_with('\u{fffd}') {
            return Ok(());
        }
        if let Some(new) = text.strip_prefix(self.emitted.as_str()) {
            emit(new)?;
            self.emitted = text;
        }
        Ok(())
    }
}

/// What `rewarm logits` writes: the model, its input, per-position statistics and (every `stride`-th)
/// logits.
#[derive(Debug, serde::Serialize)]
pub struct LogitsDump {
    pub model: rewarm_model::ModelConfig,
    pub source: SourceView,
    pub device: String,
    pub dtype: String,
    pub text: Option<String>,
    pub tokens: Vec<i64>,
    pub mean_loss: Option<f64>,
    pub logsumexp: Vec<f64>,
    pub target_logprob: Vec<f64>,
    pub argmax: Vec<usize>,
    pub logit_ids: Vec<usize>,
    /// f32 logits written as the f64 of the same value, so the JSON holds them exactly.
    pub logits: Vec<Vec<f64>>,
}

/// Where the model's weights came from, as `rewarm logits` reports it.
#[derive(Debug, serde::Serialize)]
pub struct SourceView {
    pub kind: &'static str,
    pub path: PathBuf,
}

impl LogitsDump {
    /// The model's logits on `tokens`; `stride` ≥ 1 keeps every `stride`-th vocabulary id.
    pub fn new(
        loaded: &LoadedModel,
        text: Option<String>,
        tokens: Vec<i64>,
        stride: usize,
    ) -> Result<Self> {
        if stride == 0 {
            bail!("--stride must be ≥ 1 (1 writes every logit)");
        }
        let (values, dtype) = loaded.logits(&tokens)?;
        let config = loaded.model.config().clone();
        let v = config.vocab_size;
        let stats = LogitStats::new(&values, v, &tokens);
        let logit_ids: Vec<usize> = (0..v).step_by(stride).collect();
        let logits = values
            .chunks_exact(v)
            .map(|row| logit_ids.iter().map(|&i| f64::from(row[i])).collect())
            .collect();
        let device = loaded.model.output_weight().device();
        Ok(LogitsDump {
            model: config,
            source: SourceView::of(&loaded.source),
            device: format!("{device:?}").to_lowercase(),
            dtype,
            text,
            tokens,
            mean_loss: stats.mean_loss(),
            logsumexp: stats.logsumexp,
            target_logprob: stats.target_logprob,
            argmax: stats.argmax,
            logit_ids,
            logits,
        })
    }
}

impl SourceView {
    fn of(source: &Source) -> Self {
        let (kind, path) = match source {
            Source::Checkpoint(dir) => ("checkpoint", dir),
            Source::HfFolder(dir) => ("hf_folder", dir),
            Source::File(file) => ("file", file),
        };
        SourceView {
            kind,
            path: path.clone(),
        }
    }
}

/// Per-position statistics of one sequence's logits, computed in f64 from the model's f32 logits.
#[derive(Clone, Debug, PartialEq)]
pub struct LogitStats {
    pub logsumexp: Vec<f64>,
    /// log p(tokens[t + 1] | tokens[..=t]) for t < T − 1.
    pub target_logprob: Vec<f64>,
    /// The first id of the largest logit (NaN never wins).
    pub argmax: Vec<usize>,
}

impl LogitStats {
    /// `logits` is (T, V) row-major; `tokens` the T ids it was computed from.
    pub fn new(logits: &[f32], v: usize, tokens: &[i64]) -> Self {
        let rows: Vec<&[f32]> = logits.chunks_exact(v).collect();
        let argmax = rows.iter().map(|row| first_max(row)).collect();
        let logsumexp: Vec<f64> = rows.iter().map(|row| log_sum_exp(row)).collect();
        let target_logprob = (0..tokens.len().saturating_sub(1))
            .map(|t| f64::from(rows[t][tokens[t + 1] as usize]) - logsumexp[t])
            .collect();
        LogitStats {
            logsumexp,
            target_logprob,
            argmax,
        }
    }

    /// Mean next-token loss (nats) over the positions that have a next token.
    pub fn mean_loss(&self) -> Option<f64> {
        let n = self.target_logprob.len();
        (n > 0).then(|| -self.target_logprob.iter().sum::<f64>() / n as f64)
    }
}

fn first_max(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(best, top), (i, &x)| {
            if x > top {
                (i, x)
            } else {
                (best, top)
            }
        })
        .0
}

fn log_sum_exp(row: &[f32]) -> f64 {
    let top = row
        .iter()
        .fold(f64::NEG_INFINITY, |m, &x| m.max(f64::from(x)));
    let sum: f64 = row.iter().map(|&x| (f64::from(x) - top).exp()).sum();
    top + sum.ln()
}

/// `rewarm export`: the checkpoint as a Hugging Face folder, with the tokenizer the data was prepared
/// with (its end-of-text becomes the folder's BOS and EOS, so `generate` stops where rewarm does).
pub fn export(
    from: &Path,
    hf: &Path,
    tokenizer: Option<&Path>,
    options: pretrained::ExportOptions,
) -> Result<()> {
    let tokenizer = match tokenizer {
        Some(path) => {
            pretrained::check_tokenizer_json(path)?;
            let eot_id = Tokenizer::from_hf_file(path, None)?.info().eot_id;
            Some(ExportTokenizer { path, eot_id })
        }
        None => None,
    };
    Ok(pretrained::export_hf(from, hf, tokenizer, options)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logit_stats_by_hand() {
        // Two positions over a vocabulary of 3: row 0 = ln(1, 2, 1) → p = (¼, ½, ¼).
        let (a, b) = (0f32, 2f32.ln());
        let logits = [a, b, a, 0.0, 0.0, f32::NAN];
        let s = LogitStats::new(&logits, 3, &[1, 2]);
        assert!((s.logsumexp[0] - 4f64.ln()).abs() < 1e-6);
        assert!((s.target_logprob[0] - 0.25f64.ln()).abs() < 1e-6);
        assert_eq!(s.argmax, [1, 0]);
        assert!((s.mean_loss().unwrap() - 4f64.ln()).abs() < 1e-6);
        assert_eq!(LogitStats::new(&logits[..3], 3, &[1]).mean_loss(), None);
    }

    #[test]
    fn config_ids_may_be_a_number_or_a_list() {
        assert_eq!(ids_in(&serde_json::json!(2)), [2]);
        assert_eq!(ids_in(&serde_json::json!([0, 2])), [0, 2]);
        assert!(ids_in(&serde_json::Value::Null).is_empty());
    }
}
