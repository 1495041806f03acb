"""Box geometry exactly as the reference computes it: dense samples, Fourier features, token sets, RoPE centres.

docs/reference-semantics.md §2, §3 and §6. The float32 operation order matters: ``int()`` truncation at an exact grid
line can move a box edge by one token, so every product and sum below is done in the same order and dtype as the
reference.
"""
import torch
from torch import Tensor

POINTS_PER_SIDE = 6
SAMPLES_PER_BOX = 2 * POINTS_PER_SIDE * POINTS_PER_SIDE  # 72
FOURIER_FREQS = 8
FOURIER_DIM = FOURIER_FREQS * 2 * SAMPLES_PER_BOX  # 1152

TOKEN_PIXELS = 16  # one transformer token covers 16 × 16 image pixels (VAE ÷ 8, patch 2)

_TOP_LEFT = (0, 1)
_BOTTOM_RIGHT = (SAMPLES_PER_BOX - 2, SAMPLES_PER_BOX - 1)  # the recomputed corner, not x2n/y2n


def normalized_boxes(layout) -> list[tuple[float, float, float, float]]:
    """(x1n, y1n, x2n, y2n) per instance in Python double, as the reference derives them from xywh (§1)."""
    corners = []
    for inst in layout.instances:
        x1, y1, x2, y2 = inst.bbox
        w, h = x2 - x1, y2 - y1
        corners.append((x1 / layout.width, y1 / layout.height, (x1 + w) / layout.width, (y1 + h) / layout.height))
    return corners


def dense_samples(layout) -> Tensor:
    """[K, 72] float32: a 6×6 grid of (x, y) per box, x-major (pair 6u+v = (x1n + u·Δx, y1n + v·Δy)), §2.

    Row[0:2] is (x1n, y1n); row[70:72] is (x1n + 5Δx, y1n + 5Δy), which may differ from (x2n, y2n) by rounding.
    """
    corners = torch.tensor(normalized_boxes(layout), dtype=torch.float32).reshape(-1, 4)
    x1, y1, x2, y2 = corners.unbind(1)
    steps = torch.arange(POINTS_PER_SIDE, dtype=torch.float32)
    step_x = (x2 - x1) / (POINTS_PER_SIDE - 1)
    step_y = (y2 - y1) / (POINTS_PER_SIDE - 1)
    xs = x1[:, None] + steps * step_x[:, None]  # [K, 6] indexed by u
    ys = y1[:, None] + steps * step_y[:, None]  # [K, 6] indexed by v
    count = corners.shape[0]
    grid = torch.stack((xs[:, :, None].expand(count, POINTS_PER_SIDE, POINTS_PER_SIDE),
                        ys[:, None, :].expand(count, POINTS_PER_SIDE, POINTS_PER_SIDE)), dim=-1)
    return grid.reshape(count, SAMPLES_PER_BOX)


def fourier_features(samples: Tensor) -> Tensor:
    """[..., 72] → [..., 1152]: index f·144 + s·72 + c (s = 0 sin, 1 cos), all math in ``samples.dtype`` (§3)."""
    exponents = torch.arange(FOURIER_FREQS, dtype=torch.float32) / FOURIER_FREQS
    freqs = torch.pow(100, exponents).to(device=samples.device, dtype=samples.dtype)  # float32 first, then cast
    angles = samples.unsqueeze(-1) * freqs  # [..., 72, 8]
    features = torch.stack((angles.sin(), angles.cos()), dim=-1)  # [..., 72, 8, 2]
    return features.movedim(-3, -1).reshape(*samples.shape[:-1], FOURIER_DIM)  # from [..., 8, 2, 72]


def _truncated_corners(samples: Tensor, grid_h: int, grid_w: int) -> Tensor:
    """[K, 4] int64 (X1, Y1, X2, Y2) = int(corner · grid side): tensor × Python int, truncated toward zero."""
    xs = samples[:, [_TOP_LEFT[0], _BOTTOM_RIGHT[0]]] * grid_w
    ys = samples[:, [_TOP_LEFT[1], _BOTTOM_RIGHT[1]]] * grid_h
    return torch.stack((xs[:, 0], ys[:, 0], xs[:, 1], ys[:, 1]), dim=1).to(torch.int64)


def box_token_indices(samples: Tensor, grid_h: int, grid_w: int) -> list[Tensor]:
    """Per box of ``samples`` [K, 72]: the int64 flat indices row·grid_w + col of its tokens, ascending (§6).

    Mirrors the reference ``mask[Y1:Y2, X1:X2] = 1`` on a [grid_h, grid_w] grid: a box whose four corner values
    are all 0 has no tokens, a zero-width/height span is widened to one token, and the spans follow Python
    slicing (ends clipped to the grid, negative values wrap).
    """
    corners = _truncated_corners(samples, grid_h, grid_w).tolist()
    all_zero = (samples[:, [*_TOP_LEFT, *_BOTTOM_RIGHT]] == 0).all(dim=1).tolist()
    rows = torch.arange(grid_h, device=samples.device)
    cols = torch.arange(grid_w, device=samples.device)
    indices = []
    for (x1, y1, x2, y2), empty in zip(corners, all_zero):
        if empty:
            indices.append(torch.empty(0, dtype=torch.int64, device=samples.device))
            continue
        if x1 == x2:
            x2 = x1 + 1
        if y1 == y2:
            y2 = y1 + 1
        indices.append((rows[y1:y2, None] * grid_w + cols[None, x1:x2]).reshape(-1))
    return indices


def layout_token_positions(samples: Tensor, grid_h: int, grid_w: int) -> Tensor:
    """[K, 2] float32 (row, col) = ((Y1 + Y2) / 2, (X1 + X2) / 2) of the truncated corners, rounded through bf16.

    This is the Flux layout token's RoPE id (§6): no degenerate-box widening here, and halves such as 7.5
    survive (bf16 holds halves exactly below 128).
    """
    x1, y1, x2, y2 = _truncated_corners(samples, grid_h, grid_w).unbind(1)
    centres = torch.stack(((y1 + y2).double() / 2, (x1 + x2).double() / 2), dim=1)
    return centres.to(torch.float32).to(torch.bfloat16).to(torch.float32)


def token_aligned_size(pixels: int) -> int:
    """An image side in pixels floored to whole tokens (at least one), as the reference's token grid
    floor(H / 16) × floor(W / 16) never rounds up."""
    return max(TOKEN_PIXELS, int(pixels) // TOKEN_PIXELS * TOKEN_PIXELS)
