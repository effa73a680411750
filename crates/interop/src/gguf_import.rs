//! GGUF (llama.cpp) Llama → Hugging Face `LlamaForCausalLM` folder: `config.json`, `model.safetensors`
//! (f32, HF names), `tokenizer.json` and `tokenizer_config.json`.
//!
//! Two conversions undo what llama.cpp's `convert_hf_to_gguf.py` did:
//! - names: `blk.N.attn_q.weight` → `model.layers.N.self_attn.q_proj.weight`, etc. ([`TENSOR_NAMES`]);
//! - the rotary layout of q_proj / k_proj. HF rotates dim i of a head with dim i + hd/2 ("rotate_half");
//!   ggml rotates adjacent pairs (2i, 2i + 1). The converter therefore permutes the rows of each head with
//!   `w.reshape(n_head, 2, hd/2, in).swapaxes(1, 2)` (n_head = Hkv for k_proj). [`unpermute_rows`] is its
//!   inverse: HF row h·hd + j·hd/2 + i comes from GGUF row h·hd + 2i + j.

use crate::gguf::{GgufFile, TensorInfo, Value};
use crate::gguf_rope::{llama3_from_divisors, ROPE_FREQS};
use crate::gguf_tokenizer::{tokenizer_from_gguf, RebuiltTokenizer};
use crate::hf::{self, SafetensorsWriter};
use crate::InteropError;
use rewarm_arch::RopeScaling;
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;
use std::io::{Read, Seek};
use std::path::Path;

/// Per-layer GGUF tensor → HF tensor, `{}` standing for the layer index.
pub const TENSOR_NAMES: &[(&str, &str)] = &[
    (
        "blk.{}.attn_norm.weight",
        "model.layers.{}.input_layernorm.weight",
    ),
    (
        "blk.{}.attn_q.weight",
        "model.layers.{}.self_attn.q_proj.weight",
    ),
    (
        "blk.{}.attn_k.weight",
        "model.layers.{}.self_attn.k_proj.weight",
    ),
    (
        "blk.{}.attn_v.weight",
        "model.layers.{}.self_attn.v_proj.weight",
    ),
    (
        "blk.{}.attn_output.weight",
        "model.layers.{}.self_attn.o_proj.weight",
    ),
    (
        "blk.{}.ffn_norm.weight",
        "model.layers.{}.post_attention_layernorm.weight",
    ),
    (
        "blk.{}.ffn_gate.weight",
        "model.layers.{}.mlp.gate_proj.weight",
    ),
    ("blk.{}.ffn_up.weight", "model.layers.{}.mlp.up_proj.weight"),
    (
        "blk.{}.ffn_down.weight",
        "model.layers.{}.mlp.down_proj.weight",
    ),
];

/// The shape of a GGUF Llama, from its `llama.*` metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct LlamaShape {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub vocab_size: usize,
    pub context_length: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub tie_embeddings: bool,
    /// Llama 3's RoPE scaling, read back from `rope_freqs.weight` by [`read_rope_scaling`].
    pub rope_scaling: Option<RopeScaling>,
}

impl LlamaShape {
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_heads
    }
}

/// What an import wrote.
#[derive(Debug)]
pub struct ImportSummary {
    pub shape: LlamaShape,
    /// The config.json written.
    pub config: Json,
    /// Number of tensors of each GGUF type read.
    pub types: BTreeMap<String, usize>,
    pub params: u64,
    /// Whether tokenizer.json was written.
    pub tokenizer: bool,
    /// Warnings for the user.
    pub notes: Vec<String>,
}

impl ImportSummary {
    /// What `rewarm import gguf` prints: the shape, the tensors read, the files written to `out`.
    pub fn to_text(&self, out: &std::path::Path) -> String {
        let s = &self.shape;
        let types: Vec<String> = self.types.iter().map(|(t, n)| format!("{n} {t}")).collect();
        let tied = if s.tie_embeddings { "tied" } else { "untied" };
        let scaling = s.rope_scaling.as_ref().map_or(String::new(), |r| {
            format!(" (Llama 3 RoPE scaling, factor {})", r.factor)
        });
        let tokenizer = if self.tokenizer {
            ", tokenizer.json, tokenizer_config.json"
        } else {
            ""
        };
        format!(
            "{}: Llama, {} layers, C={}, {} q / {} kv heads, MLP {}, V={}, θ={}{scaling}, {tied}; {} parameters from {} tensors ({})\nwrote config.json, model.safetensors (f32){tokenizer}\n",
            out.display(),
            s.num_layers,
            s.hidden_size,
            s.num_heads,
            s.num_kv_heads,
            s.intermediate_size,
            s.vocab_size,
            s.rope_theta,
            self.params,
            self.types.values().sum::<usize>(),
            types.join(", "),
        )
    }
}

