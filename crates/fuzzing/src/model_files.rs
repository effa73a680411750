//! Readers of model files from elsewhere: GGUF, safetensors, the safetensors index, HF config.json.

use crate::names;
use rewarm_arch::ModelConfig;
use rewarm_interop::gguf::GgufFile;
use rewarm_interop::gguf_import::{llama_config_json, llama_shape, plan, unpermute_rows};
use rewarm_interop::gguf_tokenizer::tokenizer_from_gguf;
use rewarm_interop::hf::{index_files, read_safetensors};
use std::io::Cursor;
use std::path::Path;

/// GGUF (`GgufFile`, `gguf_import`, `gguf_tokenizer`): refused with an error naming the file, or a tensor
/// table whose every tensor can be read and dequantized; the import checks (Llama shape, tensor plan, q/k
/// unpermutation) and the tokenizer rebuild run on what opens.
pub fn gguf(data: &[u8]) {
    let mut g = match GgufFile::from_reader(Cursor::new(data), "fuzz.gguf") {
        Ok(g) => g,
        Err(e) => return names(e, "fuzz.gguf"),
    };
    for t in g.tensors.clone() {
        assert!(g.data_start + t.offset + t.size <= data.len() as u64);
        if let Ok(values) = g.read_f32(&t) {
            assert_eq!(values.len() as u64, t.numel());
        }
    }
    let tokenizer = tokenizer_from_gguf(&g).ok();
    let Ok(shape) = llama_shape(&g) else {
        return;
    };
    let _ = llama_config_json(&shape, tokenizer.as_ref());
    let Ok(planned) = plan(&g, &shape) else {
        return;
    };
    let planned: Vec<_> = planned
        .into_iter()
        .map(|p| (p.info.clone(), p.unpermute_heads))
        .collect();
    for (info, heads) in planned {
        let values = g.read_f32(&info).expect("planned tensors read");
        if let Some(n_head) = heads {
            let _ = unpermute_rows(&values, n_head, shape.hidden_size);
        }
    }
}

/// safetensors (`read_safetensors`, which checkpoint and Hugging Face weight loading go through): refused
/// with an error naming the file, or tensors whose data are exactly the size their shape and type need,
/// sorted by name.
pub fn safetensors(data: &[u8]) {
    let tensors = match read_safetensors(data, Path::new("fuzz.safetensors")) {
        Ok(tensors) => tensors,
        Err(e) => return names(e, "fuzz.safetensors"),
    };
    let mut checksum = 0u8;
    for t in &tensors {
        if let Some(dtype) = t.dtype {
            assert_eq!(
                t.data.len(),
                t.shape.iter().product::<usize>() * dtype.size()
            );
        }
        // Touch every byte (the sanitizer checks each read is inside the input).
        checksum ^= t.data.iter().fold(0u8, |a, &b| a ^ b);
    }
    std::hint::black_box(checksum);
    assert!(tensors.windows(2).all(|w| w[0].name < w[1].name));
}

/// `model.safetensors.index.json` (`index_files`): refused with an error naming the file, or at least one
/// plain `.safetensors` file name that cannot leave the model's folder.
pub fn safetensors_index(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let files = match index_files(Path::new("fuzz/model.safetensors.index.json"), &text) {
        Ok(files) => files,
        Err(e) => return names(e, "fuzz/model.safetensors.index.json"),
    };
    assert!(!files.is_empty());
    for f in &files {
        let p = Path::new(f);
        assert!(
            p.file_name() == Some(p.as_os_str()) && f.ends_with(".safetensors"),
            "`{f}` is not a plain file name"
        );
    }
}

/// A Hugging Face `config.json` (`ModelConfig::from_hf_config`): refused, or a valid model whose sizes
/// (parameters, FLOPs per token) can be computed and whose config.json, written back, reads as the same
/// model.
pub fn hf_config(data: &[u8]) {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Ok(config) = ModelConfig::from_hf_config(&json) else {
        return;
    };
    let _ = config.num_params();
    let _ = config.non_embedding_params();
    let _ = config.flops_per_token(config.max_seq_len);
    let back = ModelConfig::from_hf_config(&config.to_hf_config()).expect("written back, it reads");
    assert_eq!(config.first_difference(&back), None);
}
