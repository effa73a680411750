#!/usr/bin/env python3
"""PyTorch eager reference for `rewarm bench train`: the same GPT-NeoX model, step and settings.

The model is written the way crates/model/src/neox.rs writes it: fused QKV laid out per head as
(H, 3, head_dim), rotary ("rotate_half" layout) on the first 25% of each head's dims, LayerNorm with bias,
exact GELU, parallel or sequential residual, untied or tied embeddings, causal
F.scaled_dot_product_attention, log-softmax in f32 + NLL. The step is rewarm's: zero grads, forward, loss,
backward, loss.item(), global grad norm (clip_grad_norm_(1.0), read back), AdamW(0.9, 0.95, eps 1e-8,
wd 0.1 on linear weights only, as rewarm's decay mask; fused where this PyTorch supports it).

    python scripts/bench_torch.py --preset small --seq-len 256 --batch 16 --steps 30 --threads 2
    python scripts/bench_torch.py --config-json <(rewarm bench train --preset small --steps 1 --json)
    python scripts/bench_torch.py --preset gpt2-124m --device cuda --seq-len 1024 --batch 16 [--compile]

On CUDA the forward pass runs under bf16 autocast by default (--precision, as rewarm's train.precision),
--compile wraps the loss in torch.compile (default mode), and peak memory is reported as PyTorch's own
max_memory_allocated/reserved plus device memory in use (total − free), the number rewarm reports.

Prints tokens/s (and --json for a machine-readable line).
"""

import argparse
import json
import math
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# The NeoX presets of crates/arch/src/config.rs (V, C, L, H, max T, tied, parallel residual).
PRESETS = {
    "tiny": dict(vocab_size=512, hidden_size=64, num_layers=2, num_heads=4, max_seq_len=128,
                 tie_embeddings=False, use_parallel_residual=True),
    "small": dict(vocab_size=8192, hidden_size=256, num_layers=4, num_heads=8, max_seq_len=256,
                  tie_embeddings=False, use_parallel_residual=True),
    "pythia-70m": dict(vocab_size=50304, hidden_size=512, num_layers=6, num_heads=8, max_seq_len=2048,
                       tie_embeddings=False, use_parallel_residual=True),
    "pythia-160m": dict(vocab_size=50304, hidden_size=768, num_layers=12, num_heads=12, max_seq_len=2048,
                        tie_embeddings=False, use_parallel_residual=True),
    "pythia-410m": dict(vocab_size=50304, hidden_size=1024, num_layers=24, num_heads=16, max_seq_len=2048,
                        tie_embeddings=False, use_parallel_residual=True),
    "gpt2-124m": dict(vocab_size=50304, hidden_size=768, num_layers=12, num_heads=12, max_seq_len=1024,
                      tie_embeddings=True, use_parallel_residual=False),
}
for _p in PRESETS.values():
    _p.update(intermediate_size=4 * _p["hidden_size"], rotary_pct=0.25, rope_theta=10_000.0, norm_eps=1e-5)

INIT_STD = 0.02


class Rotary(nn.Module):
    def __init__(self, dims, max_seq_len, theta):
        super().__init__()
        inv_freq = 1.0 / (theta ** (torch.arange(0, dims, 2, dtype=torch.int64).float() / dims))
        angles = torch.outer(torch.arange(max_seq_len, dtype=torch.float32), inv_freq)
        angles = torch.cat([angles, angles], dim=-1)  # (T_max, d)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)
        self.dims = dims

    def apply(self, x):  # (B, H, T, hd)
        t, hd = x.shape[-2], x.shape[-1]
        cos = self.cos[:t].to(x.dtype)
        sin = self.sin[:t].to(x.dtype)
        if self.dims == hd:
            return x * cos + rotate_half(x) * sin
        rot, passed = x[..., : self.dims], x[..., self.dims :]
        rot = rot * cos + rotate_half(rot) * sin
        return torch.cat([rot, passed], dim=-1)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


