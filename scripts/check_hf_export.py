#!/usr/bin/env python3
"""Checks that `rewarm export` writes Hugging Face folders that `transformers` loads with rewarm's logits.

For each rewarm checkpoint (or run folder, meaning its newest checkpoint) this script

1. runs `rewarm export CKPT --hf DIR [--tokenizer tokenizer.json]` into a temporary folder;
2. runs `rewarm logits CKPT --text TEXT --device cpu` on the checkpoint itself (f32): the token ids rewarm
   encodes the text to, and every logit at every position;
3. tokenizes the same text with the exported tokenizer.json, through `tokenizers` and through
   `transformers.AutoTokenizer`, and requires the ids to equal rewarm's;
4. loads the folder with `transformers.AutoModelForCausalLM.from_pretrained` in float32 (no missing,
   unexpected or mismatched tensors allowed: transformers would initialise a missing one at random) and
   runs its forward on CPU on the same ids;
5. prints max |Δ logit| over all T × V logits, |Δ mean loss| (transformers' own `labels=` loss against
   rewarm's), max |Δ log-sum-exp| and argmax agreement, and PASS or FAIL against the tolerances.

It exits 0 when every check passes, 1 when one fails, 2 when it cannot run (no transformers, rewarm
failed, …).

    # a checkpoint you trained (its data prepared with tok.json):
    python3 scripts/check_hf_export.py runs/de/ckpt/step_00000300 --tokenizer data/tok.json
    # no checkpoint at hand: trains tiny checkpoints of every family (GPT-NeoX and Llama two variants
    # each; Qwen2, Qwen3, Mistral and Llama 3 scaling one each; ~1 min on CPU)
    # from the vendored sample and checks every one:
    python3 scripts/check_hf_export.py --tiny

`transformers` and `torch` are needed; the script is plain `python3` by default, so run it with the
interpreter of an environment that has them, e.g. `/path/to/venv/bin/python scripts/check_hf_export.py
--tiny` (`pip install transformers torch`). Without --tokenizer the folder gets no tokenizer.json, and a
fixed sequence of token ids is compared instead of a text.

The rewarm binary is `--rewarm PATH`, else $REWARM, else target/release/rewarm of this repository if it
was built (`cargo build --release`), else `rewarm` on PATH.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Mixed text: capitals, digits, punctuation, non-ASCII letters and a multi-byte symbol, so that
# byte-level pre-tokenization and merges are exercised, not only plain words.
DEFAULT_TEXT = (
    "The committee met on 12 March 2024 to review the budget; Frau Müller said the café's costs rose "
    "3.5% (more than expected). \"We'll see,\" she added — and the meeting ended at 5 p.m."
)

# The tiny models of --tiny: each family's preset and a variant flipping what the preset does not
# exercise (tied vs untied output, parallel vs sequential residual, grouped vs multi-query attention) and
# moving the defaults a wrong config.json key would silently fall back to (norm ε, RoPE θ, rotary %).
TINY_MODELS = {
    "neox": {"preset": "tiny"},
    "neox-sequential-tied": {
        "preset": "tiny",
        "use_parallel_residual": False,
        "tie_embeddings": True,
        "rotary_pct": 0.5,
        "rope_theta": 500.0,
        "norm_eps": 1e-3,
    },
    "llama": {"preset": "tiny-llama"},
    "llama-untied-mqa": {
        "preset": "tiny-llama",
        "tie_embeddings": False,
        "num_kv_heads": 1,
        "rope_theta": 500.0,
        "norm_eps": 1e-3,
    },
    # The Llama-like families, each with what sets it apart from Llama.
    "qwen2": {"preset": "tiny-llama", "family": "qwen2"},
    "qwen3-head-dim": {"preset": "tiny-llama", "family": "qwen3", "head_dim": 32, "tie_embeddings": False},
    "mistral-window": {"preset": "tiny-llama", "family": "mistral", "sliding_window": 16},
    "llama3-scaled": {
        "preset": "tiny-llama",
        "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
    },
}


def toml_value(v):
    """A TOML value: booleans in lower case, dicts as inline tables, the rest as JSON writes them."""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    return json.dumps(v)


class CannotRun(Exception):
    """The check could not be carried out (as opposed to: it ran and failed)."""


def rewarm_binary(given):
    if given:
        return given
    if os.environ.get("REWARM"):
        return os.environ["REWARM"]
    built = os.path.join(REPO, "target", "release", "rewarm")
    if os.access(built, os.X_OK):
        return built
    found = shutil.which("rewarm")
    if found:
        return found
    raise CannotRun(
        "no rewarm binary: build it (`cargo build --release`, giving target/release/rewarm) or pass --rewarm PATH"
    )


def run_rewarm(rewarm, args, cwd=None):
    proc = subprocess.run([rewarm, *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise CannotRun(f"`rewarm {' '.join(args)}` failed ({proc.returncode}):\n{proc.stderr.strip()}")
    return proc.stdout


def import_transformers():
    for module in ("transformers", "torch"):
        try:
            __import__(module)
        except ImportError:
            raise CannotRun(
                f"`{module}` is not installed for this interpreter ({sys.executable}).\n"
                "Run the script with the Python of an environment that has transformers and torch, e.g.\n"
                f"  /path/to/venv/bin/python {os.path.relpath(__file__)} --tiny\n"
                "(make one with `python3 -m venv venv && venv/bin/pip install transformers torch`)"
            ) from None


def fixed_ids(vocab_size, n=64):
    """A deterministic id sequence (no tokenizer): a linear congruential walk over the vocabulary."""
    ids, x = [], 12345
    for _ in range(n):
        x = (1103515245 * x + 12345) % (1 << 31)
        ids.append(x % vocab_size)
    return ids


def check(rewarm, checkpoint, tokenizer, text, work, tol_logit, tol_loss, attn, label=None):
    """Exports `checkpoint`, compares transformers with rewarm; returns True when every check passes."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    label = label or checkpoint
    hf = os.path.join(work, "hf")
    export = ["export", checkpoint, "--hf", hf]
    if tokenizer:
        export += ["--tokenizer", tokenizer]
    run_rewarm(rewarm, export)

    ours_json = os.path.join(work, "rewarm_logits.json")
    config = json.load(open(os.path.join(hf, "config.json")))
    logits_cmd = ["logits", checkpoint, "--device", "cpu", "--out", ours_json]
    if tokenizer:
        logits_cmd += ["--text", text, "--tokenizer", tokenizer]
    else:
        logits_cmd += ["--ids", ",".join(map(str, fixed_ids(config["vocab_size"])))]
    run_rewarm(rewarm, logits_cmd)
    ours = json.load(open(ours_json))
    ids = ours["tokens"]

    failures, notes = [], []

    # The tokenizer.json in the folder must tokenize as rewarm does.
    if tokenizer:
        try:
            from tokenizers import Tokenizer

            theirs = Tokenizer.from_file(os.path.join(hf, "tokenizer.json")).encode(text, add_special_tokens=False).ids
            if theirs != ids:
                failures.append(f"tokenizers gives other ids than rewarm: {theirs} vs {ids}")
        except ImportError:
            notes.append("`tokenizers` not installed: ids checked through AutoTokenizer only")
        auto = AutoTokenizer.from_pretrained(hf)
        theirs = auto.encode(text, add_special_tokens=False)
        if theirs != ids and config["model_type"] in ("qwen2", "qwen3"):
            # transformers 5 gives Qwen model types Qwen2Tokenizer whatever tokenizer.json holds (its own
            # pre-tokenizer); a Qwen tokenizer.json is unaffected, another one needs the generic class.
            from transformers import PreTrainedTokenizerFast

            generic = PreTrainedTokenizerFast(tokenizer_file=os.path.join(hf, "tokenizer.json"))
            if generic.encode(text, add_special_tokens=False) == ids:
                notes.append(
                    f"AutoTokenizer picks {type(auto).__name__} for model_type {config['model_type']} and "
                    "re-splits this non-Qwen tokenizer.json; PreTrainedTokenizerFast(tokenizer_file=…) gives "
                    "rewarm's ids"
                )
                auto, theirs = generic, ids
        if theirs != ids:
            failures.append(f"AutoTokenizer ({type(auto).__name__}) gives other ids than rewarm: {theirs} vs {ids}")
        if auto.decode(ids) != text:
            notes.append(f"AutoTokenizer decodes the ids to {auto.decode(ids)!r}, not the text")
    else:
        notes.append("no --tokenizer: fixed token ids, tokenization not checked")

    kwargs = {"output_loading_info": True}
    if attn:
        kwargs["attn_implementation"] = attn
    # transformers ≥ 4.56 calls it `dtype`; older versions `torch_dtype`.
    dtype_key = "dtype" if tuple(int(p) for p in transformers.__version__.split(".")[:2]) >= (4, 56) else "torch_dtype"
    kwargs[dtype_key] = torch.float32
    model, info = AutoModelForCausalLM.from_pretrained(hf, **kwargs)
    for key in ("missing_keys", "unexpected_keys", "mismatched_keys"):
        if info.get(key):
            failures.append(f"transformers reports {key}: {sorted(info[key])}")
    if info.get("error_msgs"):
        failures.append(f"transformers reports errors: {info['error_msgs']}")
    expected_class = config["architectures"][0]
    if type(model).__name__ != expected_class:
        failures.append(f"transformers built {type(model).__name__}, config.json says {expected_class}")
    model.eval()

    input_ids = torch.tensor([ids])
    with torch.no_grad():
        out = model(input_ids, labels=input_ids)
    theirs = out.logits[0].double()  # (T, V), computed in float32
    if out.logits.dtype != torch.float32:
        failures.append(f"transformers computed {out.logits.dtype} logits, not float32")

    t, v = theirs.shape
    ours_logits = torch.tensor(ours["logits"], dtype=torch.float64)  # (T, K) at logit_ids
    keep = torch.tensor(ours["logit_ids"])
    logit_diff = (theirs[:, keep] - ours_logits).abs().max().item()
    lse_theirs = torch.logsumexp(theirs, -1)
    lse_diff = (lse_theirs - torch.tensor(ours["logsumexp"], dtype=torch.float64)).abs().max().item()
    # Both mean losses in float64 from each side's float32 logits, so the difference is the models'
    # alone; transformers' own `labels=` loss (reduced in float32) is printed too.
    targets = torch.tensor(ids[1:])
    loss_theirs = torch.nn.functional.cross_entropy(theirs[:-1], targets).item() if t > 1 else None
    loss_diff = abs(loss_theirs - ours["mean_loss"]) if t > 1 else 0.0
    argmax_theirs = theirs.argmax(-1).tolist()
    disagree = [p for p in range(t) if argmax_theirs[p] != ours["argmax"][p]]
    # An argmax may differ only where the top two logits are within the tolerance (a tie up to rounding).
    top2 = theirs.topk(2, -1).values
    real_disagreements = [p for p in disagree if (top2[p, 0] - top2[p, 1]).item() > 2 * tol_logit]

    compared = f"{t} × {len(ours['logit_ids'])}" + ("" if len(ours["logit_ids"]) == v else f" of {v}")
    if list(ours_logits.shape) != [t, len(ours["logit_ids"])] or len(ours["logsumexp"]) != t:
        failures.append(f"rewarm wrote {list(ours_logits.shape)} logits for {t} positions")
    if not logit_diff <= tol_logit:
        failures.append(f"max |Δ logit| {logit_diff:.3g} > {tol_logit:g}")
    if not lse_diff <= tol_logit:
        failures.append(f"max |Δ log-sum-exp| {lse_diff:.3g} > {tol_logit:g}")
    if not loss_diff <= tol_loss:
        failures.append(f"|Δ mean loss| {loss_diff:.3g} > {tol_loss:g} nats")
    if real_disagreements:
        failures.append(f"argmax differs at positions {real_disagreements} (not near-ties)")

    print(f"{label}: {config['architectures'][0]}, {t} tokens" + (" (ids equal rewarm's)" if tokenizer and not any("ids" in f for f in failures) else ""))
    print(f"  logits compared: {compared} (positions × vocabulary ids), float32 on CPU")
    print(f"  max |Δ logit|        {logit_diff:.3e}   (tolerance {tol_logit:g})")
    print(f"  max |Δ log-sum-exp|  {lse_diff:.3e}")
    if t > 1:
        print(f"  mean loss            rewarm {ours['mean_loss']:.9f}, transformers {loss_theirs:.9f} nats: |Δ| {loss_diff:.3e}   (tolerance {tol_loss:g})")
        print(f"                       (transformers' labels= loss, reduced in float32: {out.loss.item():.9f})")
    print(f"  argmax               {t - len(disagree)}/{t} positions agree")
    for note in notes:
        print(f"  note: {note}")
    for failure in failures:
        print(f"  FAIL: {failure}")
    print(f"  {'PASS' if not failures else 'FAIL'}")
    return not failures


