#!/usr/bin/env bash
# Builds the bundled judge model models/grm-tiny from scratch, reproducibly from SEED:
#   grm synth (train split) → grm train tokenizer → grm train sft (random init from models/grm-tiny.config.json)
# Work files (data, tokenizer, trainer state, checkpoints) go to $WORK; the finished model directory is copied
# to $OUT at the end (config.json, model.safetensors in bf16, tokenizer.json, template.txt, training.json).
# Every knob below is an environment variable, e.g.  STEPS=60 OUT=/tmp/smoke ./scripts/train-tiny.sh
# RESUME=1 continues an interrupted run from its last checkpoint (same settings). See docs/training.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GRM=${GRM:-$ROOT/build/grm}
OUT=${OUT:-$ROOT/models/grm-tiny}
WORK=${WORK:-$ROOT/build/grm-tiny-work}
CONFIG=${CONFIG:-$ROOT/models/grm-tiny.config.json}
SEED=${SEED:-1}
RECORDS=${RECORDS:-40000}   # synthetic training records (each is seen in fresh response orders every epoch)
VOCAB=${VOCAB:-1024}
STEPS=${STEPS:-5000}
BATCH=${BATCH:-16}
LR=${LR:-2e-3}
WARMUP=${WARMUP:-100}
SEQ_LEN=${SEQ_LEN:-1024}
SAVE_EVERY=${SAVE_EVERY:-100}
PRECISION=${PRECISION:-auto}  # mixed where the CPU has native bf16 (AMX / AVX512_BF16), else fp32
THREADS=${THREADS:-0}       # 0: all cores with mixed precision, 1 with fp32 (OpenBLAS threads itself)
RESUME=${RESUME:-0}

t0=$(date +%s)
[[ -x $GRM ]] || { echo "train-tiny: $GRM not found (build it first: make build)" >&2; exit 1; }
if [[ $RESUME != 1 ]]; then rm -rf "$WORK"; fi
mkdir -p "$WORK"

if [[ ! -s $WORK/train.jsonl ]]; then
  echo "== synth: $RECORDS train records (seed $SEED)" >&2
  "$GRM" synth --split train --n "$RECORDS" --seed "$SEED" --out "$WORK/train.jsonl"
fi
if [[ ! -s $WORK/tokenizer.json ]]; then
  echo "== tokenizer: vocab $VOCAB" >&2
  "$GRM" train tokenizer --data "$WORK/train.jsonl" --vocab "$VOCAB" --seed "$SEED" --out "$WORK/tokenizer.json"
fi

resume=()
if [[ $RESUME == 1 && -f $WORK/trainer_state.safetensors ]]; then resume=(--resume); fi
echo "== sft: $STEPS steps × batch $BATCH" >&2
"$GRM" train sft --data "$WORK/train.jsonl" --out "$WORK/model" --state "$WORK/trainer_state.safetensors" \
  --init-config "$CONFIG" --tokenizer "$WORK/tokenizer.json" --seed "$SEED" \
  --steps "$STEPS" --batch "$BATCH" --lr "$LR" --warmup "$WARMUP" --seq-len "$SEQ_LEN" \
  --save-every "$SAVE_EVERY" --precision "$PRECISION" --threads "$THREADS" --save-dtype bf16 \
  --log "$WORK/train-log.jsonl" "${resume[@]}"

# Publish: copy the model files next to $OUT, then swap the directory in.
rm -rf "$OUT.tmp"
mkdir -p "$OUT.tmp"
cp "$WORK/model/"{config.json,model.safetensors,tokenizer.json,template.txt,training.json} "$OUT.tmp/"
rm -rf "$OUT"
mv "$OUT.tmp" "$OUT"
echo "== done: $OUT ($(du -sh "$OUT" | cut -f1)) in $(( $(date +%s) - t0 ))s total wall time" >&2
