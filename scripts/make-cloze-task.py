#!/usr/bin/env python3
"""A sentence-completion task from a JSONL text split (one {"text": ...} per line), in rewarm's task format
({"context", "choices", "gold"} per line; docs/interop.md#rewarm-eval): each question is a sentence cut
after 60% of its words; the choices are its true ending and the endings of three other sentences of the
same split, in a seeded random order. Standard library only; the same arguments give the same file.

  scripts/make-cloze-task.py data/sample/en/validation.jsonl --out tasks/sample-en-cloze.jsonl
"""
import argparse
import json
import random

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("split", help="a JSONL file of {\"text\": ...} lines (use a validation split)")
p.add_argument("--out", required=True)
p.add_argument("--items", type=int, default=200)
p.add_argument("--choices", type=int, default=4)
p.add_argument("--min-words", type=int, default=8)
p.add_argument("--seed", type=int, default=1)
args = p.parse_args()

rng = random.Random(args.seed)
sentences = []
with open(args.split, encoding="utf-8") as f:
    for line in f:
        words = json.loads(line)["text"].split()
        if len(words) >= args.min_words:
            cut = int(len(words) * 0.6)
            sentences.append((" ".join(words[:cut]), " " + " ".join(words[cut:])))
if len(sentences) < args.choices:
    raise SystemExit(f"{args.split}: only {len(sentences)} sentences of ≥ {args.min_words} words")
picked = rng.sample(range(len(sentences)), min(args.items, len(sentences)))
with open(args.out, "w", encoding="utf-8") as out:
    for i in picked:
        context, ending = sentences[i]
        others = rng.sample([j for j in range(len(sentences)) if j != i], args.choices - 1)
        choices = [ending] + [sentences[j][1] for j in others]
        order = list(range(args.choices))
        rng.shuffle(order)
        item = {"context": context, "choices": [choices[k] for k in order], "gold": order.index(0)}
        out.write(json.dumps(item, ensure_ascii=False) + "\n")
print(f"wrote {args.out}: {len(picked)} questions of {args.choices} choices")
