#!/usr/bin/env python3
"""Instance-assembling attention of one layout block: the reference loop vs the pack's batched branch vs the stock
block, on the same inputs, measured side by side in one run.

Variants (see bench_case.py):
  (a) loop    per-instance loop in the reference's structure (bench/loop_baseline.py): every token is
              re-projected once per box that covers it;
  (b) branch  instanceassemble_core.assemble.joint_block_branch / single_block_branch over plain nn.Linear layers
              wrapped with instanceassemble_core.lora.with_deltas, as the ComfyUI hosts build them;
  (c) stock   the stock block alone (written compactly in bench/bench_blocks.py with the same layers), which
              calibrates the machine: (b)/(c) is compared with the FLOP ratio floor(b)/FLOPs(c).

Blocks: Flux double block, Flux single block (both with qk-norm and RoPE), SD3 joint block (neither).
Layouts: dense random layouts (box sides 2–40 % of the image side, heavy overlap) with K boxes, a K = 100 layout
of large boxes (sides 30–80 %) for the memory target, and the official demo layouts, on a 64 × 64 token grid.

Defaults: --device cpu: float32, Flux D = 768 / 6 heads, SD3 D = 768 / 12 heads (head_dim 64, as SD3),
          4096 image tokens, 512 (Flux) / 333 (SD3) text tokens.
          --device cuda: bfloat16 at the real widths, Flux D = 3072 / 24 heads, SD3-medium D = 1536 / 24 heads.
The (a)-vs-(b) agreement check always runs in float32 (a float32 copy of the block when timing in bf16).
"""
import argparse
import datetime
import pathlib
import platform
import sys
from dataclasses import dataclass

from . import bench_measure as measure  # sets the profiler's log level before torch is imported

import torch  # noqa: E402

from . import bench_flops as flops  # noqa: E402
from .bench_blocks import JointBlock, SingleBlock  # noqa: E402
from .bench_case import make_case  # noqa: E402
from .bench_layouts import demo_workloads, dense_workload  # noqa: E402

KINDS = ("double", "single", "sd3")
TOLERANCE = 1e-5
QUOTIENT_TARGET = 1.3
MEMORY_TARGET = 2.0
CUDA_LOOP_TARGET = 5.0
LARGE_SIDES = (0.30, 0.80)


@dataclass
class Config:
    dim: int
    heads: int
    txt: int


