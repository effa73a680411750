//! `manifest.json`: what a prepared folder holds, and how it was made.

use crate::corpus::CorpusOptions;
use crate::error::{DataError, Result};
use crate::shard::TokenDtype;
use crate::tokenizer::TokenizerInfo;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const MANIFEST_FILE: &str = "manifest.json";
pub const FORMAT: &str = "rewarm-prepared";
pub const FORMAT_VERSION: u32 = 1;

/// How documents are assigned to the validation split. Whole documents are held out, never lines of one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SplitRule {
    /// A stable hash of the document text picks about `validation_fraction` of documents.
    Hash { validation_fraction: f64, seed: u64 },
    /// Every n-th document (input order) is held out.
    Every { n: u64 },
    /// Validation documents come from separate inputs (`validation_inputs`).
    Given,
    /// No validation split.
    None,
}

impl Default for SplitRule {
    /// About 5% of documents, chosen by hash (issue #2 default).
    fn default() -> Self {
        SplitRule::Hash {
            validation_fraction: 0.05,
            seed: 0,
        }
    }
}

impl SplitRule {
    /// Whether the `index`-th document with text `doc` goes to validation (not used for `Given`).
    pub fn is_validation(&self, index: u64, doc: &str) -> bool {
        match *self {
            SplitRule::Hash {
                validation_fraction,
                seed,
            } => {
                let h = xxhash_rust::xxh3::xxh3_64_with_seed(doc.as_bytes(), seed);
                (h as f64 / (u64::MAX as f64 + 1.0)) < validation_fraction
            }
            SplitRule::Every { n } => n > 0 && index % n == n - 1,
            SplitRule::Given | SplitRule::None => false,
        }
    }
}

