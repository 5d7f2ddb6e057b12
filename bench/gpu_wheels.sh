#!/usr/bin/env bash
# Download the wheels the GPU machine lacks into bench/_wheels (git-ignored), for bench/gpu_replication.sh.
#
# The H100 machine has torch 2.11 + CUDA, transformers 5.17, accelerate, peft and httpx (and their
# dependencies), and no network. Everything else the reward service and the trainer import travels
# with the project as wheels: TRL and datasets (with dill, xxhash, multiprocess), the service's
# stack (fastapi, starlette, uvicorn, pydantic, pydantic-settings, prometheus-client), the scoring
# engine's (rapidfuzz, jsonschema, math-verify) and the search index's stemmer (PyStemmer). The
# versions are the ones this project is tested with (the local venv). `--no-deps` keeps torch,
# transformers and their CUDA dependencies out; the list below is the closure of what is missing
# there, written out by hand.
# gpu_replication.py installs, with `pip install --no-index --no-deps`, only those whose import fails.
#
# pyarrow and pandas (datasets needs both) are left out by default: pyarrow's wheel alone is 53 MiB
# and with pandas the folder is 75 MiB, over the 64 MiB that can be carried to the machine. The
# machine is expected to have them (the notes do not list them as missing); gpu_replication.py
# checks first and stops with a clear message if they are not there. `--with-arrow` adds them
# anyway (for a machine reached some other way than the 64 MiB carry).
#
# Usage: bash bench/gpu_wheels.sh [--with-arrow]     (then: run ... carry=["bench/_wheels"])
# Size: printed at the end; more than 60 MiB is an error unless --with-arrow.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=bench/_wheels
PY=${PYTHON:-.venv/bin/python}
mkdir -p "$DEST"

PACKAGES=(
  # training
  trl==1.16.0 datasets==5.2.0 dill==0.4.1 xxhash==4.1.0 multiprocess==0.70.19
  # reward service
  fastapi==0.165.0 starlette==1.10.0 annotated-doc==0.0.7 opentelemetry-api==1.45.2
  uvicorn==0.54.0 click==8.5.1 h11==0.16.0
  pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
  pydantic-settings==2.16.3 python-dotenv==1.2.4 prometheus-client==0.26.0
  # scoring engine
  rapidfuzz==3.14.6 jsonschema==4.26.0 jsonschema-specifications==2025.9.1 referencing==0.37.0
  rpds-py==2026.9.1 attrs==26.1.0 math-verify==0.9.0 latex2sympy2_extended==1.11.0
  antlr4-python3-runtime==4.13.2
  # tool-schema regexes (linear-time matching) and the offline API docs pages
  google-re2==1.1.20251105 fastapi-offline==1.7.7
  # the retrieval splits' search index (the experiment's service serves it): PyStemmer stems its
  # words; its pyarrow and numpy are the machine's own (datasets and transformers need them too)
  PyStemmer==3.1.0
)

LIMIT=60
if [ "${1:-}" = "--with-arrow" ]; then
  PACKAGES+=(pyarrow==26.0.1 pandas==3.1.1 python-dateutil==4.0.0 tzdata==2026.6)
  LIMIT=100
fi

"$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --abi cp311 --abi abi3 --abi none -d "$DEST" "${PACKAGES[@]}"

total=$(du -sm "$DEST" | cut -f1)
ls -s --block-size=K "$DEST" | sort -n | tail -n 8
echo "bench/_wheels: $(ls "$DEST" | wc -l) wheels, ${total} MiB"
if [ "$total" -gt "$LIMIT" ]; then
  echo "bench/_wheels is over $LIMIT MiB: the carry limit is 64 MiB for everything carried" >&2
  exit 1
fi