def tiny_checkpoints(rewarm, work, names):
    """Trains each tiny model of `names` for 20 steps on the vendored English sample; returns
    [(name, run folder)] and the tokenizer.json."""
    corpus = os.path.join(REPO, "data", "sample", "en", "train.jsonl")
    if not os.path.isfile(corpus):
        raise CannotRun(f"{corpus}: the vendored sample is missing (this mode trains on it)")
    tok = os.path.join(work, "tok.json")
    run_rewarm(rewarm, ["tokenizer", "train", corpus, "--vocab-size", "512", "--out", tok])
    run_rewarm(rewarm, ["prepare", corpus, "--out", os.path.join(work, "en"), "--tokenizer", tok, "--split", "every:10"])
    runs = []
    for name in names:
        overrides = "\n".join(f"{k} = {toml_value(v)}" for k, v in TINY_MODELS[name].items())
        # 20 steps at a high learning rate: norms, biases and embeddings move well away from their
        # initial values (ones, zeros), so config keys and layouts that do not matter at init do here.
        plan = f"""seed = 7

[model]
{overrides}

[data]
sources = {{ en = "en" }}

[train]
batch_tokens = 512
threads = 1

[eval]
tokens = 1024

[[stages]]
name = "tiny"
tokens = 10240
mixture = {{ en = 1.0 }}
schedule = {{ kind = "cosine", max_lr = 1e-2, min_lr = 1e-3, warmup = 0.1 }}
"""
        plan_file = os.path.join(work, f"{name}.toml")
        with open(plan_file, "w") as f:
            f.write(plan)
        run = os.path.join(work, "runs", name)
        run_rewarm(rewarm, ["train", plan_file, "--run", run, "--device", "cpu"])
        runs.append((name, run))
    return runs, tok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", nargs="?", help="a rewarm checkpoint folder (ckpt/step_…) or run folder")
    ap.add_argument("--tokenizer", help="the tokenizer.json the checkpoint's data was prepared with")
    ap.add_argument(
        "--tiny",
        nargs="*",
        choices=sorted(TINY_MODELS),
        metavar="MODEL",
        help=f"train tiny checkpoints and check each (default: all of {', '.join(TINY_MODELS)})",
    )
    ap.add_argument("--text", default=DEFAULT_TEXT, help="the text to compare on (default: a fixed sentence)")
    ap.add_argument("--max-logit-diff", type=float, default=1e-4, help="tolerance on |Δ logit| and |Δ log-sum-exp| (default 1e-4, for f32)")
    ap.add_argument("--max-loss-diff", type=float, default=1e-5, help="tolerance on |Δ mean loss| in nats (default 1e-5)")
    ap.add_argument("--attn-implementation", help="transformers' attention (`eager`, `sdpa`; default: its own)")
    ap.add_argument("--rewarm", help="the rewarm binary (default: $REWARM, target/release/rewarm, rewarm on PATH)")
    ap.add_argument("--keep", metavar="DIR", help="work in DIR (created) and keep the exported folders there")
    args = ap.parse_args()
    if (args.checkpoint is None) == (args.tiny is None):
        ap.error("give a checkpoint, or --tiny (one of the two)")

    try:
        import_transformers()
        import torch
        import transformers

        transformers.utils.logging.disable_progress_bar()
        rewarm = rewarm_binary(args.rewarm)
        print(f"rewarm {rewarm}; transformers {transformers.__version__}, torch {torch.__version__}, Python {sys.executable}")
        if args.keep:
            os.makedirs(args.keep, exist_ok=True)
            work = os.path.abspath(args.keep)
            cleanup = None
        else:
            cleanup = tempfile.TemporaryDirectory(prefix="check_hf_export.")
            work = cleanup.name
        results = []
        if args.tiny is not None:
            names = args.tiny or list(TINY_MODELS)
            runs, tok = tiny_checkpoints(rewarm, work, names)
            for name, run in runs:
                case = os.path.join(work, "check", name)
                os.makedirs(case)
                ok = check(rewarm, run, tok, args.text, case, args.max_logit_diff, args.max_loss_diff, args.attn_implementation, label=f"tiny {name}")
                results.append((name, ok))
        else:
            case = os.path.join(work, "check")
            os.makedirs(case, exist_ok=True)
            if os.listdir(case):
                raise CannotRun(f"{case} is not empty: pass another --keep folder")
            ok = check(rewarm, args.checkpoint, args.tokenizer, args.text, case, args.max_logit_diff, args.max_loss_diff, args.attn_implementation)
            results.append((args.checkpoint, ok))
        if cleanup:
            cleanup.cleanup()
    except CannotRun as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    failed = [name for name, ok in results if not ok]
    print(f"{'FAIL' if failed else 'PASS'}: {len(results) - len(failed)} of {len(results)} exports load in transformers with rewarm's logits" + (f" (failed: {', '.join(failed)})" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