impl std::str::FromStr for SplitRule {
    type Err = DataError;
    /// `hash:0.05`, `every:20`, `none`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            DataError::Input(format!(
                "--split `{s}`: expected `hash:FRACTION` (e.g. hash:0.05), `every:N` or `none`"
            ))
        };
        match s.split_once(':') {
            Some(("hash", f)) => {
                let f: f64 = f.parse().map_err(|_| bad())?;
                if !(0.0..1.0).contains(&f) {
                    return Err(bad());
                }
                Ok(SplitRule::Hash {
                    validation_fraction: f,
                    seed: 0,
                })
            }
            Some(("every", n)) => Ok(SplitRule::Every {
                n: n.parse().ok().filter(|&n| n >= 2).ok_or_else(bad)?,
            }),
            None if s == "none" => Ok(SplitRule::None),
            _ => Err(bad()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardInfo {
    /// File name relative to the prepared folder.
    pub file: String,
    pub tokens: u64,
    pub documents: u64,
    pub source_bytes: u64,
    /// xxh3-64 of the token bytes, as in the shard header (hex).
    pub checksum: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitInfo {
    pub documents: u64,
    pub tokens: u64,
    /// UTF-8 bytes of the source text, so losses can be reported per byte.
    pub source_bytes: u64,
    pub shards: Vec<ShardInfo>,
}

impl SplitInfo {
    /// Source bytes per token (0 when empty).
    pub fn bytes_per_token(&self) -> f64 {
        if self.tokens == 0 {
            0.0
        } else {
            self.source_bytes as f64 / self.tokens as f64
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub rewarm_version: String,
    pub tokenizer: TokenizerInfo,
    pub token_dtype: TokenDtype,
    pub inputs: Vec<String>,
    pub validation_inputs: Vec<String>,
    pub corpus: CorpusOptions,
    pub split: SplitRule,
    pub train: SplitInfo,
    pub validation: SplitInfo,
}

impl Manifest {
    /// What `rewarm inspect` prints about the folder `dir` once its shards check out: the tokenizer,
    /// the split rule, and per split documents, tokens, bytes and shards.
    pub fn summary(&self, dir: &Path) -> String {
        let t = &self.tokenizer;
        let mut text = format!(
            "{}: all {} shards match manifest.json\n",
            dir.display(),
            self.train.shards.len() + self.validation.shards.len()
        );
        text += &format!(
            "tokenizer   {} ({}), vocab {}, end-of-text id {}, hash {}\n",
            t.name,
            t.kind,
            t.vocab_size,
            t.eot_id,
            t.short_hash(16)
        );
        text += &format!(
            "tokens      {:?}, split {:?}\n",
            self.token_dtype, self.split
        );
        text += &format!(
            "{:<11} {:>10} {:>14} {:>14} {:>11} {:>7}\n",
            "split", "documents", "tokens", "source bytes", "bytes/token", "shards"
        );
        for (name, s) in [("train", &self.train), ("validation", &self.validation)] {
            text += &format!(
                "{:<11} {:>10} {:>14} {:>14} {:>11.3} {:>7}\n",
                name,
                s.documents,
                s.tokens,
                s.source_bytes,
                s.bytes_per_token(),
                s.shards.len()
            );
        }
        text
    }
}

impl Manifest {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(MANIFEST_FILE)
    }

    /// Reads and checks a prepared folder's manifest (not its shards).
    pub fn load(dir: &Path) -> Result<Self> {
        let path = Self::path(dir);
        let text = std::fs::read_to_string(&path).map_err(|e| DataError::Manifest {
            path: path.clone(),
            why: format!("cannot read ({e})"),
            fix: "point at a folder written by `rewarm prepare`".into(),
        })?;
        Self::parse(&path, &text)
    }

    /// Parses and checks the text of a manifest; `path` labels errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let m: Manifest = serde_json::from_str(text).map_err(|e| DataError::Manifest {
            path: path.to_owned(),
            why: format!("invalid manifest ({e})"),
            fix: "re-create the folder with `rewarm prepare`".into(),
        })?;
        if m.format != FORMAT || m.format_version != FORMAT_VERSION {
            return Err(DataError::Manifest {
                path: path.to_owned(),
                why: format!(
                    "format {} v{}, this rewarm reads {FORMAT} v{FORMAT_VERSION}",
                    m.format, m.format_version
                ),
                fix: "re-create the folder with this version's `rewarm prepare`".into(),
            });
        }
        let hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
        let bad = |why: String| DataError::Manifest {
            path: path.to_owned(),
            why,
            fix: "the manifest was edited or damaged; re-create the folder with `rewarm prepare`"
                .into(),
        };
        let id = &m.tokenizer.hash;
        if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad(format!(
                "tokenizer.hash `{}` is not a digest (up to 128 ASCII letters, digits and punctuation)",
                id.escape_debug()
            )));
        }
        for (split, info) in [("train", &m.train), ("validation", &m.validation)] {
            for s in &info.shards {
                if s.checksum.len() != 16 || !hex(&s.checksum) {
                    return Err(bad(format!(
                        "{split} shard `{}`: checksum `{}` is not 16 hex digits",
                        s.file.escape_debug(),
                        s.checksum.escape_debug()
                    )));
                }
            }
        }
        Ok(m)
    }

    /// Checks that this folder was made with the tokenizer the caller expects.
    pub fn check_tokenizer(&self, dir: &Path, expected: &TokenizerInfo) -> Result<()> {
        if self.tokenizer.hash != expected.hash || self.tokenizer.eot_id != expected.eot_id {
            return Err(DataError::Manifest {
                path: Self::path(dir),
                why: format!(
                    "shards were made with tokenizer `{}` ({}, hash {}), but `{}` (hash {}) was requested",
                    self.tokenizer.name,
                    self.tokenizer.kind,
                    self.tokenizer.short_hash(12),
                    expected.name,
                    expected.short_hash(12)
                ),
                fix: "prepare the source again with the requested tokenizer, or request the one it was made with".into(),
            });
        }
        Ok(())
    }

    pub fn split(&self, split: Split) -> &SplitInfo {
        match split {
            Split::Train => &self.train,
            Split::Validation => &self.validation,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Validation,
}

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Validation => "validation",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_rules_parse_and_hold_out_about_the_fraction() {
        assert_eq!(
            "every:20".parse::<SplitRule>().unwrap(),
            SplitRule::Every { n: 20 }
        );
        assert!("hash:1.5".parse::<SplitRule>().is_err());
        assert!("foo"
            .parse::<SplitRule>()
            .err()
            .unwrap()
            .to_string()
            .contains("hash:FRACTION"));
        let rule = SplitRule::default();
        let held = (0..20_000)
            .filter(|i| rule.is_validation(*i, &format!("document number {i}")))
            .count();
        assert!((800..1200).contains(&held), "{held} of 20000 held out");
        // Stable: the same text always lands in the same split, whatever its position.
        let doc = "a fixed document";
        assert!((0..100).all(|i| rule.is_validation(i, doc) == rule.is_validation(0, doc)));
        let every = SplitRule::Every { n: 20 };
        assert_eq!(
            (0..100)
                .filter(|&i| every.is_validation(i, ""))
                .collect::<Vec<_>>(),
            [19, 39, 59, 79, 99]
        );
    }
}
