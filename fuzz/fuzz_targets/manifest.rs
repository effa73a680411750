//! `manifest.json` (`rewarm_data::Manifest::parse`): any text is refused with an error or gives a manifest
//! that every accessor, the tokenizer check and a JSON round trip handle. Also the `--split` rule parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewarm_data::manifest::{Manifest, Split, SplitRule};
use rewarm_data::TokenizerInfo;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = text.parse::<SplitRule>();
    let path = Path::new("fuzz/manifest.json");
    let Ok(m) = Manifest::parse(path, &text) else {
        return;
    };
    for split in [Split::Train, Split::Validation] {
        let s = m.split(split);
        let _ = s.bytes_per_token();
        for (i, shard) in s.shards.iter().enumerate() {
            let _ = m.split.is_validation(i as u64, &shard.file);
        }
    }
    let other = TokenizerInfo {
        kind: "hf".into(),
        name: "other".into(),
        hash: "0123456789abcdef0123456789abcdef".into(),
        vocab_size: 1,
        eot_id: 0,
    };
    let _ = m.check_tokenizer(Path::new("fuzz"), &other);
    let _ = m.check_tokenizer(Path::new("fuzz"), &m.tokenizer);
    let json = serde_json::to_string(&m).expect("a parsed manifest serializes");
    // What rewarm writes it reads back (equality is not asserted: serde_json's default float parsing may
    // differ from the shortest representation by an ulp).
    let back = Manifest::parse(path, &json).expect("a written manifest parses");
    assert_eq!(back.train.shards, m.train.shards);
    assert_eq!(back.tokenizer, m.tokenizer);
});
