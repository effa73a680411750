//! GGUF (`rewarm_interop::gguf`, `gguf_import`, `gguf_tokenizer`): any bytes are refused with an error
//! naming the file, or give a tensor table whose every tensor can be read and dequantized; the import
//! checks (Llama shape, tensor plan, q/k unpermutation) and the tokenizer rebuild run on what opens.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewarm_interop::gguf::GgufFile;
use rewarm_interop::gguf_import::{llama_config_json, llama_shape, plan, unpermute_rows};
use rewarm_interop::gguf_tokenizer::tokenizer_from_gguf;
use std::io::Cursor;

fuzz_target!(|data: &[u8]| {
    let mut g = match GgufFile::from_reader(Cursor::new(data), "fuzz.gguf") {
        Ok(g) => g,
        Err(e) => {
            assert!(e.to_string().contains("fuzz.gguf"), "{e}");
            return;
        }
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
});