/// GGUF rows → HF rows for a q/k projection of `n_head` heads: `w` is (n_head·hd, cols), row-major.
pub fn unpermute_rows(w: &[f32], n_head: usize, cols: usize) -> Vec<f32> {
    permute(w, n_head, cols, false)
}

/// HF rows → GGUF rows (what llama.cpp's converter does); the inverse of [`unpermute_rows`].
pub fn permute_rows(w: &[f32], n_head: usize, cols: usize) -> Vec<f32> {
    permute(w, n_head, cols, true)
}

fn permute(w: &[f32], n_head: usize, cols: usize, to_gguf: bool) -> Vec<f32> {
    let rows = w.len() / cols;
    let half = rows / n_head / 2;
    let mut out = vec![0f32; w.len()];
    for h in 0..n_head {
        for j in 0..2 {
            for i in 0..half {
                let hf_row = h * 2 * half + j * half + i;
                let gguf_row = h * 2 * half + 2 * i + j;
                let (dst, src) = if to_gguf {
                    (gguf_row, hf_row)
                } else {
                    (hf_row, gguf_row)
                };
                out[dst * cols..(dst + 1) * cols].copy_from_slice(&w[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}

/// An f32 metadata number as the decimal it was written from (1e-5 rather than 9.999999747378752e-6).
fn shortest(v: &Value) -> Option<f64> {
    match v {
        Value::F32(x) => x.to_string().parse().ok(),
        other => other.as_f64(),
    }
}

/// Reads and checks the `llama.*` hyperparameters.
pub fn llama_shape<R: Read + Seek>(g: &GgufFile<R>) -> Result<LlamaShape, InteropError> {
    check_architecture(g)?;
    let shape = shape_fields(g)?;
    check_heads(g, &shape)?;
    check_no_rope_scaling_or_experts(g)?;
    Ok(shape)
}

fn check_architecture<R: Read + Seek>(g: &GgufFile<R>) -> Result<(), InteropError> {
    let arch = g.get_str("general.architecture").unwrap_or("(missing)");
    if arch != "llama" {
        return Err(InteropError::invalid(
            g.name(),
            format!("general.architecture is `{arch}`; rewarm imports `llama` GGUF files"),
            "use a Llama-architecture model (Llama, SmolLM, TinyLlama, …)",
        ));
    }
    Ok(())
}

fn bad_metadata(file: &str, key: &str, problem: &str) -> InteropError {
    InteropError::gguf(
        file,
        &format!("metadata `{key}`"),
        problem,
        "the file is corrupt or not a plain Llama",
    )
}

/// Metadata `key` as a size in 1..=2²⁴.
fn size<R: Read + Seek>(g: &GgufFile<R>, key: &str) -> Result<usize, InteropError> {
    match g.get(key) {
        None => Err(bad_metadata(g.name(), key, "is missing")),
        Some(v) => v
            .as_u64()
            .filter(|&n| n > 0 && n <= 1 << 24)
            .map(|n| n as usize)
            .ok_or_else(|| bad_metadata(g.name(), key, "is not a positive size ≤ 2²⁴")),
    }
}

/// [`size`] of a key that may be absent.
fn optional_size<R: Read + Seek>(
    g: &GgufFile<R>,
    key: &str,
) -> Result<Option<usize>, InteropError> {
    g.get(key).map(|_| size(g, key)).transpose()
}

/// The shape's fields, each present (or defaulted) and in range; how they fit together is checked after.
fn shape_fields<R: Read + Seek>(g: &GgufFile<R>) -> Result<LlamaShape, InteropError> {
    let num_heads = size(g, "llama.attention.head_count")?;
    let num_kv_heads = optional_size(g, "llama.attention.head_count_kv")?.unwrap_or(num_heads);
    let hidden_size = size(g, "llama.embedding_length")?;
    let rms_norm_eps = g
        .get("llama.attention.layer_norm_rms_epsilon")
        .and_then(shortest)
        .filter(|e| *e > 0.0)
        .ok_or_else(|| {
            bad_metadata(
                g.name(),
                "llama.attention.layer_norm_rms_epsilon",
                "is missing or not positive",
            )
        })?;
    let rope_theta = match g.get("llama.rope.freq_base") {
        None => 10_000.0,
        Some(v) => shortest(v).filter(|t| *t > 0.0).ok_or_else(|| {
            bad_metadata(g.name(), "llama.rope.freq_base", "is not a positive number")
        })?,
    };
    let embed = g.tensor("token_embd.weight").ok_or_else(|| {
        InteropError::gguf(
            g.name(),
            "tensor `token_embd.weight`",
            "is missing",
            "the file is not a complete Llama",
        )
    })?;
    let vocab_size = match optional_size(g, "llama.vocab_size")? {
        Some(n) => n,
        None => embed.dims.get(1).copied().unwrap_or(0) as usize,
    };
    Ok(LlamaShape {
        hidden_size,
        intermediate_size: size(g, "llama.feed_forward_length")?,
        num_layers: size(g, "llama.block_count")?,
        num_heads,
        num_kv_heads,
        vocab_size,
        context_length: size(g, "llama.context_length")?,
        rms_norm_eps,
        rope_theta,
        tie_embeddings: g.tensor("output.weight").is_none(),
        rope_scaling: None,
    })
}

/// Llama 3's RoPE scaling from the file's `rope_freqs.weight` (none without the tensor); divisors that
/// are not Llama 3.x's rule are refused, naming the tensor.
pub fn read_rope_scaling<R: Read + Seek>(
    g: &mut GgufFile<R>,
    shape: &LlamaShape,
) -> Result<Option<RopeScaling>, InteropError> {
    let Some(info) = g.tensor(ROPE_FREQS).cloned() else {
        return Ok(None);
    };
    let divisors = g.read_f32(&info)?;
    match llama3_from_divisors(&divisors, shape.head_dim(), shape.rope_theta) {
        Some(scaling) => Ok(Some(scaling)),
        None => Err(InteropError::gguf(
            g.name(),
            &format!("tensor `{ROPE_FREQS}`"),
            "holds RoPE frequency divisors that are not Llama 3.x's rule (factor = the largest, low 1, high 4, original context 8192)",
            "rewarm implements Llama 3's RoPE scaling only; import the Hugging Face checkpoint instead, whose config.json states its rope_scaling",
        )),
    }
}

/// The heads split the embedding evenly, into an even head dim (for the rotary halves), and are shared
/// evenly by the kv heads; the rotary and key/value sizes, where given, are that head dim.
fn check_heads<R: Read + Seek>(g: &GgufFile<R>, shape: &LlamaShape) -> Result<(), InteropError> {
    let (c, heads, kv_heads) = (shape.hidden_size, shape.num_heads, shape.num_kv_heads);
    if c % heads != 0 || heads % kv_heads != 0 || shape.head_dim() % 2 != 0 {
        return Err(bad_metadata(
            g.name(),
            "llama.attention.head_count",
            "does not split embedding_length into even heads shared evenly by head_count_kv",
        ));
    }
    for key in [
        "llama.rope.dimension_count",
        "llama.attention.key_length",
        "llama.attention.value_length",
    ] {
        if optional_size(g, key)?.is_some_and(|n| n != shape.head_dim()) {
            return Err(InteropError::invalid(
                g.name(),
                format!("`{key}` differs from the head dim {}", shape.head_dim()),
                "partial rotary or odd head sizes are not Llama; rewarm cannot import this model",
            ));
        }
    }
    Ok(())
}

fn check_no_rope_scaling_or_experts<R: Read + Seek>(g: &GgufFile<R>) -> Result<(), InteropError> {
    if let Some(kind) = g
        .get_str("llama.rope.scaling.type")
        .filter(|k| *k != "none")
    {
        return Err(InteropError::invalid(
            g.name(),
            format!("uses RoPE scaling `{kind}`, which rewarm's Llama does not implement"),
            "import a model without rope scaling",
        ));
    }
    if g.get("llama.expert_count")
        .and_then(Value::as_u64)
        .unwrap_or(0)
        > 0
    {
        return Err(InteropError::invalid(
            g.name(),
            "is a mixture-of-experts model",
            "rewarm's Llama is dense; import a dense model",
        ));
    }
    Ok(())
}

/// The HF `config.json` (LlamaForCausalLM keys) of `shape`.
pub fn llama_config_json(shape: &LlamaShape, tokenizer: Option<&RebuiltTokenizer>) -> Json {
    let id = |t: Option<&(u32, String)>| t.map(|t| json!(t.0)).unwrap_or(Json::Null);
    json!({
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": shape.hidden_size,
        "intermediate_size": shape.intermediate_size,
        "num_hidden_layers": shape.num_layers,
        "num_attention_heads": shape.num_heads,
        "num_key_value_heads": shape.num_kv_heads,
        "head_dim": shape.head_dim(),
        "hidden_act": "silu",
        "max_position_embeddings": shape.context_length,
        "rms_norm_eps": shape.rms_norm_eps,
        "rope_theta": shape.rope_theta,
        "rope_scaling": shape.rope_scaling,
        "attention_bias": false,
        "mlp_bias": false,
        "tie_word_embeddings": shape.tie_embeddings,
        "vocab_size": shape.vocab_size,
        "bos_token_id": id(tokenizer.and_then(|t| t.bos.as_ref())),
        "eos_token_id": id(tokenizer.and_then(|t| t.eos.as_ref())),
        "torch_dtype": "float32",
    })
}

/// One tensor to convert: GGUF source, HF name and shape, and the heads to unpermute (q/k only).
#[derive(Debug)]
pub struct Planned<'a> {
    pub info: &'a TensorInfo,
    pub hf_name: String,
    pub hf_shape: Vec<usize>,
    pub unpermute_heads: Option<usize>,
}

/// Every tensor of a Llama of `s`'s shape, matched to the GGUF's tensors by name and shape; any GGUF
/// tensor left over is an error.
pub fn plan<'a, R: Read + Seek>(
    g: &'a GgufFile<R>,
    s: &LlamaShape,
) -> Result<Vec<Planned<'a>>, InteropError> {
    check_block_count(g, s)?;
    let planned = wanted_tensors(s)
        .into_iter()
        .map(|wanted| find_tensor(g, wanted))
        .collect::<Result<Vec<_>, _>>()?;
    // The RoPE divisors went into config.json when they were read back.
    let known = |name: &str| s.rope_scaling.is_some() && name == ROPE_FREQS;
    check_nothing_left_over(g, &planned, &known)?;
    Ok(planned)
}

/// No more layers than the file has tensors for; checked before the names are listed, so that a hostile
/// block_count cannot make the list huge.
fn check_block_count<R: Read + Seek>(g: &GgufFile<R>, s: &LlamaShape) -> Result<(), InteropError> {
    if s.num_layers > g.tensors.len() / TENSOR_NAMES.len() {
        return Err(InteropError::gguf(
            g.name(),
            "metadata `llama.block_count`",
            format!(
                "= {} layers, but the file has only {} tensors",
                s.num_layers,
                g.tensors.len()
            ),
            "the file is corrupt or not a plain Llama",
        ));
    }
    Ok(())
}

/// A tensor [`plan`] looks for in the file: a [`Planned`] before its GGUF entry is found.
struct Wanted {
    gguf_name: String,
    hf_name: String,
    hf_shape: Vec<usize>,
    unpermute_heads: Option<usize>,
}

impl Wanted {
    fn new(gguf_name: &str, hf_name: &str, hf_shape: Vec<usize>, heads: Option<usize>) -> Self {
        Wanted {
            gguf_name: gguf_name.to_owned(),
            hf_name: hf_name.to_owned(),
            hf_shape,
            unpermute_heads: heads,
        }
    }
}

/// The tensors of a Llama of `s`'s shape: embeddings, final norm, the head unless tied, then each layer's.
fn wanted_tensors(s: &LlamaShape) -> Vec<Wanted> {
    let (c, v) = (s.hidden_size, s.vocab_size);
    let mut wanted = vec![
        Wanted::new(
            "token_embd.weight",
            "model.embed_tokens.weight",
            vec![v, c],
            None,
        ),
        Wanted::new("output_norm.weight", "model.norm.weight", vec![c], None),
    ];
    if !s.tie_embeddings {
        wanted.push(Wanted::new(
            "output.weight",
            "lm_head.weight",
            vec![v, c],
            None,
        ));
    }
    for layer in 0..s.num_layers {
        let n = layer.to_string();
        for &(gguf, hf) in TENSOR_NAMES {
            let (shape, heads) = layer_tensor_shape(s, gguf);
            wanted.push(Wanted::new(
                &gguf.replace("{}", &n),
                &hf.replace("{}", &n),
                shape,
                heads,
            ));
        }
    }
    wanted
}

/// The HF shape of the per-layer tensor `gguf` (a [`TENSOR_NAMES`] pattern), and for q/k its heads.
fn layer_tensor_shape(s: &LlamaShape, gguf: &str) -> (Vec<usize>, Option<usize>) {
    let (c, i) = (s.hidden_size, s.intermediate_size);
    let kv = s.num_kv_heads * s.head_dim();
    match gguf {
        "blk.{}.attn_norm.weight" | "blk.{}.ffn_norm.weight" => (vec![c], None),
        "blk.{}.attn_q.weight" => (vec![c, c], Some(s.num_heads)),
        "blk.{}.attn_k.weight" => (vec![kv, c], Some(s.num_kv_heads)),
        "blk.{}.attn_v.weight" => (vec![kv, c], None),
        "blk.{}.ffn_down.weight" => (vec![c, i], None),
        "blk.{}.ffn_gate.weight" | "blk.{}.ffn_up.weight" => (vec![i, c], None),
        _ => (vec![c, c], None), // attn_output
    }
}

/// The GGUF tensor `wanted` names, checked to have the shape the metadata implies.
fn find_tensor<'a, R: Read + Seek>(
    g: &'a GgufFile<R>,
    wanted: Wanted,
) -> Result<Planned<'a>, InteropError> {
    let Wanted {
        gguf_name,
        hf_name,
        hf_shape,
        unpermute_heads,
    } = wanted;
    let info = g.tensor(&gguf_name).ok_or_else(|| {
        InteropError::gguf(
            g.name(),
            &format!("tensor `{gguf_name}`"),
            "is missing",
            "the file is not a complete Llama of the shape its metadata declares",
        )
    })?;
    if info.torch_shape() != hf_shape {
        return Err(InteropError::gguf(
            g.name(),
            &format!("tensor `{gguf_name}`"),
            format!(
                "has shape {:?} (PyTorch order) but the metadata implies {hf_shape:?}",
                info.torch_shape()
            ),
            "the file is corrupt or not a plain Llama",
        ));
    }
    Ok(Planned {
        info,
        hf_name,
        hf_shape,
        unpermute_heads,
    })
}

