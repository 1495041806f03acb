"""Mask-shaped instance regions: a binary mask stored resolution-independently, and its token set on any grid.

A region is a binary mask of its own size (``height`` × ``width``) that stretches over the whole image: mask pixel
(i, j) covers the normalised area [j/width, (j+1)/width) × [i/height, (i+1)/height), whatever the image size. Token
cell (r, c) of a ``grid_h`` × ``grid_w`` token grid (16-px cells, the reference's floor(H/16) × floor(W/16)) covers
[c/grid_w, (c+1)/grid_w) × [r/grid_h, (r+1)/grid_h). A cell belongs to the region when the mask covers at least
``threshold`` of its area (exact area overlap, so a mask of any size maps to any grid). The instance's box features
(dense samples, Fourier, the Flux layout token's position) still come from its bbox, the mask's bounding box.

For a rectangle mask whose edges lie on the 16-px grid, every cell is fully in or out, so the token set is the
box's (``box_token_indices``) for every threshold. An unaligned rectangle differs from the box rule: the box
rule truncates both corners (it keeps a partly covered first row/column and drops a partly covered last one),
the region rule keeps each partly covered cell whose covered share reaches the threshold.

Regions are stored as COCO uncompressed RLE (column-major run lengths, starting with a run of 0s), so layout JSON
keeps them through save and reload.
"""
from dataclasses import dataclass

import torch
from torch import Tensor

from .geometry import box_token_indices

MASK_ON = 0.5  # a mask value at or above this is inside the region


@dataclass(frozen=True)
class Region:
    """A binary mask [height, width] as COCO RLE ``counts``; ``threshold`` is the share of a token cell it must
    cover for the cell to be one of the instance's tokens (0 < threshold <= 1)."""

    height: int
    width: int
    counts: tuple[int, ...]
    threshold: float = 0.5

    def __post_init__(self):
        object.__setattr__(self, "counts", tuple(int(c) for c in self.counts))
        if self.height <= 0 or self.width <= 0:
            raise ValueError(f"a region needs a positive size, got {self.height}x{self.width}.")
        if any(c < 0 for c in self.counts) or sum(self.counts) != self.height * self.width:
            raise ValueError(f"the run lengths must be non-negative and add up to height × width = "
                             f"{self.height * self.width}, got a total of {sum(self.counts)}.")
        if not 0 < self.threshold <= 1:
            raise ValueError(f"the threshold must be in (0, 1], got {self.threshold}.")

    @classmethod
    def from_mask(cls, mask: Tensor, threshold: float = 0.5) -> "Region":
        """From a mask [H, W] (values >= 0.5 are inside)."""
        on = (mask.detach().float().cpu() >= MASK_ON).t().reshape(-1)  # column-major, as COCO
        change = torch.nonzero(on[1:] != on[:-1]).reshape(-1) + 1
        edges = torch.cat((torch.tensor([0]), change, torch.tensor([on.numel()])))
        runs = (edges[1:] - edges[:-1]).tolist()
        if on.numel() and bool(on[0]):
            runs = [0] + runs
        return cls(int(mask.shape[0]), int(mask.shape[1]), tuple(runs), threshold)

    def mask(self) -> Tensor:
        """[height, width] bool."""
        values = torch.tensor([i % 2 == 1 for i in range(len(self.counts))], dtype=torch.bool)
        flat = torch.repeat_interleave(values, torch.tensor(self.counts, dtype=torch.long))
        return flat.reshape(self.width, self.height).t()

    def bbox(self, image_width: int, image_height: int) -> tuple[float, float, float, float] | None:
        """(x1, y1, x2, y2) of the mask's inside pixels, in pixels of an image of that size; None if empty."""
        mask = self.mask()
        rows, cols = mask.any(dim=1).nonzero().reshape(-1), mask.any(dim=0).nonzero().reshape(-1)
        if rows.numel() == 0:
            return None
        sx, sy = image_width / self.width, image_height / self.height
        return (int(cols[0]) * sx, int(rows[0]) * sy, (int(cols[-1]) + 1) * sx, (int(rows[-1]) + 1) * sy)

    def to_dict(self) -> dict:
        return {"size": [self.height, self.width], "counts": list(self.counts), "threshold": self.threshold}


def nearest_indices(out_size: int, in_size: int) -> Tensor:
    """[out_size] int64: for each of ``out_size`` pixels spanning the same extent as ``in_size`` mask pixels, the mask
    pixel that holds its centre (nearest-pixel sampling along one axis)."""
    centres = (torch.arange(out_size, dtype=torch.float64) + 0.5) / out_size
    return (centres * in_size).long().clamp(max=in_size - 1)


def _overlaps(cells: int, pixels: int) -> Tensor:
    """[cells, pixels] float64 overlap of cell r with pixel i along one axis, in units of 1 / (cells · pixels).

    Cell r spans [r·pixels, (r+1)·pixels), pixel i spans [i·cells, (i+1)·cells): integers, so sums are exact.
    """
    cell_lo = torch.arange(cells, dtype=torch.float64)[:, None] * pixels
    pixel_lo = torch.arange(pixels, dtype=torch.float64)[None, :] * cells
    return (torch.minimum(cell_lo + pixels, pixel_lo + cells) - torch.maximum(cell_lo, pixel_lo)).clamp(min=0)


def cell_coverage(mask: Tensor, grid_h: int, grid_w: int) -> Tensor:
    """[grid_h, grid_w] float64: the share of each token cell that the binary mask [H, W] covers (0..1)."""
    height, width = mask.shape
    covered = _overlaps(grid_h, height) @ mask.to(torch.float64) @ _overlaps(grid_w, width).t()
    return covered / (height * width)


def region_token_indices(region: Region, grid_h: int, grid_w: int) -> Tensor:
    """[n] int64 flat indices row·grid_w + col of the cells the region covers by at least its threshold, ascending."""
    coverage = cell_coverage(region.mask(), grid_h, grid_w)
    return torch.nonzero(coverage.reshape(-1) >= region.threshold).reshape(-1)


def instance_token_indices(layout, samples: Tensor, grid_h: int, grid_w: int) -> list[Tensor]:
    """Per instance: its region's tokens when it has one, else its box's (``box_token_indices`` of ``samples``)."""
    by_box = box_token_indices(samples, grid_h, grid_w)
    return [by_box[k] if inst.region is None else region_token_indices(inst.region, grid_h, grid_w).to(by_box[k])
            for k, inst in enumerate(layout.instances)]
