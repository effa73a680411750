//! Token shards (`rewarm_data::shard`): any bytes are either refused with an error or give a shard whose
//! every token can be read. The harness also re-checks each input with its checksum field fixed up, so
//! mutations reach the length and token-reading code instead of all stopping at the checksum.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewarm_data::shard::{Shard, HEADER_BYTES};
use rewarm_data::TokenStream;
use std::path::Path;

fn exercise(bytes: &[u8]) {
    let path = Path::new("fuzz.tok");
    let Ok(shard) = Shard::from_bytes(path, bytes) else {
        return;
    };
    let tokens = shard.tokens();
    let n = tokens.len();
    assert_eq!(n as u64, shard.len());
    assert_eq!(bytes.len(), HEADER_BYTES + n * shard.header().dtype.bytes());
    let mut all = vec![0u32; n];
    tokens.copy_to(0, &mut all);
    for (i, &t) in all.iter().enumerate() {
        assert_eq!(tokens.get(i), t);
    }
    // Two copies as one stream: sequences across the shard boundary.
    let again = Shard::from_bytes(path, bytes).expect("valid once, valid twice");
    let stream = TokenStream::new(vec![shard, again]);
    assert_eq!(stream.len(), 2 * n as u64);
    for seq_len in [1usize, 3, 7] {
        let count = stream.sequences(seq_len).min(64);
        let mut out = vec![0u32; seq_len + 1];
        for j in 0..count {
            stream.copy_sequence(j, seq_len, &mut out);
            let start = j as usize * seq_len;
            for (k, &t) in out.iter().enumerate() {
                assert_eq!(t, all[(start + k) % n]);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    exercise(data);
    if data.len() >= HEADER_BYTES {
        let mut fixed = data.to_vec();
        let sum = xxhash_rust::xxh3::xxh3_64(&fixed[HEADER_BYTES..]);
        fixed[32..40].copy_from_slice(&sum.to_le_bytes());
        exercise(&fixed);
    }
});
