//! Weights across formats: a rewarm checkpoint exported as a Hugging Face folder loads back identical;
//! `init_from` a Hugging Face folder (single file or shards) checks the plan's model field by field,
//! skips the buffers HF checkpoints carry, and refuses pickles.

use rewarm_interop::hf;
use rewarm_model::pretrained::{
    export_hf, init_weights, load_model, ExportOptions, ExportTokenizer, Source,
};
use rewarm_model::{Model, ModelConfig};
use rewarm_runfolder::{RunDir, TrainState};
use rewarm_train::checkpoint::{self, CheckpointData};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::{nn, Device, Kind, Tensor};

fn build(config: &ModelConfig, seed: i64) -> (Model, nn::VarStore) {
    tch::manual_seed(seed);
    let vs = nn::VarStore::new(Device::Cpu);
    let model = Model::new(&vs.root(), config).unwrap();
    (model, vs)
}

fn weights(vs: &nn::VarStore) -> BTreeMap<String, Tensor> {
    vs.variables().into_iter().collect()
}

fn assert_same(a: &nn::VarStore, b: &nn::VarStore) {
    let (a, b) = (weights(a), weights(b));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, t) in &a {
        assert!(t.equal(&b[name]), "{name} differs");
    }
}

/// A complete rewarm checkpoint of `vs` in the run folder `run`.
fn save_checkpoint(run: &Path, config: &ModelConfig, vs: &nn::VarStore) -> PathBuf {
    let vars = weights(vs);
    let state = TrainState {
        step: 5,
        optimizer_step: 5,
        lr_scale: 1.0,
        rollbacks: 0,
        tokens_by_source: BTreeMap::new(),
        data_fingerprint: String::new(),
        rewarm_version: "test".into(),
        spikes_skipped: 0,
        spike_window: None,
    };
    let plan_json =
        serde_json::to_string_pretty(&serde_json::json!({ "plan": {}, "model": config })).unwrap();
    let data = CheckpointData {
        weights: vars.iter().map(|(n, t)| (n.clone(), t)).collect(),
        optimizer: vec![],
        ema: vec![],
        reptile_anchor: vec![],
        state: &state,
        plan_json: &plan_json,
        consumed_json: "{}",
    };
    checkpoint::save(&RunDir::new(run), &data).unwrap().path
}

#[test]
fn export_then_load_back_gives_identical_weights() {
    for config in [ModelConfig::tiny(), ModelConfig::tiny_llama()] {
        let dir = tempfile::tempdir().unwrap();
        let (_, vs) = build(&config, 11);
        let run = dir.path().join("run");
        save_checkpoint(&run, &config, &vs);
        let tokenizer = dir.path().join("tokenizer.json");
        let docs = ["the cat sat on the mat", "a dog ran to the barn"].map(String::from);
        let bpe =
            rewarm_data::tokenizer::train_bpe(docs.into_iter().cycle().take(40), 300).unwrap();
        std::fs::write(&tokenizer, bpe).unwrap();

        // A run folder exports its newest checkpoint; the config names the tokenizer's end-of-text (id 0 in
        // a trained BPE) as the start and end of sequences.
        let out = dir.path().join("hf");
        export_with_tokenizer(&run, &out, &tokenizer);
        let mut json = hf::read_config(&out).unwrap();
        let obj = json.as_object_mut().unwrap();
        assert_eq!(obj.remove("bos_token_id"), Some(0.into()));
        assert_eq!(obj.remove("eos_token_id"), Some(0.into()));
        assert_eq!(json, config.to_hf_config());
        assert_eq!(ModelConfig::from_hf_config(&json).unwrap(), config);
        assert_eq!(
            std::fs::read(out.join("tokenizer.json")).unwrap(),
            std::fs::read(&tokenizer).unwrap()
        );

        let (model, back, source) = load_model(&out, Device::Cpu).unwrap();
        assert_eq!(source, Source::HfFolder(out.clone()));
        assert_eq!(model.config(), &config);
        assert_same(&vs, &back);

        // init_from the exported folder into a differently seeded model of the plan's shape.
        let (_, fresh) = build(&config, 99);
        init_weights(&out, &fresh, &config).unwrap();
        assert_same(&vs, &fresh);

        let err = export_hf(&run, &out, None, ExportOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("not empty") && err.contains("HINT"), "{err}");
    }
}

#[test]
fn a_bf16_export_in_shards_loads_back_as_the_weights_rounded_to_bf16() {
    let config = ModelConfig::tiny_llama();
    let dir = tempfile::tempdir().unwrap();
    let (_, vs) = build(&config, 5);
    let ckpt = save_checkpoint(dir.path(), &config, &vs);
    let out = dir.path().join("hf");
    // Shards of at most 64 kB: the 512 × 64 embedding (64 kB in bf16) fills one by itself.
    let options = ExportOptions {
        bf16: true,
        max_shard_bytes: 64_000,
    };
    export_hf(&ckpt, &out, None, options).unwrap();
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join(hf::INDEX_FILE)).unwrap()).unwrap();
    let map = index["weight_map"].as_object().unwrap();
    let shards: std::collections::BTreeSet<&str> =
        map.values().map(|v| v.as_str().unwrap()).collect();
    assert!(shards.len() > 2, "{shards:?}");
    let n = shards.len();
    assert!(shards.contains(format!("model-00001-of-{n:05}.safetensors").as_str()));
    assert!(!out.join(hf::WEIGHTS_FILE).exists());
    // Every parameter once, bf16 bytes in total.
    let params: i64 = weights(&vs).values().map(|t| t.numel() as i64).sum();
    assert_eq!(map.len(), weights(&vs).len());
    assert_eq!(index["metadata"]["total_size"], 2 * params);
    let config_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join(hf::CONFIG_FILE)).unwrap()).unwrap();
    assert_eq!(config_json["torch_dtype"], "bfloat16");
    // Loaded back (rewarm's loader reads shards and converts to the model's f32): each weight is the
    // original rounded to bf16.
    let (_, back, _) = load_model(&out, Device::Cpu).unwrap();
    let back = weights(&back);
    for (name, t) in weights(&vs) {
        let rounded = t.to_kind(Kind::BFloat16).to_kind(Kind::Float);
        assert!(back[&name].equal(&rounded), "{name}");
    }
}