/// A GGUF tensor that nothing reads would be silently dropped from the import, so it is an error.
fn check_nothing_left_over<R: Read + Seek>(
    g: &GgufFile<R>,
    planned: &[Planned],
    known: &dyn Fn(&str) -> bool,
) -> Result<(), InteropError> {
    if let Some(extra) = g
        .tensors
        .iter()
        .find(|t| !known(&t.name) && !planned.iter().any(|p| p.info.name == t.name))
    {
        return Err(InteropError::gguf(
            g.name(),
            &format!("tensor `{}`", extra.name),
            "has no Hugging Face Llama counterpart",
            "rewarm imports plain Llama models (no RoPE frequency factors, biases or extra heads)",
        ));
    }
    Ok(())
}

/// Converts the GGUF file at `gguf` into a new Hugging Face folder `out` (which must not exist or be
/// empty). `progress(read, total)` is told the tensor bytes read so far after each tensor.
pub fn import_gguf(
    gguf: &Path,
    out: &Path,
    progress: &dyn Fn(u64, u64),
) -> Result<ImportSummary, InteropError> {
    let mut g = GgufFile::open(gguf)?;
    let mut shape = llama_shape(&g)?;
    shape.rope_scaling = read_rope_scaling(&mut g, &shape)?;
    let (tokenizer, notes) = tokenizer_or_note(&g);
    if let Some(t) = &tokenizer {
        check_vocab_fits(gguf, t, shape.vocab_size)?;
    }
    let config = llama_config_json(&shape, tokenizer.as_ref());
    let planned = plan(&g, &shape)?;
    let header: Vec<(String, Vec<usize>)> = planned
        .iter()
        .map(|p| (p.hf_name.clone(), p.hf_shape.clone()))
        .collect();
    // Owned copies, since reading the tensors' data borrows `g` mutably.
    let tensors: Vec<(TensorInfo, String, Option<usize>)> = planned
        .iter()
        .map(|p| (p.info.clone(), p.hf_name.clone(), p.unpermute_heads))
        .collect();

    hf::create_empty_folder(out)?;
    let mut writer = SafetensorsWriter::create(&out.join(hf::WEIGHTS_FILE), &header)?;
    let (types, params) = write_weights(&mut g, &mut writer, tensors, shape.hidden_size, progress)?;
    writer.finish()?;
    hf::write_json(&out.join(hf::CONFIG_FILE), &config)?;
    if let Some(t) = &tokenizer {
        write_tokenizer(&g, t, shape.context_length, out)?;
    }
    Ok(ImportSummary {
        shape,
        config,
        types,
        params,
        tokenizer: tokenizer.is_some(),
        notes,
    })
}

