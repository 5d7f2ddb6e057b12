"""The GPU experiment of issue 5, prepared to run once on a machine with no network.

Run it through `bench/gpu_replication.sh` (the one-line entry). On the GPU machine it:

1. checks what the reward service and the trainer import; installs the missing packages from the
   carried wheel folder `bench/_wheels` (made by `bench/gpu_wheels.sh`) into `bench/_site` with
   `pip install --no-index --no-deps` (or unzips them where pip is missing); stops with a clear
   message if something it cannot carry (pyarrow, pandas) is absent;
2. runs `mentor-train experiment --size gpu` (service on every core, SFT, GRPO under each reward,
   evaluation, step timing) with a wall-time budget, writing experiment.json/.txt to `$OUT/experiment`
   when `$OUT` is set (the device tool brings that folder back), else to runs/gpu-experiment.

Back on the workstation, `python bench/gpu_replication.py --write-results PATH/experiment.json`
writes the run's section of bench/RESULTS.md from that real JSON (never from a toy run).

Extra arguments go to `mentor-train experiment` (e.g. `--seeds 1,2 --with-strict --budget-s 420`).
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import importlib.util
import json
import math
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WHEELS = ROOT / "bench" / "_wheels"
SITE = ROOT / "bench" / "_site"
SOURCES = [ROOT / "server", ROOT / "client", ROOT / "trainer"]

# (module to look for, distribution whose wheel provides it). The closure of what the service and
# the trainer import beyond torch, transformers, accelerate, peft and httpx (which the machine has).
NEEDED = [
    ("trl", "trl"),
    ("datasets", "datasets"),
    ("dill", "dill"),
    ("xxhash", "xxhash"),
    ("multiprocess", "multiprocess"),
    ("fastapi", "fastapi"),
    ("starlette", "starlette"),
    ("annotated_doc", "annotated-doc"),
    ("opentelemetry", "opentelemetry-api"),
    ("uvicorn", "uvicorn"),
    ("click", "click"),
    ("h11", "h11"),
    ("pydantic", "pydantic"),
    ("pydantic_core", "pydantic-core"),
    ("annotated_types", "annotated-types"),
    ("typing_inspection", "typing-inspection"),
    ("pydantic_settings", "pydantic-settings"),
    ("dotenv", "python-dotenv"),
    ("prometheus_client", "prometheus-client"),
    ("rapidfuzz", "rapidfuzz"),
    ("jsonschema", "jsonschema"),
    ("jsonschema_specifications", "jsonschema-specifications"),
    ("referencing", "referencing"),
    ("rpds", "rpds-py"),
    ("attrs", "attrs"),
    ("math_verify", "math-verify"),
    ("latex2sympy2_extended", "latex2sympy2_extended"),
    ("antlr4", "antlr4-python3-runtime"),
    ("re2", "google-re2"),
    ("fastapi_offline", "fastapi-offline"),
    ("Stemmer", "PyStemmer"),
    ("pyarrow", "pyarrow"),
    ("pandas", "pandas"),
    ("dateutil", "python-dateutil"),
    ("yaml", "pyyaml"),
]
# Installed together or not at all (pydantic pins its compiled core exactly).
GROUPS = [{"pydantic", "pydantic-core", "annotated-types", "typing-inspection"}]
CHECK_IMPORTS = (
    "import trl.trainer.grpo_trainer, datasets, fastapi, uvicorn, pydantic_settings, rapidfuzz, jsonschema, "
    "math_verify, prometheus_client, Stemmer, pyarrow.json, numpy, mentor_server.api.app, mentor_trainer.experiment"
)


def _normal(name: str) -> str:
    return name.lower().replace("_", "-")


def _wheel_for(dist: str) -> Path | None:
    prefix = _normal(dist).replace("-", "_") + "-"
    for path in sorted(WHEELS.glob("*.whl")):
        if path.name.lower().startswith(prefix):
            return path
    return None


def _pydantic_too_old() -> bool:
    try:
        major, minor = (int(p) for p in md.version("pydantic").split(".")[:2])
    except (md.PackageNotFoundError, ValueError):
        return True
    return (major, minor) < (2, 9)  # fastapi's floor


def missing_distributions() -> list[str]:
    """Distributions to install: modules that cannot be found, plus whole groups with a bad member."""
    missing = [dist for module, dist in NEEDED if importlib.util.find_spec(module) is None]
    if _pydantic_too_old():
        missing.append("pydantic")
    for group in GROUPS:
        if group & set(missing):
            missing.extend(group)
    return sorted(set(missing), key=_normal)


def install(dists: list[str]) -> None:
    """Install wheels into bench/_site (no index, no dependency resolution)."""
    wheels = {d: _wheel_for(d) for d in dists}
    absent = sorted(d for d, w in wheels.items() if w is None)
    if absent:
        hint = (
            " (pyarrow/pandas: run `bash bench/gpu_wheels.sh --with-arrow`, 75 MiB)"
            if {
                "pyarrow",
                "pandas",
            }
            & set(absent)
            else ""
        )
        raise SystemExit(
            f"gpu_replication: this machine lacks {', '.join(absent)} and bench/_wheels has no wheel for "
            f"{'it' if len(absent) == 1 else 'them'}{hint}. Run `bash bench/gpu_wheels.sh` on a machine "
            "with PyPI access and carry bench/_wheels."
        )
    files = [str(w) for w in wheels.values() if w is not None]
    SITE.mkdir(parents=True, exist_ok=True)
    print(f"gpu_replication: installing {len(files)} wheels into {SITE}: {', '.join(sorted(dists))}", flush=True)
    has_pip = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode == 0
    if has_pip:
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--upgrade"]
        subprocess.run([*cmd, "--target", str(SITE), *files], check=True)
    else:  # a wheel is a zip of importable files: enough for imports (no console scripts needed)
        for path in files:
            with zipfile.ZipFile(path) as archive:
                archive.extractall(SITE)


def environment() -> dict[str, str]:
    env = dict(os.environ)
    paths = [*map(str, SOURCES)]
    if SITE.exists():
        paths.append(str(SITE))
    env["PYTHONPATH"] = os.pathsep.join([*paths, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    return env


def prepare() -> dict[str, str]:
    if sys.version_info[:2] != (3, 11):
        print(
            f"gpu_replication: warning: Python {sys.version.split()[0]}; the carried wheels are built for 3.11",
            flush=True,
        )
    missing = missing_distributions()
    if missing:
        install(missing)
    else:
        print("gpu_replication: every needed package is already installed", flush=True)
    env = environment()
    check = subprocess.run([sys.executable, "-c", CHECK_IMPORTS], env=env, capture_output=True, text=True)
    if check.returncode != 0:
        raise SystemExit(f"gpu_replication: the imports still fail after installing:\n{check.stderr[-3000:]}")
    return env


def run(extra: list[str]) -> int:
    env = prepare()
    out = Path(os.environ["OUT"]) / "experiment" if os.environ.get("OUT") else ROOT / "runs" / "gpu-experiment"
    label = "bash bench/gpu_replication.sh" + ("" if not extra else " " + " ".join(extra))
    argv = [
        sys.executable, "-m", "mentor_trainer.cli", "experiment", "--size", "gpu",
        "--out", str(out), "--workdir", "/tmp/mentor-gpu-work", "--command-label", label, *extra,
    ]  # fmt: skip
    print("gpu_replication: " + " ".join(argv[1:]), flush=True)
    return subprocess.run(argv, env=env, cwd=ROOT).returncode


# ---------------------------------------------------------------------------- RESULTS.md
def _accuracy(report: dict[str, Any], method: str, split: str) -> float | None:
    values = []
    for entry in report["evaluations"]:
        if entry["method"] != method:
            continue
        if split == "ood_mean":
            ood = [
                m["accuracy"] for s, m in entry["splits"].items() if s.startswith("ood_") and m["accuracy"] is not None
            ]
            if ood:
                values.append(sum(ood) / len(ood))
        elif entry["splits"][split]["accuracy"] is not None:
            values.append(entry["splits"][split]["accuracy"])
    return sum(values) / len(values) if values else None


def comparisons(report: dict[str, Any]) -> list[str]:
    """Accuracy differences with a rough binomial noise bound (2 standard errors of a difference)."""
    n_test = next(e["splits"]["test"]["n"] for e in report["evaluations"] if e["method"] == "sft")
    n_ood = sum(m["n"] for s, m in report["evaluations"][0]["splits"].items() if s.startswith("ood_"))
    pairs = [(m, "sft") for m in report["methods"]] + [("mentor", "sparse"), ("flexible", "sparse")]
    lines = []
    for a, b in pairs:
        if a not in report["methods"] or (b != "sft" and b not in report["methods"]):
            continue
        for split, n in (("test", n_test), ("ood_mean", n_ood)):
            x, y = _accuracy(report, a, split), _accuracy(report, b, split)
            if x is None or y is None:
                continue
            p = (x + y) / 2
            bound = 2 * math.sqrt(max(p * (1 - p), 1 / n) * 2 / n)
            verdict = "within noise" if abs(x - y) <= bound else ("higher" if x > y else "lower")
            where = "in-domain" if split == "test" else "OOD mean"
            lines.append(f"- {a} vs {b}, {where}: {x:.3f} vs {y:.3f} ({x - y:+.3f}; 2 SE ≈ {bound:.3f}): {verdict}")
    return lines


def write_results(path: Path) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    sys.path[:0] = [str(p) for p in SOURCES]
    from _results import write_section

    from mentor_trainer.experiment import render_report

    report = json.loads(path.read_text())
    env = report["environment"]
    if env.get("device") != "cuda" or report["size"]["name"] != "gpu":
        raise SystemExit(f"{path}: not a GPU-size run on CUDA; RESULTS.md takes only the real experiment")
    runs = report["grpo_runs"]
    shares = [r["stats"]["reward_wait_share"] for r in runs if r["stats"]["reward_wait_share"] is not None]
    completions = min((r["completions_per_step"] for r in runs), default=0)
    target = (
        f"Reward waiting time: at most {100 * max(shares):.2f}% of GRPO step time at {completions} completions per "
        f"step (target ≤ 2%): {'met' if max(shares) <= 0.02 else 'NOT met'}."
        if shares
        else "No GRPO run finished, so no step timing."
    )
    body = "\n".join(
        [
            f"Ran on: {env.get('gpu', '?')}, torch {env.get('torch')}, transformers {env.get('transformers')}, "
            f"trl {env.get('trl')}, {env.get('cpu_count')} CPU cores (the `machine` line above is where this "
            f"section was written). Seeds {report['seeds']}, data seed {report['data_seed']}; "
            f"{'complete' if report['complete'] else 'INCOMPLETE (the run stopped early)'}; "
            f"{report['elapsed_s']:.0f} s wall.",
            "",
            "```",
            render_report(report),
            "```",
            "",
            target,
            "",
            "Differences (rough binomial bound; evaluation is greedy on fixed splits):",
            *comparisons(report),
        ]
    )
    write_section(
        "gpu_replication",
        "GPU: SFT vs GRPO under sparse / MENTOR / flexible rewards (the paper in miniature)",
        body,
        command=report.get("command") or "bash bench/gpu_replication.sh",
    )
    print(f"wrote the gpu_replication section of bench/RESULTS.md from {path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write-results", type=Path, default=None, help="experiment.json of a real GPU run")
    parser.add_argument("--check", action="store_true", help="only install and check the imports")
    args, extra = parser.parse_known_args()
    if args.write_results is not None:
        write_results(args.write_results)
        return 0
    if args.check:
        prepare()
        print("gpu_replication: imports OK", flush=True)
        return 0
    return run(extra)


if __name__ == "__main__":
    sys.exit(main())
