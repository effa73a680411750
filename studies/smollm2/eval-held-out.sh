#!/usr/bin/env bash
# Evaluates SmolLM2 before and after the study's runs on one more prepared set, on its whole validation split:
# the step-0 evaluation of a one-step plan (`--stop-at-step 0`: nothing is trained, nothing is written but
# the run folder's records). The study uses it for English the German data is not a translation of (State
# of the Union, `sotu-en`), because its own English set, `nlp-en`, is the source text of the German one.
#
#   studies/smollm2/eval-held-out.sh INIT STUDY_OUT SET_NAME PREPARED_SET OUT
#
# Writes OUT/<start|label>/metrics.jsonl and prints one line per model: label, nats/token, bits/byte.
set -euo pipefail
[[ $# -eq 5 ]] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
INIT=$(realpath "$1") STUDY=$(realpath "$2") NAME=$3 SET=$(realpath "$4") OUT=$5
REWARM=${REWARM:-rewarm}
mkdir -p "$OUT"

# eval_model LABEL MODEL: the step-0 evaluation of MODEL on SET into OUT/LABEL.
eval_model() {
    local plan="$OUT/$1.toml"
    cat > "$plan" <<EOF
init_from = "$2"
seed = 1
[model]
preset = "smollm2-135m"
vocab_size = 49152
max_seq_len = 256
[data]
sources = { $NAME = "$SET" }
[train]
batch_tokens = 4096
precision = "bf16"
[eval]
every_steps = 1
batch_sequences = 16
[[stages]]
name = "eval"
tokens = 4096
mixture = { $NAME = 1.0 }
schedule = { kind = "constant", lr = 1e-12 }
EOF
    [[ -f $OUT/$1/metrics.jsonl ]] || "$REWARM" train "$plan" --run "$OUT/$1" --stop-at-step 0 >/dev/null
    python3 - "$1" "$OUT/$1/metrics.jsonl" <<'PY'
import json, sys
r = [json.loads(l) for l in open(sys.argv[2]) if '"eval"' in l][0]
print(f"{sys.argv[1]:<14} {r['loss']:.4f} nats/token  {r['bits_per_byte']:.4f} bits/byte  ({r['eval_tokens']} tokens)")
PY
}

eval_model start "$INIT"
python3 - "$STUDY/runs/sweep.json" <<'PY' | while read -r id label; do
import json, sys
for r in json.load(open(sys.argv[1])):
    print(r["id"], r["label"])
PY
    ckpt=$(ls -d "$STUDY/runs/$id/ckpt/step_"* | tail -1)
    eval_model "$label" "$ckpt"
done