class Attention(nn.Module):
    def __init__(self, c, h, residual_std):
        super().__init__()
        self.query_key_value = nn.Linear(c, 3 * c)
        self.dense = nn.Linear(c, c)
        self.h, self.hd = h, c // h
        nn.init.normal_(self.query_key_value.weight, std=INIT_STD)
        nn.init.normal_(self.dense.weight, std=residual_std)
        nn.init.zeros_(self.query_key_value.bias)
        nn.init.zeros_(self.dense.bias)

    def forward(self, x, rotary):
        b, t, c = x.shape
        qkv = self.query_key_value(x).view(b, t, self.h, 3 * self.hd).transpose(1, 2)  # (B, H, T, 3·hd)
        q, k, v = qkv.chunk(3, dim=-1)
        q, k = rotary.apply(q), rotary.apply(k)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, hd)
        return self.dense(y.transpose(1, 2).reshape(b, t, c))


class Mlp(nn.Module):
    def __init__(self, c, i, residual_std):
        super().__init__()
        self.dense_h_to_4h = nn.Linear(c, i)
        self.dense_4h_to_h = nn.Linear(i, c)
        nn.init.normal_(self.dense_h_to_4h.weight, std=INIT_STD)
        nn.init.normal_(self.dense_4h_to_h.weight, std=residual_std)
        nn.init.zeros_(self.dense_h_to_4h.bias)
        nn.init.zeros_(self.dense_4h_to_h.bias)

    def forward(self, x):
        return self.dense_4h_to_h(F.gelu(self.dense_h_to_4h(x)))  # exact (erf) GELU


class Layer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c, eps = cfg["hidden_size"], cfg["norm_eps"]
        residual_std = INIT_STD / math.sqrt(2 * cfg["num_layers"])
        self.input_layernorm = nn.LayerNorm(c, eps=eps)
        self.post_attention_layernorm = nn.LayerNorm(c, eps=eps)
        self.attention = Attention(c, cfg["num_heads"], residual_std)
        self.mlp = Mlp(c, cfg["intermediate_size"], residual_std)
        self.parallel = cfg["use_parallel_residual"]

    def forward(self, x, rotary):
        attention = self.attention(self.input_layernorm(x), rotary)
        if self.parallel:
            mlp = self.mlp(self.post_attention_layernorm(x))
            return x + attention + mlp
        x = x + attention
        return x + self.mlp(self.post_attention_layernorm(x))


class GptNeox(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        v, c = cfg["vocab_size"], cfg["hidden_size"]
        self.embed_in = nn.Embedding(v, c)
        nn.init.normal_(self.embed_in.weight, std=INIT_STD)
        self.layers = nn.ModuleList(Layer(cfg) for _ in range(cfg["num_layers"]))
        self.final_layer_norm = nn.LayerNorm(c, eps=cfg["norm_eps"])
        self.embed_out = None
        if not cfg["tie_embeddings"]:
            self.embed_out = nn.Linear(c, v, bias=False)
            nn.init.normal_(self.embed_out.weight, std=INIT_STD)
        hd = c // cfg["num_heads"]
        self.rotary = Rotary(int(hd * cfg["rotary_pct"]), cfg["max_seq_len"], cfg["rope_theta"])
        self.vocab_size = v

    def loss(self, inputs, targets):
        x = self.embed_in(inputs)
        for layer in self.layers:
            x = layer(x, self.rotary)
        x = self.final_layer_norm(x)
        w = self.embed_out.weight if self.embed_out is not None else self.embed_in.weight
        logits = F.linear(x, w)  # (B, T, V)
        log_probs = logits.reshape(-1, self.vocab_size).log_softmax(-1, dtype=torch.float32)
        return F.nll_loss(log_probs, targets.reshape(-1))


def decays(name, param):
    """rewarm's decay mask: linear weights (and the untied output projection) only."""
    parts = name.split(".")
    return parts[-1] == "weight" and "norm" not in parts[-2] and parts[-2] != "embed_in"


def make_adamw(model, lr, impl):
    """AdamW as rewarm configures it; impl "auto" takes the first of fused, foreach, for-loop that works."""
    groups = [
        {"params": [p for n, p in model.named_parameters() if decays(n, p)], "weight_decay": 0.1},
        {"params": [p for n, p in model.named_parameters() if not decays(n, p)], "weight_decay": 0.0},
    ]
    flags = {"fused": {"fused": True}, "foreach": {"foreach": True}, "for-loop": {"foreach": False}}
    for name in ("fused", "foreach", "for-loop") if impl == "auto" else (impl,):
        try:
            return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), eps=1e-8, **flags[name]), name
        except (RuntimeError, TypeError, ValueError):
            if impl != "auto":
                raise
    raise RuntimeError("no AdamW implementation works here")