/// The GGUF's tokenizer and the notes for the user. A tokenizer that cannot be rebuilt is only a note:
/// the weights are still worth importing, with tokenizer.json taken from elsewhere.
fn tokenizer_or_note<R: Read + Seek>(g: &GgufFile<R>) -> (Option<RebuiltTokenizer>, Vec<String>) {
    match tokenizer_from_gguf(g) {
        Ok(t) => {
            let notes = t.notes.clone();
            (Some(t), notes)
        }
        Err(e) => (None, vec![format!("tokenizer.json not written: {e}")]),
    }
}

/// A token beyond the embedding table would index past it.
fn check_vocab_fits(
    gguf: &Path,
    tokenizer: &RebuiltTokenizer,
    vocab_size: usize,
) -> Result<(), InteropError> {
    let n = tokenizer.json["model"]["vocab"]
        .as_object()
        .map_or(0, |v| v.len());
    if n > vocab_size {
        return Err(InteropError::invalid(
            gguf.display(),
            format!("the tokenizer has {n} tokens but the model only {vocab_size} embeddings"),
            "the file is inconsistent",
        ));
    }
    Ok(())
}

/// Writes each (GGUF tensor, HF name, q/k heads) dequantized to f32, q/k rows unpermuted. Returns how
/// many tensors of each GGUF type were read, and the number of parameters.
fn write_weights<R: Read + Seek>(
    g: &mut GgufFile<R>,
    writer: &mut SafetensorsWriter,
    tensors: Vec<(TensorInfo, String, Option<usize>)>,
    hidden_size: usize,
    progress: &dyn Fn(u64, u64),
) -> Result<(BTreeMap<String, usize>, u64), InteropError> {
    let mut types = BTreeMap::new();
    let mut params = 0u64;
    let total: u64 = tensors.iter().map(|t| t.0.size).sum();
    let mut read = 0;
    for (info, hf_name, heads) in tensors {
        read += info.size;
        let mut values = g.read_f32(&info)?;
        if let Some(n_head) = heads {
            values = unpermute_rows(&values, n_head, hidden_size);
        }
        writer.write(&hf_name, &values)?;
        *types.entry(info.ty.to_string()).or_insert(0) += 1;
        params += info.numel();
        progress(read, total);
    }
    Ok((types, params))
}

