#!/usr/bin/env python3
"""What importing this pack adds to ComfyUI's start-up.

Each run is a fresh Python process that first imports what ComfyUI's main.py has imported before it loads custom
nodes (its ``utils`` package, ``execution``, ``server``, ``nodes``: torch, numpy, PIL, aiohttp come with them), then
times ``import_pack()`` (the pack's ``__init__.py``, as ComfyUI imports a custom node folder). Prints the median
over the runs, the slowest run, and the top-level modules the pack import loaded that ComfyUI had not; exits 1 when
the median is over the target.

    python -m bench.import_time [--runs 7] [--target 0.5]
"""
import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHILD = f"""
import json, sys, time
from tools.comfyui_path import import_comfyui, import_pack
import_comfyui(cpu=True)
import logging
logging.disable(logging.WARNING)
import utils.extra_config, execution, server, nodes  # noqa: E401
before = set(sys.modules)
start = time.perf_counter()
import_pack()
seconds = time.perf_counter() - start
added = sorted({{name.split(".")[0] for name in set(sys.modules) - before}} - {{"comfyui_instanceassemble"}})
print(json.dumps({{"seconds": seconds, "added": added}}))
"""


def measure_once() -> dict:
    result = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        raise SystemExit(f"the measuring process failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--target", type=float, default=0.5, help="seconds")
    args = parser.parse_args()
    runs = [measure_once() for _ in range(args.runs)]
    seconds = [run["seconds"] for run in runs]
    median = statistics.median(seconds)
    print(f"import of the pack after ComfyUI's own imports: median {median:.3f} s, slowest {max(seconds):.3f} s "
          f"over {args.runs} fresh processes (target < {args.target} s)")
    print("top-level modules it adds: " + (", ".join(runs[0]["added"]) or "none"))
    return 0 if median < args.target else 1


if __name__ == "__main__":
    sys.exit(main())
