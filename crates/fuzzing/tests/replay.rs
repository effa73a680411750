//! Every checked-in fuzz seed (`fuzz/seeds/TARGET/`) and every input a fuzz target once failed on
//! (`fuzz/regressions/TARGET/`) runs through its target here, so `cargo test` keeps them passing without
//! nightly or libFuzzer. A target without seeds fails: a folder that went missing must not pass silently.

use std::path::{Path, PathBuf};

fn inputs(folder: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_seed_and_regression_passes_its_target() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut failed = Vec::new();
    for &(name, target) in rewarm_fuzzing::TARGETS {
        let seeds = inputs(&fuzz.join("seeds").join(name));
        assert!(!seeds.is_empty(), "no seeds in fuzz/seeds/{name}");
        let regressions = inputs(&fuzz.join("regressions").join(name));
        for file in seeds.iter().chain(&regressions) {
            let bytes = std::fs::read(file).unwrap();
            if std::panic::catch_unwind(|| target(&bytes)).is_err() {
                failed.push(file.display().to_string());
            }
        }
        println!(
            "{name}: {} seeds, {} regressions",
            seeds.len(),
            regressions.len()
        );
    }
    assert!(
        failed.is_empty(),
        "inputs that fail their target: {failed:#?}"
    );
}

/// The new targets' seeds are valid files, so that fuzzing starts from inputs that reach past the first
/// check of each reader (a seed that is refused at once would leave the deep paths to chance).
#[test]
fn the_seeds_of_the_newer_targets_are_valid_files() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds");
    let read = |target: &str, name: &str| std::fs::read(seeds.join(target).join(name)).unwrap();
    let here = Path::new("seed");

    let tok = read("tokenizer_json", "bpe-300.json");
    let tok = rewarm_data::Tokenizer::from_hf_bytes(here, &tok, None).unwrap();
    assert_eq!(tok.info().vocab_size, 300);
    let tok = read("tokenizer_json", "wordlevel.json");
    let tok = rewarm_data::Tokenizer::from_hf_bytes(here, &tok, None).unwrap();
    assert_eq!(tok.encode("hello world").unwrap(), [2, 3]);

    for name in ["smollm2-135m.json", "pythia-70m.json"] {
        let json = serde_json::from_slice(&read("hf_config", name)).unwrap();
        rewarm_arch::ModelConfig::from_hf_config(&json).unwrap();
    }
    let text = String::from_utf8(read("safetensors_index", "two-shards.json")).unwrap();
    assert_eq!(
        rewarm_interop::hf::index_files(here, &text).unwrap().len(),
        2
    );
    let text = String::from_utf8(read("state_json", "state.json")).unwrap();
    assert_eq!(
        rewarm_runfolder::TrainState::parse(here, &text)
            .unwrap()
            .step,
        375
    );
    for name in ["records.jsonl", "torn.jsonl", "torn-utf8.jsonl"] {
        let records = rewarm_runfolder::metrics_log::parse(here, &read("metrics_jsonl", name));
        assert_eq!(records.unwrap().len(), 3, "{name}: eval, train, rollback");
    }
    let corpus = read("corpus", "jsonl.bin");
    let docs = rewarm_data::corpus::Documents::from_reader(
        here,
        rewarm_data::corpus::InputKind::Jsonl,
        &Default::default(),
        std::io::Cursor::new(corpus[1..].to_vec()),
    )
    .unwrap();
    assert_eq!(docs.count(), 3);
}
