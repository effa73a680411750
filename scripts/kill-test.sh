#!/usr/bin/env bash
# The kill test (docs/reliability.md): trains a tiny two-stage plan with replay, kill -9s it at KILLS
# seeded moments (half at named points inside checkpoint writes, evaluation, metrics writes and retention,
# half from outside after a random number of steps plus a random delay), resumes after each, and checks
# that the final weights, Adam moments, state and every metrics line equal an uninterrupted run's, bit for
# bit (CPU). The test suite runs the same test with 24 kills and seed 1.
#
# Usage: scripts/kill-test.sh [KILLS] [SEED]       defaults: 100 kills, seed from the clock
#   e.g. scripts/kill-test.sh 200 7                 (the plan grows with KILLS: 6 steps per kill)
#        for s in 1 2 3 4 5; do scripts/kill-test.sh 50 $s; done
# A failure prints the seed; rerun with it to reproduce the same kill moments (the named-point kills
# reproduce exactly; kills from outside land at the same step counts, their sub-step timing varies).
set -euo pipefail
cd "$(dirname "$0")/.."
KILLS=${1:-100}
SEED=${2:-$(date +%s)}
case "$KILLS$SEED" in *[!0-9]*) echo "usage: $0 [KILLS] [SEED] (numbers)" >&2; exit 2 ;; esac
scripts/setup-libtorch.sh >/dev/null
echo "kill-test: $KILLS kills, seed $SEED" >&2
REWARM_KILLS=$KILLS REWARM_KILL_SEED=$SEED \
  cargo test --release -p rewarm --test reliability -- --exact \
  kill_9_at_random_moments_then_resume_equals_an_uninterrupted_run --nocapture
