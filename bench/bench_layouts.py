"""Layouts for the benchmarks: dense random layouts and the official demo layouts, turned into token sets on the
transformer grid with the core's own geometry (``dense_samples`` → ``box_token_indices``)."""
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from instanceassemble_core.geometry import box_token_indices, dense_samples, layout_token_positions
from instanceassemble_core.layout import Instance, Layout, parse_layout

DEMO_LAYOUTS = Path(__file__).resolve().parents[1] / "tests" / "data" / "layouts"


@dataclass
class Workload:
    """K instances on one batch row: their image-token sets and layout-token RoPE positions."""
    name: str
    token_indices: list[Tensor]   # per instance [n_k] flat indices row·grid_w + col, ascending
    positions: Tensor             # [K, 2] (row, col) of each layout token (Flux RoPE id)
    grid: tuple[int, int]

    @property
    def num_instances(self) -> int:
        return len(self.token_indices)

    @property
    def sizes(self) -> list[int]:
        return [int(t.numel()) for t in self.token_indices]

    @property
    def union(self) -> int:
        if not self.token_indices:
            return 0
        return int(torch.unique(torch.cat(self.token_indices)).numel())

    @property
    def rows(self) -> list[int]:
        return [0] * self.num_instances

    def describe(self) -> str:
        return f"{self.name}: K={self.num_instances} Σn={sum(self.sizes)} |∪|={self.union}"


def from_layout(name: str, layout: Layout, grid: tuple[int, int]) -> Workload:
    samples = dense_samples(layout)
    return Workload(name, box_token_indices(samples, *grid), layout_token_positions(samples, *grid), grid)


def dense_layout(count: int, seed: int = 0, side: tuple[float, float] = (0.02, 0.40), size: int = 1024) -> Layout:
    """``count`` boxes on a ``size``² image, each side uniform in ``side`` × the image side, placed uniformly so
    the box fits: many boxes overlap heavily, as in DenseLayout."""
    g = torch.Generator().manual_seed(seed)
    lo, hi = side
    instances = []
    for k in range(count):
        w, h = (lo + (hi - lo) * torch.rand(2, generator=g)).mul(size).tolist()
        x1 = float(torch.rand(1, generator=g)) * (size - w)
        y1 = float(torch.rand(1, generator=g)) * (size - h)
        instances.append(Instance((round(x1), round(y1), round(x1 + w), round(y1 + h)), f"object {k}"))
    return Layout(size, size, "dense", tuple(instances))


def dense_workload(count: int, grid: tuple[int, int], seed: int = 0, side=(0.02, 0.40), tag: str = "") -> Workload:
    return from_layout(f"dense{tag} K={count}", dense_layout(count, seed, side), grid)


def demo_workloads(grid: tuple[int, int], folder: Path = DEMO_LAYOUTS) -> list[Workload]:
    """The official demo layouts (``*.json``), each on the same token grid (boxes are normalised by the layout's
    own size, so any grid works)."""
    return [from_layout(f"demo {path.stem}", parse_layout(json.loads(path.read_text())), grid)
            for path in sorted(folder.glob("*.json"))]
