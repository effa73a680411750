#!/usr/bin/env python3
"""Writes the checked-in seed inputs of the fuzz targets (fuzz/seeds/TARGET/): small valid files of each
format. Run from anywhere: python3 fuzz/make_seeds.py. Shard seeds carry checksum 0; the `shard` target
also tries every input with its checksum fixed up. The manifest seed prepared-en.json and the example plans
are copied from a prepared folder and examples/ (see the end)."""
import json
import os
import re
import shutil
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = os.path.join(ROOT, "fuzz", "seeds")


def out(target, name, data):
    os.makedirs(os.path.join(SEEDS, target), exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(os.path.join(SEEDS, target, name), mode) as f:
        f.write(data)


# --- plans and sweeps: the examples, the plan tests' base plan, and each schedule kind
for name in os.listdir(os.path.join(ROOT, "examples")):
    if name.endswith(".toml"):
        shutil.copy(os.path.join(ROOT, "examples", name), os.path.join(SEEDS, "plan_toml", name))
tests = open(os.path.join(ROOT, "crates/plan/tests/plan.rs")).read()
BASE = re.search(r'const BASE: &str = r#"(.*?)"#;', tests, re.S).group(1)
out("plan_toml", "tests-base.toml", BASE)
COSINE = 'schedule = { kind = "cosine", max_lr = 1e-3, min_lr = 1e-4, warmup = 0.04 }'
SCHEDULES = [
    'schedule = { kind = "anneal", start_lr = 1.65e-4, min_lr = 3e-5 }',
    'schedule = { kind = "constant", lr = 3e-5 }',
    'schedule = { kind = "infinite", max_lr = 3e-4, const_lr = 1.65e-4, min_lr = 3e-5, cooldown = "inverse_sqrt", alpha = 10.0 }',
    'schedule = { kind = "linear", max_lr = 1e-3 }',
    'schedule = { kind = "repeated_cosine", max_lr = 3e-4, min_lr = 3e-5, repeats = 3 }',
    'schedule = { kind = "wsd", max_lr = 1e-3, decay_fraction = 0.2, shape = "one_minus_sqrt" }',
]
for i, s in enumerate(SCHEDULES):  # the second stage's schedule replaced
    head, _, tail = BASE.rpartition(COSINE)
    out("plan_toml", f"sched-{i}.toml", head + s + tail)
t = BASE.replace("[train]\nbatch_tokens = 128",
                 "[train]\nbatch_tokens = 128\nmicro_batch_sequences = 4\nbatch_doubling_tokens = [4_000, 20_000]")
t = t.replace("replay = { fraction = 0.25 }",
              'replay = { fraction = 0.25, sources = ["en", "code"], weights = [1.0, 2.0], pool = "whole", mode = "additive" }\noptimizer = "keep"')
out("plan_toml", "doubling-replay.toml", t)
out("plan_toml", "sweep-own-base.toml",
    'base = "x.toml"\nunion_baseline = true\n[grid]\n"stages.1.replay.fraction" = [0.0, 0.5]\nseed = [1, 2]\n\n#@base\n' + BASE)


# --- token shards
def shard(width, tokens, docs):
    payload = b"".join(struct.pack("<H" if width == 2 else "<I", t) for t in tokens)
    header = b"RWSHARD\0" + struct.pack("<IIQQQ", 1, width, len(tokens), docs, 0) + b"\0" * 24
    return header + payload


out("shard", "u16.tok", shard(2, [5, 6, 7, 0, 9, 10, 0], 2))
out("shard", "u32.tok", shard(4, [70000, 1, 0, 3, 0], 2))
out("shard", "empty.tok", shard(2, [], 0))
out("shard", "tokens-300.tok", shard(2, [(i * 37) % 8192 for i in range(299)] + [0], 12))


# --- manifests (variants of a real one)
m = json.load(open(os.path.join(SEEDS, "manifest", "prepared-en.json")))
m["split"] = {"kind": "hash", "validation_fraction": 0.05, "seed": 3}
m["token_dtype"] = "u32"
m["corpus"] = {"doc_mode": "blank-line", "text_field": "body", "lossy": True}
m["tokenizer"] = {"kind": "gpt2", "name": "gpt2", "hash": "abc", "vocab_size": 50257, "eot_id": 50256}
out("manifest", "hash-split.json", json.dumps(m))
m["split"] = {"kind": "every", "n": 20}
m["validation"] = {"documents": 0, "tokens": 0, "source_bytes": 0, "shards": []}
out("manifest", "every-split.json", json.dumps(m, indent=1))
m["split"] = {"kind": "none"}
out("manifest", "no-split.json", json.dumps(m))


# --- safetensors
def safetensors(tensors, meta=None):
    header, offset, blob = {}, 0, b""
    if meta:
        header["__metadata__"] = meta
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blob += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + blob


def f32(xs):
    return b"".join(struct.pack("<f", x) for x in xs)


out("safetensors", "f32.safetensors",
    safetensors([("w", "F32", [2, 3], f32(range(6))), ("b", "F32", [3], f32([1, 2, 3]))], {"format": "pt"}))
out("safetensors", "mixed.safetensors", safetensors([
    ("a", "BF16", [2], b"\x80\x3f\x00\x40"), ("h", "F16", [1, 2], b"\x00\x3c\x00\x40"),
    ("mask", "BOOL", [2, 2], b"\x01\x00\x00\x01"), ("i", "I64", [1], struct.pack("<q", 7))]))
out("safetensors", "empty.safetensors", safetensors([]))
out("safetensors", "scalar.safetensors", safetensors([("s", "F32", [], f32([2.5])), ("z", "F32", [0, 4], b"")]))


# --- GGUF, as crates/interop/tests/common builds them
def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def meta_value(kind, x):
    return {
        "u32": lambda: struct.pack("<II", 4, x),
        "f32": lambda: struct.pack("<If", 6, x),
        "bool": lambda: struct.pack("<IB", 7, x),
        "str": lambda: struct.pack("<I", 8) + gstr(x),
        "strs": lambda: struct.pack("<IIQ", 9, 8, len(x)) + b"".join(gstr(s) for s in x),
        "i32s": lambda: struct.pack("<IIQ", 9, 5, len(x)) + b"".join(struct.pack("<i", i) for i in x),
    }[kind]()


def gguf(meta, tensors):
    b = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(meta))
    for key, (kind, x) in meta:
        b += gstr(key) + meta_value(kind, x)
    offset, data = 0, b""
    for name, dims, ty, raw in tensors:
        b += gstr(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        b += struct.pack("<IQ", ty, offset)
        pad = -len(raw) % 32
        data += raw + b"\0" * pad
        offset += len(raw) + pad
    return b + b"\0" * (-len(b) % 32) + data


# GGML types: 0 F32, 1 F16, 2 Q4_0 (f16 scale + 16 bytes per 32 values), 8 Q8_0 (f16 scale + 32 i8).
out("gguf", "types.gguf", gguf(
    [("general.architecture", ("str", "other")), ("general.alignment", ("u32", 32))],
    [("a", [4], 0, f32([1, 2, 3, 4])), ("h", [2, 2], 1, struct.pack("<4e", 1, 2, 3, 4)),
     ("q8", [32], 8, struct.pack("<e", 0.5) + bytes(range(32))),
     ("q4", [32, 1], 2, struct.pack("<e", 0.25) + bytes(range(16)))]))
# A tiny Llama: hidden 4, 2 heads of 2, 1 kv head, ffn 4, 1 layer, vocab 6, tied embeddings, a tokenizer.
c, i, v, kv = 4, 4, 6, 2


def tensor(name, shape):  # shape in PyTorch order; GGUF stores it reversed
    n = 1
    for d in shape:
        n *= d
    return (name, list(reversed(shape)), 0, f32([0.01 * k for k in range(n)]))


tensors = [tensor("token_embd.weight", [v, c]), tensor("output_norm.weight", [c])]
for name, shape in [("attn_norm", [c]), ("attn_q", [c, c]), ("attn_k", [kv, c]), ("attn_v", [kv, c]),
                    ("attn_output", [c, c]), ("ffn_norm", [c]), ("ffn_gate", [i, c]), ("ffn_up", [i, c]),
                    ("ffn_down", [c, i])]:
    tensors.append(tensor(f"blk.0.{name}.weight", shape))
tokens = ["a", "b", "ab", "<|endoftext|>", "Ġ", "Ġa"]
meta = [
    ("general.architecture", ("str", "llama")), ("llama.attention.head_count", ("u32", 2)),
    ("llama.attention.head_count_kv", ("u32", 1)), ("llama.embedding_length", ("u32", c)),
    ("llama.feed_forward_length", ("u32", i)), ("llama.block_count", ("u32", 1)),
    ("llama.context_length", ("u32", 16)), ("llama.attention.layer_norm_rms_epsilon", ("f32", 1e-5)),
    ("llama.rope.freq_base", ("f32", 10000.0)), ("tokenizer.ggml.model", ("str", "gpt2")),
    ("tokenizer.ggml.pre", ("str", "smollm")), ("tokenizer.ggml.tokens", ("strs", tokens)),
    ("tokenizer.ggml.token_type", ("i32s", [1, 1, 1, 3, 1, 1])),
    ("tokenizer.ggml.merges", ("strs", ["a b", "Ġ a"])), ("tokenizer.ggml.eos_token_id", ("u32", 3)),
    ("tokenizer.ggml.bos_token_id", ("u32", 3)), ("tokenizer.ggml.add_bos_token", ("bool", 1)),
]
out("gguf", "tiny-llama.gguf", gguf(meta, tensors))


# --- text corpora: the first byte picks the format (0 JSONL, 1 text per file, 2 per line, 3 per blank-line
# block; +4 lossy), the rest is the file
out("corpus", "jsonl.bin", b"\x00" + b'{"text": "one doc"}\r\n\n{"text": "two \\u00fc", "id": 3}\n{"text": "no newline"}')
out("corpus", "file-bom.bin", b"\x01\xef\xbb\xbfGr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln,\r\ncaf\xc3\xa9.\n")
out("corpus", "lines.bin", b"\x02first\nsecond\r\n\n  \nthird\r")
out("corpus", "blocks.bin", b"\x03a\nb\n\n\nc\n \t\nd\ne")
out("corpus", "lossy-latin1.bin", b"\x06caf\xe9\nna\xefve\n")
out("corpus", "jsonl-wrong-field.bin", b"\x00" + b'{"body": "x"}\n')

# --- tokenizer.json: a byte-level BPE as `rewarm tokenizer train` writes it (fitted on the plan seeds'
# text with --vocab-size 300), when a rewarm binary is given: REWARM=path/to/rewarm python3 fuzz/make_seeds.py
if os.environ.get("REWARM"):
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        text = os.path.join(tmp, "text.txt")
        with open(text, "w") as f:
            f.write("Hello world, Grüße aus Köln. The learning rate rewarms. 42 tokens\n" * 50)
        dest = os.path.join(SEEDS, "tokenizer_json", "bpe-300.json")
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        subprocess.run([os.environ["REWARM"], "tokenizer", "train", text, "--vocab-size", "300",
                        "--out", dest], check=True)
out("tokenizer_json", "wordlevel.json", json.dumps({
    "version": "1.0", "truncation": None, "padding": None,
    "added_tokens": [{"id": 0, "content": "</s>", "single_word": False, "lstrip": False, "rstrip": False,
                      "normalized": False, "special": True}],
    "normalizer": None, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": None, "decoder": None,
    "model": {"type": "WordLevel", "vocab": {"</s>": 0, "[UNK]": 1, "hello": 2, "world": 3},
              "unk_token": "[UNK]"}}))

# --- state.json, as `rewarm train` writes it
state = {"step": 375, "optimizer_step": 370, "lr_scale": 0.5, "rollbacks": 1,
         "tokens_by_source": {"de": 3072000, "en": 12}, "data_fingerprint": "35d294684cd2c43ce636dd8c16ac7d5e",
         "rewarm_version": "0.1.0"}
out("state_json", "state.json", json.dumps(state, indent=2))
out("state_json", "fresh.json", json.dumps({**state, "step": 0, "tokens_by_source": {}}))

# --- metrics.jsonl: each record kind, a torn last line, a line cut inside a UTF-8 character
records = [
    {"schema": 1, "kind": "eval", "step": 0, "stage": "cpt-de", "tokens": 0, "set": "de", "loss": 6.52,
     "perplexity": 682.9, "bits_per_byte": 4.67, "eval_tokens": 259072},
    {"schema": 1, "kind": "train", "step": 5, "stage": "cpt-de", "tokens": 40960, "tokens_by_source": {"de": 40960},
     "lr": 0.0005, "loss": 5.34, "grad_norm": 2.45, "batch_sequences": 32, "replay_fraction": 0.0,
     "tokens_per_second": 4642.0},
    {"schema": 1, "kind": "rollback", "step": 0, "failed_step": 15, "lr_scale": 0.5},
    {"schema": 1, "kind": "a-kind-from-a-newer-rewarm", "step": 7},
]
lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
out("metrics_jsonl", "records.jsonl", lines)
out("metrics_jsonl", "torn.jsonl", lines + '{"schema": 1, "kind": "eval", "st')
out("metrics_jsonl", "torn-utf8.jsonl", lines.encode() + '{"schema":1,"kind":"eval","stage":"kö'.encode()[:-1])

# --- model.safetensors.index.json
out("safetensors_index", "two-shards.json", json.dumps({
    "metadata": {"total_size": 1234},
    "weight_map": {"model.embed_tokens.weight": "model-00001-of-00002.safetensors",
                   "lm_head.weight": "model-00002-of-00002.safetensors",
                   "model.norm.weight": "model-00002-of-00002.safetensors"}}))
out("safetensors_index", "escape.json", json.dumps({"weight_map": {"x": "../escape.safetensors"}}))

# --- Hugging Face config.json: SmolLM2-135M (Llama) and Pythia-70M (GPT-NeoX)
out("hf_config", "smollm2-135m.json", json.dumps({
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 576,
    "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
    "max_position_embeddings": 8192, "vocab_size": 49152, "rms_norm_eps": 1e-5, "rope_theta": 100000,
    "rope_scaling": None, "tie_word_embeddings": True, "hidden_act": "silu", "torch_dtype": "bfloat16"}, indent=2))
out("hf_config", "pythia-70m.json", json.dumps({
    "architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox", "hidden_size": 512,
    "intermediate_size": 2048, "num_hidden_layers": 6, "num_attention_heads": 8,
    "max_position_embeddings": 2048, "vocab_size": 50304, "layer_norm_eps": 1e-5, "rotary_pct": 0.25,
    "rotary_emb_base": 10000, "use_parallel_residual": True, "tie_word_embeddings": False,
    "hidden_act": "gelu"}, indent=2))
