#!/usr/bin/env python3
"""A plain numpy (float64) Llama forward over a Hugging Face folder, as the reference rewarm is checked
against: crates/train/tests/smollm2.rs compares rewarm's forward on the SmolLM2 GGUF import with the
fixture this script writes.

Only numpy is needed: model.safetensors and config.json are parsed by hand. The token ids are given with
--ids (rewarm's own tokenization is checked separately against them); with the optional `tokenizers`
package, --text is tokenized with the folder's tokenizer.json instead.

    rewarm import gguf SmolLM2-135M-Instruct.Q4_1.gguf --out /tmp/smollm2-hf
    python3 scripts/reference_forward.py /tmp/smollm2-hf --text "The capital of France is Paris. …" \
        --prompt "The capital of France is" --out crates/train/tests/fixtures/smollm2_reference.json

The fixture holds, for every position t: the log-sum-exp of the logits, the log-probability of the next
token, the argmax, and the logits of every `--stride`-th vocabulary id; the mean next-token loss; and the
greedy continuation of --prompt.
"""
import argparse
import json
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": None, "F64": np.float64}


def load_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = data[begin:end]
        if info["dtype"] == "BF16":
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            array = bits.view(np.float32)
        else:
            array = np.frombuffer(raw, dtype=np.dtype(DTYPES[info["dtype"]]).newbyteorder("<"))
        tensors[name] = array.reshape(info["shape"]).astype(np.float64)
    return tensors


class Llama:
    def __init__(self, folder):
        self.cfg = json.load(open(f"{folder}/config.json"))
        assert self.cfg["model_type"] == "llama", "this reference implements Llama only"
        self.w = load_safetensors(f"{folder}/model.safetensors")
        c = self.cfg
        self.h, self.hkv = c["num_attention_heads"], c.get("num_key_value_heads", c["num_attention_heads"])
        self.hd = c["hidden_size"] // self.h
        theta = c.get("rope_theta") or c.get("rope_parameters", {}).get("rope_theta", 10000.0)
        self.inv_freq = 1.0 / theta ** (np.arange(0, self.hd, 2) / self.hd)
        self.eps = c["rms_norm_eps"]

    def norm(self, x, weight):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + self.eps) * weight

    def rope(self, x):  # (heads, T, hd), HF rotate_half layout
        t = x.shape[1]
        angles = np.outer(np.arange(t), self.inv_freq)
        angles = np.concatenate([angles, angles], -1)
        half = self.hd // 2
        rotated = np.concatenate([-x[..., half:], x[..., :half]], -1)
        return x * np.cos(angles) + rotated * np.sin(angles)

    def forward(self, ids):  # ids (T,) -> logits (T, V)
        w, t = self.w, len(ids)
        x = w["model.embed_tokens.weight"][ids]
        mask = np.triu(np.full((t, t), -np.inf), 1)
        for i in range(self.cfg["num_hidden_layers"]):
            p = f"model.layers.{i}."
            h = self.norm(x, w[p + "input_layernorm.weight"])
            q = (h @ w[p + "self_attn.q_proj.weight"].T).reshape(t, self.h, self.hd).transpose(1, 0, 2)
            k = (h @ w[p + "self_attn.k_proj.weight"].T).reshape(t, self.hkv, self.hd).transpose(1, 0, 2)
            v = (h @ w[p + "self_attn.v_proj.weight"].T).reshape(t, self.hkv, self.hd).transpose(1, 0, 2)
            q, k = self.rope(q), self.rope(k)
            group = self.h // self.hkv
            k, v = np.repeat(k, group, 0), np.repeat(v, group, 0)
            scores = q @ k.transpose(0, 2, 1) / np.sqrt(self.hd) + mask
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            y = (scores / scores.sum(-1, keepdims=True)) @ v  # (H, T, hd)
            x = x + y.transpose(1, 0, 2).reshape(t, -1) @ w[p + "self_attn.o_proj.weight"].T
            h = self.norm(x, w[p + "post_attention_layernorm.weight"])
            gate = h @ w[p + "mlp.gate_proj.weight"].T
            up = h @ w[p + "mlp.up_proj.weight"].T
            x = x + (gate / (1 + np.exp(-gate)) * up) @ w[p + "mlp.down_proj.weight"].T
        x = self.norm(x, w["model.norm.weight"])
        head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
        return x @ head.T


def tokenize(folder, text):
    try:
        from tokenizers import Tokenizer
    except ImportError:
        sys.exit("--text needs the `tokenizers` package; pass --ids instead")
    return Tokenizer.from_file(f"{folder}/tokenizer.json").encode(text, add_special_tokens=False).ids


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder")
    ap.add_argument("--text")
    ap.add_argument("--ids", help="comma-separated token ids (instead of --text)")
    ap.add_argument("--prompt", help="also record the greedy continuation of this prompt")
    ap.add_argument("--prompt-ids", help="comma-separated ids of the prompt (instead of tokenizing it)")
    ap.add_argument("--new-tokens", type=int, default=6)
    ap.add_argument("--stride", type=int, default=256)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    model = Llama(args.folder)
    ids = [int(i) for i in args.ids.split(",")] if args.ids else tokenize(args.folder, args.text)
    logits = model.forward(np.array(ids))
    top = logits.max(-1, keepdims=True)
    lse = (top + np.log(np.exp(logits - top).sum(-1, keepdims=True)))[:, 0]
    target_logprob = logits[np.arange(len(ids) - 1), ids[1:]] - lse[:-1]
    keep = list(range(0, logits.shape[1], args.stride))
    fixture = {
        "text": args.text,
        "tokens": ids,
        "mean_loss": float(-target_logprob.mean()),
        # Rounded far below the tolerances (1e-3 nats, 1e-2 logits) to keep the fixture small.
        "logsumexp": np.round(lse, 7).tolist(),
        "target_logprob": np.round(target_logprob, 7).tolist(),
        "argmax": logits.argmax(-1).tolist(),
        "logit_ids": keep,
        "logits": np.round(logits[:, keep], 5).tolist(),
    }
    if args.prompt or args.prompt_ids:
        prompt = [int(i) for i in args.prompt_ids.split(",")] if args.prompt_ids else tokenize(args.folder, args.prompt)
        seq = list(prompt)
        for _ in range(args.new_tokens):
            seq.append(int(model.forward(np.array(seq))[-1].argmax()))
        fixture["greedy"] = {"prompt": args.prompt, "prompt_tokens": prompt, "tokens": seq[len(prompt):]}
        try:
            from tokenizers import Tokenizer
            tok = Tokenizer.from_file(f"{args.folder}/tokenizer.json")
            fixture["greedy"]["text"] = tok.decode(seq[len(prompt):])
        except ImportError:
            pass
    with open(args.out, "w") as f:
        json.dump(fixture, f)
    print(f"{len(ids)} tokens, mean loss {fixture['mean_loss']:.6f} nats", fixture.get("greedy", {}).get("text", ""))


if __name__ == "__main__":
    main()
