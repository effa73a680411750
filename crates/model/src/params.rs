//! Which parameters get AdamW's decoupled weight decay, decided by Hugging Face name.

/// Modules whose `weight` is the input embedding table (a lookup, not a linear map).
const INPUT_EMBEDDINGS: &[&str] = &["embed_in", "embed_tokens"];

/// Whether AdamW's decoupled weight decay applies to the parameter called `name`.
///
/// Decay applies to the weight matrices of linear layers, including the untied output projections
/// `embed_out` / `lm_head`; to the input embeddings (`embed_in`, `embed_tokens`, also the output
/// projection when tied) only if `decay_embeddings`; never to biases or to norm weights (LayerNorm,
/// RMSNorm). Shrinking those toward 0 would not regularize anything, it would only shift the scale or
/// the offset of a layer (GPT-2, nanoGPT, OLMo; Loshchilov & Hutter 2019 for the decoupling). Only the
/// last two name components are read, so a prefix added by the caller's VarStore path does not matter.
pub fn decay_mask(name: &str, decay_embeddings: bool) -> bool {
    let mut parts = name.rsplit('.');
    let leaf = parts.next().unwrap_or_default(); // "weight" or "bias"
    let module = parts.next().unwrap_or_default(); // "query_key_value", "input_layernorm", "norm", …
    if leaf != "weight" || module.contains("norm") {
        false
    } else if INPUT_EMBEDDINGS.contains(&module) {
        decay_embeddings
    } else {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::decay_mask;

    #[test]
    fn by_name() {
        for (name, expected) in [
            ("gpt_neox.layers.0.attention.query_key_value.weight", true),
            ("gpt_neox.layers.0.attention.query_key_value.bias", false),
            ("gpt_neox.layers.3.mlp.dense_4h_to_h.weight", true),
            ("gpt_neox.layers.3.input_layernorm.weight", false),
            ("gpt_neox.final_layer_norm.weight", false),
            ("gpt_neox.final_layer_norm.bias", false),
            ("embed_out.weight", true),
            ("model.layers.7.self_attn.o_proj.weight", true),
            ("model.layers.7.post_attention_layernorm.weight", false),
            ("model.norm.weight", false),
            ("lm_head.weight", true),
            ("student.model.layers.0.mlp.up_proj.weight", true),
        ] {
            assert_eq!(decay_mask(name, false), expected, "{name}");
            assert_eq!(decay_mask(name, true), expected, "{name}");
        }
        for name in ["gpt_neox.embed_in.weight", "model.embed_tokens.weight"] {
            assert!(!decay_mask(name, false), "{name}");
            assert!(decay_mask(name, true), "{name}");
        }
    }
}
