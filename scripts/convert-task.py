#!/usr/bin/env python3
"""Converts public multiple-choice benchmarks into rewarm's task format (one {"context", "choices", "gold"}
per line; docs/interop.md#rewarm-eval), with the prompts lm-evaluation-harness uses, so that
`rewarm eval MODEL --task OUT.jsonl` gives numbers comparable to its acc / acc_norm. Standard library
only; bring the files yourself (rewarm downloads nothing).

  scripts/convert-task.py hellaswag hellaswag_val.jsonl --out tasks/hellaswag.jsonl
  scripts/convert-task.py arc ARC-Easy-Dev.jsonl --out tasks/arc-easy.jsonl
  scripts/convert-task.py piqa valid.jsonl --labels valid-labels.lst --out tasks/piqa.jsonl

Both the original releases' JSONL and the Hugging Face datasets' rows (exported as JSONL) are read:
  hellaswag: ctx_a, ctx_b (or ctx), activity_label, endings, label
  arc:       question {stem, choices [{text, label}]} and answerKey (AI2), or question, choices {text, label},
             answerKey (HF)
  piqa:      goal, sol1, sol2, and label (HF) or a --labels file with one 0/1 per line (original)
"""
import argparse
import json
import re


def hellaswag_text(text):
    # lm-evaluation-harness's preprocessing: drop WikiHow's bracketed markers and double spaces.
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    return text.replace("  ", " ")


def hellaswag(row, _label):
    if "ctx_a" in row:
        ctx = row["ctx_a"] + " " + row["ctx_b"].capitalize()
    else:
        ctx = row["ctx"]
    context = hellaswag_text(row["activity_label"] + ": " + ctx)
    return context, [" " + hellaswag_text(e) for e in row["endings"]], int(row["label"])


def arc(row, _label):
    q = row["question"]
    if isinstance(q, dict):  # AI2's release
        stem, texts, labels = q["stem"], [c["text"] for c in q["choices"]], [c["label"] for c in q["choices"]]
    else:  # Hugging Face's ai2_arc
        stem, texts, labels = q, row["choices"]["text"], row["choices"]["label"]
    return f"Question: {stem}\nAnswer:", [" " + t for t in texts], labels.index(row["answerKey"])


def piqa(row, label):
    gold = int(row["label"]) if "label" in row else label
    if gold is None:
        raise SystemExit("piqa: rows carry no label; pass --labels FILE (one 0/1 per line)")
    return f"Question: {row['goal']}\nAnswer:", [" " + row["sol1"], " " + row["sol2"]], gold


FORMATS = {"hellaswag": hellaswag, "arc": arc, "piqa": piqa}

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("format", choices=sorted(FORMATS))
p.add_argument("input", help="the benchmark's JSONL file")
p.add_argument("--out", required=True)
p.add_argument("--labels", help="piqa: the labels file of the original release")
args = p.parse_args()

labels = None
if args.labels:
    with open(args.labels, encoding="utf-8") as f:
        labels = [int(line) for line in f if line.strip()]
n = 0
with open(args.input, encoding="utf-8") as f, open(args.out, "w", encoding="utf-8") as out:
    for i, line in enumerate(f):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            context, choices, gold = FORMATS[args.format](row, labels[i] if labels else None)
        except (KeyError, ValueError, IndexError, TypeError) as e:
            raise SystemExit(f"{args.input}: line {i + 1}: not a {args.format} row ({e!r})")
        out.write(json.dumps({"context": context, "choices": choices, "gold": gold}, ensure_ascii=False) + "\n")
        n += 1
print(f"wrote {args.out}: {n} questions")
