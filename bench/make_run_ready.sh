#!/usr/bin/env bash
# How long `make run` takes on a fresh machine, from a clean clone to a service answering /healthz.
#
# Each installer (uv, the default, and pip, the fallback) gets a clean clone of the committed tree,
# a new venv and empty package caches; this machine's pip configuration (local wheel folders, extra
# indexes) is switched off, so every package comes from PyPI as on a fresh machine. Prints one line
# per installer: seconds to ready, and the ratio pip / uv when both ran.
#
#   bash bench/make_run_ready.sh            # uv, then pip
#   bash bench/make_run_ready.sh uv         # one installer
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -eq 0 ]; then installers=(uv pip); else installers=("$@"); fi
work=$(mktemp -d /tmp/make-run-ready.XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill -- -"$pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

declare -A seconds
for installer in "${installers[@]}"; do
    clone="$work/clone-$installer"
    git clone -q "$repo" "$clone"
    port=$(free_port)
    started=$(date +%s.%N)
    # A new session, so that the whole `make` → service tree is stopped below.
    env PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS= PIP_NO_INPUT=1 \
        PIP_CACHE_DIR="$work/pip-cache-$installer" UV_CACHE_DIR="$work/uv-cache-$installer" \
        setsid make -C "$clone" run VENV="$work/venv-$installer" PORT="$port" INSTALLER="$installer" \
        >"$work/$installer.log" 2>&1 &
    pid=$!
    until curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "make run ($installer) exited before the service answered:" >&2
            tail -30 "$work/$installer.log" >&2
            exit 1
        fi
        sleep 0.2
    done
    seconds[$installer]=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" \
        "$started" "$(date +%s.%N)")
    kill -- -"$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=
    grep -m1 "installed the server extra with\|installing the server extra with" "$work/$installer.log" || true
    echo "make run, installer=$installer: ready in ${seconds[$installer]} s (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
done
if [ -n "${seconds[uv]:-}" ] && [ -n "${seconds[pip]:-}" ]; then
    python3 -c "import sys; print(f'pip / uv: {float(sys.argv[1]) / float(sys.argv[2]):.1f}x')" "${seconds[pip]}" "${seconds[uv]}"
fi