def configs(args) -> dict[str, Config]:
    if args.size == "small":
        return {"double": Config(256, 2, 32), "single": Config(256, 2, 32), "sd3": Config(128, 2, 32)}
    if args.device.startswith("cuda"):
        flux = Config(3072, 24, 512)
        sd3 = Config(1536, 24, 333)
    else:
        flux = Config(768, 6, 512)
        sd3 = Config(768, 12, 333)
    if args.dim:
        flux = Config(args.dim, args.dim // 128, flux.txt)
        sd3 = Config(args.dim, args.dim // 64, sd3.txt)
    return {"double": flux, "single": flux, "sd3": sd3}


def build_block(kind: str, cfg: Config, rank: int, seed: int):
    if kind == "single":
        return SingleBlock(cfg.dim, cfg.heads, rank=rank, seed=seed)
    return JointBlock("flux" if kind == "double" else "sd3", cfg.dim, cfg.heads, rank=rank, seed=seed)


def block_label(kind: str, cfg: Config) -> str:
    name = {"double": "Flux double", "single": "Flux single", "sd3": "SD3 joint"}[kind]
    return f"{name} block, D={cfg.dim}, {cfg.heads} heads, {cfg.txt} text tokens"


def workloads(args, grid):
    rows = [dense_workload(k, grid, seed=args.seed + k) for k in args.ks]
    if not args.no_large:
        rows.append(dense_workload(100, grid, seed=args.seed + 1000, side=LARGE_SIDES, tag="-large"))
    if not args.no_demo:
        rows.extend(demo_workloads(grid))
    return rows


def fmt_ms(seconds):
    return f"{seconds * 1e3:9.1f}"


HEADER = (f"{'layout':<17}{'K':>4}{'Σn':>8}{'|∪|':>6} |{'(a) ms':>9}{'(b) ms':>9}{'(c) ms':>9} |"
          f"{'(a)/(b)':>8}{'FLOP':>6} |{'(b)/(c)':>8}{'FLOP':>6}{'meas/FLOP':>10} |"
          f"{'mem(b)/(c)':>11}{'(b) MB':>8}{'(c) MB':>8} |{'err (a,b)':>10}")


def main(argv=None) -> int:
    with torch.no_grad():
        return _main(argv)


def _main(argv) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    parser.add_argument("--dtype", choices=("float32", "bfloat16", "float16"),
                        help="timing dtype (default float32 on CPU, bfloat16 on CUDA)")
    parser.add_argument("--blocks", default=",".join(KINDS), help=f"comma list of {KINDS} (default all)")
    parser.add_argument("--ks", default="1,5,20,50,100", help="dense layouts' box counts (default 1,5,20,50,100)")
    parser.add_argument("--no-large", action="store_true", help="skip the K=100 large-box layout")
    parser.add_argument("--no-demo", action="store_true", help="skip the official demo layouts")
    parser.add_argument("--size", choices=("full", "small"), default="full",
                        help="small: D=256/128, 16x16 grid, 32 text tokens (a quick check of the code paths)")
    parser.add_argument("--dim", type=int, help="override the width (Flux heads = D/128, SD3 heads = D/64)")
    parser.add_argument("--grid", type=int, help="token grid side (default 64, small: 16)")
    parser.add_argument("--rank", type=int, help="LoRA rank (default D/48: 16 at D=768, 64 at D=3072)")
    parser.add_argument("--repeats", type=int, help="timed rounds per row (default 3 on CPU, 20 on CUDA)")
    parser.add_argument("--budget", type=float, default=10.0,
                        help="per variant and row: stop sampling after this many seconds (default 10)")
    parser.add_argument("--loop-on-large", action="store_true",
                        help="also run the loop (a) on the K=100 large-box layout on the CPU (Σn ≈ 120k: minutes); "
                             "always done on CUDA")
    parser.add_argument("--stat", choices=("median", "min"), default="median", help="statistic of the samples")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1; 0 = torch's default)")
    parser.add_argument("--clock", choices=("process", "wall"), default="process",
                        help="CPU timing clock (default: process CPU time, which with one thread is the compute "
                             "time of the call even when other processes share the CPU; CUDA always uses wall time)")
    parser.add_argument("--malloc", choices=("keep", "system"), default="keep",
                        help="CPU: keep: glibc malloc keeps freed memory (no page-fault noise, default); "
                             "system: leave malloc alone")
    parser.add_argument("--token-budget", type=int, help="build_instance_batch token_budget (default: the core's)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available")
    dtype = getattr(torch, args.dtype or ("bfloat16" if device.type == "cuda" else "float32"))
    if args.threads and device.type == "cpu":
        torch.set_num_threads(args.threads)
    clock = args.clock if device.type == "cpu" else "wall"
    if clock == "process" and torch.get_num_threads() > 1:
        parser.error("--clock process needs --threads 1 (with more threads it counts their spin-waits); "
                     "use --clock wall")
    args.ks = [int(k) for k in args.ks.split(",") if k]
    kinds = [k for k in args.blocks.split(",") if k]
    if set(kinds) - set(KINDS):
        parser.error(f"--blocks: unknown {sorted(set(kinds) - set(KINDS))}; choose from {KINDS}")
    grid_side = args.grid or (16 if args.size == "small" else 64)
    grid = (grid_side, grid_side)
    repeats = args.repeats or (20 if device.type == "cuda" else 3)
    kept = device.type == "cpu" and args.malloc == "keep" and measure.keep_freed_memory()
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False   # the float32 agreement check must be float32
        torch.backends.cudnn.allow_tf32 = False

    hardware = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()
    print(f"# instance_attention  {datetime.date.today()}  torch {torch.__version__}  python {platform.python_version()}")
    print(f"# device {device} ({hardware}), dtype {str(dtype).removeprefix('torch.')}, "
          f"threads {torch.get_num_threads()}, {clock} clock, grid {grid[0]}x{grid[1]}, {args.stat} of ≤{repeats} "
          f"interleaved rounds{', malloc keeps freed memory' if kept else ''}")
    print("# (a) per-instance loop (reference structure)  (b) batched branch (instanceassemble_core)  "
          "(c) stock block alone")
    print("# FLOP columns: analytic predictions (bench/bench_flops.py); meas/FLOP = measured (b)/(c) ÷ floor(b)/FLOPs(c)")
    print("# mem: peak bytes allocated during the call above the entry state (CPU: torch profiler allocation "
          "events; CUDA: max_memory_allocated)")
    print("# err: max |(b) − (a)| / max |(a)| of the branch's effect (image update and layout stream), float32")

    results = []
    failures = []
    for kind in kinds:
        cfg = configs(args)[kind]
        rank = args.rank or max(4, cfg.dim // 48)
        master = build_block(kind, cfg, rank, args.seed)
        timed_block = master.to(device, dtype)
        check_block = timed_block if dtype == torch.float32 else build_block(kind, cfg, rank, args.seed).to(device)
        print(f"\n## {block_label(kind, cfg)}, LoRA rank {rank}, {grid[0] * grid[1]} image tokens")
        print(HEADER)
        stock_memory = None
        for workload in workloads(args, grid):
            with_loop = (args.loop_on_large or device.type == "cuda"
                         or not workload.name.startswith("dense-large"))
            case = make_case(timed_block, workload, cfg.txt, seed=args.seed, device=device, dtype=dtype,
                             token_budget=args.token_budget)
            error = None
            if with_loop and check_block is timed_block:
                error = case.compare(case.run_loop(), case.run_branch())      # doubles as the warm-up
            elif with_loop:
                check = make_case(check_block, workload, cfg.txt, seed=args.seed, device=device,
                                  token_budget=args.token_budget)
                error = check.compare(check.run_loop(), check.run_branch())
                del check
                case.run_loop(), case.run_branch()                            # warm-up
            else:
                case.run_branch()                                             # warm-up
            if stock_memory is None:
                case.run_stock()                                              # warm-up (once per block)
                stock_memory = measure.peak_bytes(case.run_stock, device)
            branch_memory = measure.peak_bytes(case.run_branch, device)
            variants = {"a": case.run_loop} if with_loop else {}
            variants.update(b=case.run_branch, c=case.run_stock)
            samples = measure.interleaved(variants, device, repeats, args.budget, clock)
            t = {name: measure.summarize(s, args.stat) for name, s in samples.items()}
            p = flops.predictions(timed_block.kind, cfg.dim, rank, grid[0] * grid[1], cfg.txt, workload.sizes,
                                  workload.union)
            row = dict(kind=kind, name=workload.name, k=workload.num_instances, sum_n=sum(workload.sizes),
                       union=workload.union, t=t, n_samples={n: len(s) for n, s in samples.items()},
                       ab=t["a"] / t["b"] if with_loop else None, ab_pred=p["a"] / p["b"],
                       bc=t["b"] / t["c"], bc_pred=p["b"] / p["c"],
                       mem=branch_memory / stock_memory, mem_b=branch_memory, mem_c=stock_memory, err=error)
            row["quotient"] = row["bc"] / row["bc_pred"]
            results.append(row)
            print(format_row(row), flush=True)
            if error is not None and error > TOLERANCE:
                failures.append(f"{kind} {workload.name}: (a) vs (b) relative error {error:.2e} > {TOLERANCE:.0e}")
            del case
        del master, timed_block, check_block
    print_targets(results, device)
    if args.size == "small" or args.dim or args.grid:
        print("(the speed and memory targets are defined for the default full-size configuration; shown for "
              "information only)")
    for failure in failures:
        print("FAIL", failure)
    return 1 if failures else 0


def format_row(r) -> str:
    name = r["name"].replace(f" K={r['k']}", "")
    few = "" if min(r["n_samples"].values()) > 1 else "*"
    loop_ms = fmt_ms(r["t"]["a"]) if "a" in r["t"] else f"{'—':>9}"
    ab = f"{r['ab']:>8.2f}" if r["ab"] is not None else f"{'—':>8}"
    err = f"{r['err']:>10.1e}" if r["err"] is not None else f"{'—':>10}"
    return (f"{name:<17}{r['k']:>4}{r['sum_n']:>8}{r['union']:>6} |{loop_ms}{fmt_ms(r['t']['b'])}"
            f"{fmt_ms(r['t']['c'])} |{ab}{r['ab_pred']:>6.2f} |{r['bc']:>8.3f}{r['bc_pred']:>6.3f}"
            f"{r['quotient']:>10.2f} |{r['mem']:>11.2f}{r['mem_b'] / 2**20:>8.0f}{r['mem_c'] / 2**20:>8.0f} |"
            f"{err}{few}")


def print_targets(results, device) -> None:
    print("\n## targets")
    for kind in dict.fromkeys(r["kind"] for r in results):
        rows = [r for r in results if r["kind"] == kind]
        dense = {r["k"]: r for r in rows if r["name"].startswith("dense K=")}
        for k in (20, 100):
            if k in dense:
                q = dense[k]["quotient"]
                print(f"{kind:<7} (b)/(c) ÷ FLOP floor at K={k:<3}: {q:5.2f}  (target ≤ {QUOTIENT_TARGET})  "
                      f"{'ok' if q <= QUOTIENT_TARGET else 'MISSED'}")
        advantage = [r for r in rows if r["k"] >= 5 and r["ab"] is not None]
        missed = [f"{r['name']} ({r['ab']:.2f} < {r['ab_pred']:.2f})" for r in advantage if r["ab"] < r["ab_pred"]]
        print(f"{kind:<7} (a)/(b) ≥ FLOP prediction on the {len(advantage)} layouts with K ≥ 5: "
              f"{'ok' if not missed else 'MISSED on ' + ', '.join(missed)}")
        for r in rows:
            if r["name"].startswith("dense-large"):
                print(f"{kind:<7} peak memory (b)/(c) at {r['name']}: {r['mem']:.2f}  (target ≤ {MEMORY_TARGET})  "
                      f"{'ok' if r['mem'] <= MEMORY_TARGET else 'MISSED'}")
        if device.type == "cuda" and 100 in dense and dense[100]["ab"] is not None:
            ab = dense[100]["ab"]
            print(f"{kind:<7} (a)/(b) at K=100 on CUDA: {ab:.2f}  (target ≥ {CUDA_LOOP_TARGET})  "
                  f"{'ok' if ab >= CUDA_LOOP_TARGET else 'MISSED'}")
        worst = max(r["err"] for r in rows if r["err"] is not None)
        print(f"{kind:<7} (a) vs (b) agreement, worst relative error {worst:.1e}  (target ≤ {TOLERANCE:.0e})  "
              f"{'ok' if worst <= TOLERANCE else 'FAILED'}")
    if any(min(r["n_samples"].values()) <= 1 for r in results):
        print("* a variant of this row was timed only once (--repeats 1, or its --budget ran out)")


def cpu_model() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
