"""The whole test suite against every supported ComfyUI, one pytest run per backend with its own interpreter.

    python -m tools.test_matrix              # every tier on 0.3.64 and on 0.29.0
    python -m tools.test_matrix -k runner    # extra arguments go to each pytest run

Each run gets ``COMFYUI_PATH`` (tools/comfyui_path.py) and the frontends its browser tests use
(``INSTANCEASSEMBLE_FRONTENDS``); output streams as it comes, then a table of counts and times per backend and a last
line ``N passed, N failed``. A missing backend or interpreter counts as a failure and is named; the exit status is
non-zero on any failure. ``bash .ci/setup`` prepares both backends' environments.
"""
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tools.comfyui_path import PACK_ROOT

COMFY_HOME = Path.home() / "comfy"


@dataclass(frozen=True)
class Backend:
    version: str
    comfyui: Path
    python: str     # its interpreter: a command on PATH or a path
    frontends: str  # comma-separated frontend versions of its browser tests


BACKENDS = (
    Backend("0.3.64", COMFY_HOME / "ComfyUI", "python3", "1.27.10"),  # the system interpreter
    Backend("0.29.0", COMFY_HOME / "ComfyUI-0.29.0", str(COMFY_HOME / "venv-0.29.0" / "bin" / "python"),
            "1.47.10,1.58.1"),
)
SUMMARY_COUNTS = re.compile(r"(\d+) (passed|failed|errors?)\b")


def missing(backend: Backend) -> str | None:
    if not (backend.comfyui / "comfy" / "model_patcher.py").is_file():
        return f"ComfyUI {backend.version} not found at {backend.comfyui} (place its source there)"
    if shutil.which(backend.python) is None:
        return f"the interpreter of ComfyUI {backend.version} is missing: {backend.python} (run: bash .ci/setup)"
    return None


def counts(summary: str) -> tuple[int, int]:
    """(passed, failed + errors) from pytest's last line, e.g. '3 failed, 280 passed, 1 error in 180.2s'."""
    found = {kind.rstrip("s"): int(n) for n, kind in SUMMARY_COUNTS.findall(summary)}
    return found.get("passed", 0), found.get("failed", 0) + found.get("error", 0)


def run_backend(backend: Backend, pytest_args: list[str]) -> tuple[int, int, float]:
    """Stream one pytest run; returns (passed, failed, seconds). A run that fails without counting anything
    (collection error, pytest.exit) counts as one failure."""
    env = dict(os.environ, COMFYUI_PATH=str(backend.comfyui), INSTANCEASSEMBLE_FRONTENDS=backend.frontends)
    env.pop("VIRTUAL_ENV", None)
    command = [backend.python, "-m", "pytest", *pytest_args]
    print(f"===== ComfyUI {backend.version}: {' '.join(command)} (COMFYUI_PATH={backend.comfyui})", flush=True)
    start = time.perf_counter()
    last = ""
    with subprocess.Popen(command, cwd=PACK_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, bufsize=1) as process:
        for line in process.stdout:
            sys.stdout.write(line)
            if line.strip():
                last = line
    seconds = time.perf_counter() - start
    passed, failed = counts(last)
    if process.returncode != 0 and failed == 0:
        failed = 1
    return passed, failed, seconds


def main(argv=None) -> int:
    pytest_args = list(sys.argv[1:] if argv is None else argv)
    results = []
    for backend in BACKENDS:
        problem = missing(backend)
        if problem:
            print(f"===== ComfyUI {backend.version}: ERROR: {problem}", flush=True)
            results.append((backend, 0, 1, 0.0, problem))
            continue
        results.append((backend, *run_backend(backend, pytest_args), ""))
    print("\n===== per backend")
    for backend, passed, failed, seconds, problem in results:
        print(f"ComfyUI {backend.version:8} {passed:5} passed {failed:4} failed {seconds:8.1f} s  {problem}".rstrip())
    passed, failed = sum(r[1] for r in results), sum(r[2] for r in results)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