#[test]
fn init_from_hf_names_the_differing_field_and_allows_another_context_length() {
    let config = ModelConfig::tiny_llama();
    let dir = tempfile::tempdir().unwrap();
    let (_, vs) = build(&config, 1);
    let ckpt = save_checkpoint(dir.path(), &config, &vs);
    let out = dir.path().join("hf");
    export_hf(&ckpt, &out, None, ExportOptions::default()).unwrap();

    let (_, target) = build(&config, 2);
    let plan = ModelConfig {
        rope_theta: 500_000.0,
        ..config.clone()
    };
    let err = init_weights(&out, &target, &plan).unwrap_err().to_string();
    assert!(
        err.contains("rope_theta = 10000.0")
            && err.contains("rope_theta = 500000.0")
            && err.contains("HINT"),
        "{err}"
    );
    let plan = ModelConfig {
        num_kv_heads: 4,
        ..config.clone()
    };
    assert!(init_weights(&out, &target, &plan)
        .unwrap_err()
        .to_string()
        .contains("num_kv_heads"));

    let short = ModelConfig {
        max_seq_len: 64,
        ..config.clone()
    };
    let (_, target) = build(&short, 2);
    init_weights(&out, &target, &short).unwrap();
    assert_same(&vs, &target);
}

#[test]
fn sharded_folders_load_and_hf_buffers_are_skipped() {
    let config = ModelConfig::tiny_llama();
    let dir = tempfile::tempdir().unwrap();
    let (_, vs) = build(&config, 3);
    let vars = weights(&vs);
    let folder = dir.path().join("sharded");
    std::fs::create_dir_all(&folder).unwrap();
    hf::write_json(&folder.join(hf::CONFIG_FILE), &config.to_hf_config()).unwrap();

    // Two shards, plus what transformers checkpoints may hold besides parameters: a cached rotary table
    // and, although tied, an lm_head copy.
    let names: Vec<&String> = vars.keys().collect();
    let (first, second) = names.split_at(names.len() / 2);
    let inv_freq = Tensor::ones([8], (Kind::Float, Device::Cpu));
    let mut map = serde_json::Map::new();
    for (file, part) in [
        ("model-00001-of-00002.safetensors", first),
        ("model-00002-of-00002.safetensors", second),
    ] {
        let mut tensors: Vec<(String, &Tensor)> =
            part.iter().map(|n| ((*n).clone(), &vars[*n])).collect();
        if file.starts_with("model-00002") {
            tensors.push((
                "model.layers.0.self_attn.rotary_emb.inv_freq".into(),
                &inv_freq,
            ));
            tensors.push(("lm_head.weight".into(), &vars["model.embed_tokens.weight"]));
        }
        for (name, _) in &tensors {
            map.insert(name.clone(), file.into());
        }
        rewarm_model::weights::save_tensors(&folder.join(file), &tensors).unwrap();
    }
    hf::write_json(
        &folder.join(hf::INDEX_FILE),
        &serde_json::json!({ "metadata": {}, "weight_map": map }),
    )
    .unwrap();

    let (_, target) = build(&config, 4);
    init_weights(&folder, &target, &config).unwrap();
    assert_same(&vs, &target);

    // A tensor the model lacks is an error naming it.
    let extra = Tensor::zeros([2], (Kind::Float, Device::Cpu));
    rewarm_model::weights::save_tensors(
        &folder.join("model-00002-of-00002.safetensors"),
        &[("model.layers.0.mlp.bias".into(), &extra)],
    )
    .unwrap();
    let err = init_weights(&folder, &target, &config)
        .unwrap_err()
        .to_string();
    assert!(err.contains("model.layers.0.mlp.bias"), "{err}");
}

#[test]
fn pickle_checkpoints_are_refused_with_a_hint() {
    let config = ModelConfig::tiny();
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("pythia");
    std::fs::create_dir_all(&folder).unwrap();
    hf::write_json(&folder.join(hf::CONFIG_FILE), &config.to_hf_config()).unwrap();
    std::fs::write(
        folder.join("pytorch_model.bin"),
        b"\x80\x02 a pickle that must never be opened",
    )
    .unwrap();
    let (_, target) = build(&config, 0);
    for path in [folder.clone(), folder.join("pytorch_model.bin")] {
        let err = init_weights(&path, &target, &config)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("pytorch_model.bin")
                && err.contains("safetensors")
                && err.contains("HINT"),
            "{err}"
        );
    }
}

/// `rewarm export` with a tokenizer: its end-of-text id read as the jobs crate reads it.
fn export_with_tokenizer(run: &Path, out: &Path, tokenizer: &Path) {
    let eot_id = rewarm_data::Tokenizer::from_hf_file(tokenizer, None)
        .unwrap()
        .info()
        .eot_id;
    let tokenizer = ExportTokenizer {
        path: tokenizer,
        eot_id,
    };
    export_hf(run, out, Some(tokenizer), ExportOptions::default()).unwrap();
}