/// tokenizer.json, and the tokenizer_config.json that `transformers` reads for BOS/EOS and the chat
/// template.
fn write_tokenizer<R: Read + Seek>(
    g: &GgufFile<R>,
    t: &RebuiltTokenizer,
    context_length: usize,
    out: &Path,
) -> Result<(), InteropError> {
    hf::write_json(&out.join(hf::TOKENIZER_FILE), &t.json)?;
    let text = |t: Option<&(u32, String)>| t.map(|t| json!(t.1)).unwrap_or(Json::Null);
    let mut tok_config = json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": text(t.bos.as_ref()),
        "eos_token": text(t.eos.as_ref()),
        "add_bos_token": t.add_bos,
        "model_max_length": context_length,
    });
    if let Some(template) = g.get_str("tokenizer.chat_template") {
        tok_config["chat_template"] = json!(template);
    }
    hf::write_json(&out.join("tokenizer_config.json"), &tok_config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpermute_inverts_the_converters_permutation_by_hand() {
        // 2 heads of hd = 4, one column: HF rows [h0: 0 1 2 3 | h1: 4 5 6 7]. The converter's
        // reshape(2, 2, 2, 1).swapaxes(1, 2) interleaves each head's halves: [0 2 1 3 | 4 6 5 7].
        let hf: Vec<f32> = (0..8).map(|r| r as f32).collect();
        let gguf = permute_rows(&hf, 2, 1);
        assert_eq!(gguf, [0., 2., 1., 3., 4., 6., 5., 7.]);
        assert_eq!(unpermute_rows(&gguf, 2, 1), hf);
        // With several columns whole rows move.
        let wide: Vec<f32> = (0..24).map(|x| x as f32).collect(); // (8, 3)
        assert_eq!(unpermute_rows(&permute_rows(&wide, 2, 3), 2, 3), wide);
        assert_eq!(&permute_rows(&wide, 2, 3)[3..6], &[6., 7., 8.]);
    }
}
