"""The benchmarks' correctness check at small size: the per-instance loop in the reference's structure
(bench/loop_baseline.py, variant (a)) and the core's batched branch over the same layers (variant (b)) agree in
float32 to 1e-5 relative, for the Flux double block, the Flux single block and SD3 joint blocks (also the
context-pre-only last one). No timing here; bench/instance_attention.py does that."""
import pytest
import torch

from bench.bench_blocks import JointBlock, SingleBlock
from bench.bench_case import make_case, relative_error
from bench.bench_layouts import Workload, demo_workloads, dense_workload

TOLERANCE = 1e-5
GRID = (12, 16)
TXT = 7


def _blocks():
    return {
        "flux-double": lambda: JointBlock("flux", 256, 2, rank=4, seed=1),     # head_dim 128: Flux RoPE axes
        "flux-single": lambda: SingleBlock(256, 2, rank=4, seed=2),
        "sd3": lambda: JointBlock("sd3", 128, 2, rank=4, seed=3),
        "sd3-last": lambda: JointBlock("sd3", 128, 2, rank=4, context_pre_only=True, seed=4),
    }


def _layouts():
    return {
        "dense K=1": dense_workload(1, GRID, seed=1),
        "dense K=12": dense_workload(12, GRID, seed=2, side=(0.1, 0.6)),
        "demo bigchair": next(w for w in demo_workloads(GRID) if w.name.endswith("bigchair")),
    }


@pytest.fixture(scope="module")
def layouts():
    return _layouts()


@pytest.mark.parametrize("layout_name", ["dense K=1", "dense K=12", "demo bigchair"])
@pytest.mark.parametrize("block_name", list(_blocks()))
@torch.no_grad()
def test_loop_and_branch_agree(block_name, layout_name, layouts):
    workload = layouts[layout_name]
    case = make_case(_blocks()[block_name](), workload, TXT, layout_scale=0.8, seed=5)
    loop, branch = case.run_loop(), case.run_branch()
    assert case.compare(loop, branch) <= TOLERANCE


def test_the_layouts_overlap_and_leave_tokens_uncovered(layouts):
    dense = layouts["dense K=12"]
    assert sum(dense.sizes) > dense.union          # overlapping boxes: averaging is exercised
    assert dense.union < GRID[0] * GRID[1]          # uncovered tokens: the extra FFN / pass-through is exercised


@pytest.mark.parametrize("block_name", ["flux-double", "flux-single", "sd3"])
@torch.no_grad()
def test_the_check_sees_a_wrong_branch(block_name, layouts):
    """The comparison is not vacuous: the branch moves the stream, and a branch with another layout scale, or
    with the layout tokens' RoPE positions off by one, is far outside the tolerance."""
    workload = layouts["dense K=12"]
    block = _blocks()[block_name]()
    case = make_case(block, workload, TXT, layout_scale=0.8, seed=5)
    loop = case.run_loop()
    rescaled = make_case(block, workload, TXT, layout_scale=0.9, seed=5)
    assert case.compare(loop, rescaled.run_branch()) > 1e-3
    if block_name.startswith("flux"):
        # Same boxes, each layout token's RoPE id one row and one column off: nothing else differs.
        shifted = Workload(workload.name, workload.token_indices, workload.positions + 1, workload.grid)
        moved = make_case(block, shifted, TXT, layout_scale=0.8, seed=5)
        assert case.compare(loop, moved.run_branch()) > 1e-4
    stock_input = make_case(block, workload, TXT, layout_scale=0.0, seed=5).run_branch()
    branch = case.run_branch()
    first = branch[0] if isinstance(branch, tuple) else branch
    base = stock_input[0] if isinstance(stock_input, tuple) else stock_input
    assert relative_error(first, base) > 1e-3


@pytest.mark.parametrize("block_name", list(_blocks()))
@torch.no_grad()
def test_bfloat16_path_runs_and_stays_close(block_name, layouts):
    """The GPU benchmark times bf16; here the same code path runs on the CPU in bf16 and stays near float32."""
    workload = layouts["dense K=12"]
    block = _blocks()[block_name]()
    reference = make_case(block, workload, TXT, seed=5)
    expected = reference.run_branch()
    low = make_case(block.to(torch.bfloat16), workload, TXT, seed=5, dtype=torch.bfloat16)
    loop, branch = low.run_loop(), low.run_branch()
    for out in (loop, branch):
        first = out[0] if isinstance(out, tuple) else out
        target = expected[0] if isinstance(expected, tuple) else expected
        assert first.dtype == torch.bfloat16 and torch.isfinite(first.float()).all()
        assert relative_error(first.float(), target) < 0.05


def test_the_benchmark_script_runs_and_its_check_passes(capsys):
    """bench/instance_attention.py end to end at small size (every block kind, a dense and a demo layout): it
    prints the table and exits 0, i.e. its own (a)-vs-(b) check passed. Timings are not looked at."""
    from bench import instance_attention
    grad_before, threads_before = torch.is_grad_enabled(), torch.get_num_threads()
    code = instance_attention.main(["--size", "small", "--repeats", "1", "--ks", "5", "--no-large",
                                    "--threads", "0", "--clock", "wall", "--malloc", "system"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert torch.is_grad_enabled() == grad_before and torch.get_num_threads() == threads_before
    for block in ("Flux double block", "Flux single block", "SD3 joint block"):
        assert block in out
    assert "demo bigchair" in out and "FAIL" not in out
