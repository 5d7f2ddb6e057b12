#!/usr/bin/env bash
# Issue 5 on one GPU: SFT vs GRPO (sparse / mentor / flexible) evaluated in and out of domain, and the
# reward service's share of each GRPO step. Installs the carried wheels (bench/_wheels, from
# bench/gpu_wheels.sh) where imports fail, then runs `mentor-train experiment --size gpu` within a
# wall-time budget (default 450 s). Results: $OUT/experiment/experiment.{json,txt} (or runs/gpu-experiment).
# Extra arguments go to the experiment, e.g.: bash bench/gpu_replication.sh --seeds 1,2 --with-strict
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$(command -v python3 || command -v python)}
exec "$PY" bench/gpu_replication.py "$@"