def vm_hwm_bytes():
    """The process's peak resident set size (VmHWM), as rewarm reports it; None off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS))
    ap.add_argument("--config-json", help="`rewarm bench train --json` output (its `model` is used)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seq-len", type=int)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup-steps", type=int, default=3)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--optimizer", choices=["auto", "fused", "foreach", "for-loop"], default="auto",
                    help="AdamW implementation (auto: fused if available)")
    ap.add_argument("--breakdown", action="store_true", help="also time the parts of a step, and the loss head alone")
    ap.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                    help="bf16 autocast of the forward pass (auto: on CUDA only)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model's loss")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.config_json:
        with open(args.config_json) as f:
            cfg = json.load(f)["model"]
        if cfg["family"] != "neox":
            sys.exit("error: only the neox family is written here")
    elif args.preset:
        cfg = dict(PRESETS[args.preset])
    else:
        sys.exit("error: pass --preset or --config-json")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    t = args.seq_len or min(256, cfg["max_seq_len"])
    b = args.batch
    torch.manual_seed(args.seed)
    model = GptNeox(cfg).to(device)
    opt, impl = make_adamw(model, 3e-4, args.optimizer)
    batches = [torch.randint(cfg["vocab_size"], (b, t + 1)) for _ in range(8)]
    bf16 = args.precision == "bf16" or (args.precision == "auto" and device.type == "cuda")
    loss_fn = torch.compile(model.loss) if args.compile else model.loss

    def forward_loss(inputs, targets):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            return loss_fn(inputs, targets)

    def device_memory_in_use():
        if device.type != "cuda":
            return None
        free, total = torch.cuda.mem_get_info(device)
        return total - free

    def step(i):
        window = batches[i % len(batches)].to(device)
        inputs, targets = window[:, :-1], window[:, 1:]
        opt.zero_grad(set_to_none=False)
        loss = forward_loss(inputs, targets)
        loss.backward()
        loss_value = loss.item()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0).item()
        if not (math.isfinite(loss_value) and math.isfinite(grad_norm)):
            sys.exit(f"error: non-finite loss {loss_value} / grad norm {grad_norm}")
        opt.step()
        return loss_value

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def breakdown(steps):
        """Seconds per step in forward+loss, backward, grad norm, clip+AdamW (the device synchronized at each
        part's end), then the loss head alone (logits, log-softmax in f32, NLL, and their backward)."""
        parts = [0.0] * 4
        clock = 0.0

        def lap(k):
            nonlocal clock
            sync()
            now = time.perf_counter()
            parts[k] += now - clock
            clock = now

        for i in range(steps):
            window = batches[i % len(batches)].to(device)
            inputs, targets = window[:, :-1], window[:, 1:]
            opt.zero_grad(set_to_none=False)
            sync()
            clock = time.perf_counter()
            loss = forward_loss(inputs, targets)
            lap(0)
            loss.backward()
            loss.item()
            lap(1)
            norm = torch.nn.utils.get_total_norm([p.grad for p in model.parameters()]).item()
            lap(2)
            torch.nn.utils.clip_grads_with_norm_(model.parameters(), 1.0, torch.tensor(norm, device=device))
            opt.step()
            lap(3)
        return [x / steps for x in parts] + [head_seconds(batches[0])]

    def head_seconds(window):
        window = window.to(device)
        inputs, targets = window[:, :-1], window[:, 1:].reshape(-1)
        w = model.embed_out.weight if model.embed_out is not None else model.embed_in.weight
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            x = model.embed_in(inputs)
            for layer in model.layers:
                x = layer(x, model.rotary)
            hidden = model.final_layer_norm(x).reshape(-1, x.shape[-1])
        hidden = hidden.detach().requires_grad_(True)

        def call():
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = F.linear(hidden, w)
                loss = F.nll_loss(logits.log_softmax(-1, dtype=torch.float32), targets)
            loss.backward()

        call()
        sync()
        start = time.perf_counter()
        for _ in range(3):
            call()
        sync()
        return (time.perf_counter() - start) / 3

    losses = [step(i) for i in range(args.warmup_steps)]
    sync()
    memory_after_warmup = device_memory_in_use()
    times = []
    cpu_start = time.process_time()
    start = time.perf_counter()
    for i in range(args.steps):
        s = time.perf_counter()
        losses.append(step(args.warmup_steps + i))
        times.append(time.perf_counter() - s)
    sync()
    seconds = time.perf_counter() - start
    cpu_cores_used = (time.process_time() - cpu_start) / seconds
    cuda_memory = None
    if device.type == "cuda":
        cuda_memory = {
            "max_allocated": torch.cuda.max_memory_allocated(device),
            "max_reserved": torch.cuda.max_memory_reserved(device),
            "in_use": max(memory_after_warmup, device_memory_in_use()),
        }
    tokens_per_second = b * t * args.steps / seconds
    parts = breakdown(min(args.steps, 5)) if args.breakdown else None
    report = {
        "framework": f"pytorch {torch.__version__} " + ("torch.compile" if args.compile else "eager"),
        "precision": "bf16" if bf16 else "fp32",
        "adamw": impl,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "params": sum(p.numel() for p in model.parameters()),
        "seq_len": t,
        "batch_sequences": b,
        "warmup_steps": args.warmup_steps,
        "steps": args.steps,
        "seconds": seconds,
        "step_seconds_mean": seconds / args.steps,
        "step_seconds_median": statistics.median(times),
        "step_seconds_min": min(times),
        "tokens_per_second": tokens_per_second,
        "cpu_cores_used": cpu_cores_used,
        "peak_memory_bytes": vm_hwm_bytes() if device.type == "cpu" else cuda_memory["in_use"],
        "cuda_memory": cuda_memory,
        "first_loss": losses[0],
        "last_loss": losses[-1],
        "breakdown": parts and dict(zip(["forward_loss", "backward", "grad_norm", "optimizer", "head"], parts)),
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{report['framework']}, AdamW {impl}, {report['precision']}, device {device}, {report['threads']} threads, "
              f"{report['params'] / 1e6:.1f}M params")
        print(f"step: B={b} × T={t} = {b * t} tokens, {args.warmup_steps} warm-up + {args.steps} timed steps "
              f"in {seconds:.2f} s")
        print(f"  {tokens_per_second:.0f} tokens/s; step time mean {seconds / args.steps * 1e3:.1f} ms, "
              f"median {report['step_seconds_median'] * 1e3:.1f} ms, min {report['step_seconds_min'] * 1e3:.1f} ms")
        if device.type == "cpu":
            busy = " (other work on the machine took CPU: re-measure when it is idle)"
            print(f"  CPU use during the timed steps: {cpu_cores_used:.2f} cores for {report['threads']} threads"
                  + (busy if cpu_cores_used < 0.9 * report["threads"] else ""))
        if cuda_memory:
            print(f"  peak memory {cuda_memory['in_use'] / 2**20:.0f} MiB device memory in use (total − free); "
                  f"PyTorch max allocated {cuda_memory['max_allocated'] / 2**20:.0f} MiB, "
                  f"max reserved {cuda_memory['max_reserved'] / 2**20:.0f} MiB")
        elif report["peak_memory_bytes"]:
            print(f"  peak memory {report['peak_memory_bytes'] / 2**20:.0f} MiB (process high-water mark (VmHWM))")
        if parts:
            total = sum(parts[:4])
            names = ["forward+loss", "backward", "grad norm", "clip+AdamW"]
            print(f"  per step ({min(args.steps, 5)} extra steps): " + ", ".join(
                f"{n} {x * 1e3:.1f} ms ({100 * x / total:.0f}%)" for n, x in zip(names, parts)))
            print(f"  loss head with gradients alone (full logits): {parts[4] * 1e3:.1f} ms")
        print(f"  loss {losses[0]:.3f} → {losses[-1]:.3f}")


if __name__ == "__main__":
    main()
