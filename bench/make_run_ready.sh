#!/usr/bin/env bash
# How long `make run` takes on a fresh machine, from a clean clone to a service answering /healthz.
#
# Each installer (uv, the default, and pip, the fallback) gets a clean clone of the committed tree,
# a new venv and empty package caches; this machine's pip configuration (local wheel folders, extra
# indexes) is switched off, so every package comes from PyPI as on a fresh machine. Prints one line
# per installer: seconds to ready, split into the install (with its CPU seconds, which a busy machine
# does not inflate) and the service's start, and the ratio pip / uv when both ran.
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
    venv="$work/venv-$installer"
    fresh=(env PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS= PIP_NO_INPUT=1
        PIP_CACHE_DIR="$work/pip-cache-$installer" UV_CACHE_DIR="$work/uv-cache-$installer")
    started=$(date +%s.%N)
    # The install alone first, timed by bash: its CPU seconds (all processes, reaped) do not depend on
    # how busy the machine is, where the wall time does.
    TIMEFORMAT="%U %S"
    cpu=$( { time "${fresh[@]}" make -s -C "$clone" "$venv/.server-installed" VENV="$venv" INSTALLER="$installer" \
        >"$work/$installer.log" 2>&1; } 2>&1 )
    installed=$(date +%s.%N)
    # Then `make run` itself (the stamp is there: it only serves), in a new session so the whole
    # make → service tree is stopped below.
    setsid make -C "$clone" run VENV="$venv" PORT="$port" >>"$work/$installer.log" 2>&1 &
    pid=$!
    until curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "make run ($installer) exited before the service answered:" >&2
            tail -30 "$work/$installer.log" >&2
            exit 1
        fi
        sleep 0.2
    done
    ready=$(date +%s.%N)
    # CPU seconds the service's processes (make, uvicorn, its workers) used to get there.
    start_cpu=$(ps -o cputimes= --sid "$pid" | awk '{s += $1} END {print s + 0}')
    kill -- -"$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=
    seconds[$installer]=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$started" "$ready")
    python3 - "$installer" "$started" "$installed" "$ready" $cpu "$start_cpu" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import sys
name, t0, t1, t2, user, system, start_cpu, load = sys.argv[1], *map(float, sys.argv[2:8]), sys.argv[8]
print(f"make run, installer={name}: ready in {t2 - t0:.1f} s (install {t1 - t0:.1f} s, using {user + system:.1f} "
      f"CPU-s; start to /healthz {t2 - t1:.1f} s, using {start_cpu:.0f} CPU-s); load average {load}")
PY
    grep -m1 "the server extra with" "$work/$installer.log" || true
done
if [ -n "${seconds[uv]:-}" ] && [ -n "${seconds[pip]:-}" ]; then
    python3 -c "import sys; print(f'wall time pip / uv: {float(sys.argv[1]) / float(sys.argv[2]):.1f}x')" \
        "${seconds[pip]}" "${seconds[uv]}"
fi
