//! safetensors (`rewarm_interop::hf::read_safetensors`, which checkpoint and Hugging Face weight loading
//! go through): any bytes are refused with an error naming the file, or give tensors whose data slices
//! are exactly the size their shape and type need.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewarm_interop::hf::read_safetensors;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.safetensors");
    match read_safetensors(data, path) {
        Err(e) => assert!(e.to_string().contains("fuzz.safetensors"), "{e}"),
        Ok(tensors) => {
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
    }
});
