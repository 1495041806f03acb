"""Pieces shared by the Flux and SD3 references: layout geometry and the layout encoder, ported from the
official InstanceAssemble ``src/layout.py`` (``Layout.set_conds`` / ``dense_sample``, ``bbox_to_mask``,
``get_layout_idxslist``, ``get_text_ids``, ``get_fourier_embeds_from_boundingbox``, ``TextBoundingboxProjection``),
the LoRA gating of ``src/lora_controller.py`` / ``src/model_utils.py``, and the loading of ``layout.pth``.

Written independently of ``instanceassemble_core`` so that the two can be compared. fp32 throughout.
"""
import math
from contextlib import contextmanager

import torch
from peft.tuners.tuners_utils import BaseTunerLayer
from torch import nn

POINT_NUM = 36
FOURIER_FREQS = 8
POSITION_DIM = FOURIER_FREQS * 2 * POINT_NUM * 2


def token_grid(width, height):
    """(Ht, Wt) transformer token grid of an image of ``width`` × ``height`` pixels: H//16 × W//16."""
    return int(height) // 8 // 2, int(width) // 8 // 2


def dense_boxes(boxes_xyxy, width, height, max_objs):
    """Official ``Layout`` boxes of one image.

    boxes_xyxy: pixel boxes (x1, y1, x2, y2) in input order; slots past ``max_objs`` are dropped.
    Returns (boxes [max_objs, 72] float32, masks [max_objs] float32). A filled row holds 36 (x, y) points,
    x-major (u outer); row[0:2] is the top-left corner and row[70:72] a recomputed bottom-right corner.
    """
    boxes = torch.zeros(max_objs, POINT_NUM * 2)
    masks = torch.zeros(max_objs)
    for i, (x1, y1, x2, y2) in enumerate(boxes_xyxy[:max_objs]):
        x, y, w, h = x1, y1, x2 - x1, y2 - y1
        masks[i] = 1
        boxes[i][0] = x / width
        boxes[i][1] = y / height
        boxes[i][2] = (x + w) / width
        boxes[i][3] = (y + h) / height
    points_per_line = int(math.sqrt(POINT_NUM))
    for i in range(max_objs):
        if masks[i] == 0:
            break
        bx1, by1, bx2, by2 = boxes[i][:4]
        step_x = (bx2 - bx1) / (points_per_line - 1)
        step_y = (by2 - by1) / (points_per_line - 1)
        for u in range(points_per_line):
            for v in range(points_per_line):
                k = (u * points_per_line + v) * 2
                boxes[i][k] = bx1 + u * step_x
                boxes[i][k + 1] = by1 + v * step_y
    return boxes, masks


def _corners(box, latent_h, latent_w):
    (x1, y1), (x2, y2) = box[:2], box[-2:]
    return int(x1 * latent_w), int(y1 * latent_h), int(x2 * latent_w), int(y2 * latent_h)


def bbox_to_mask(box, latent_h, latent_w):
    """Token mask [latent_h, latent_w] of one dense box row [72] (official ``bbox_to_mask``)."""
    mask = torch.zeros((latent_h, latent_w))
    (x1, y1), (x2, y2) = box[:2], box[-2:]
    if x1 == 0 and y1 == 0 and x2 == 0 and y2 == 0:
        return mask
    x1, y1, x2, y2 = _corners(box, latent_h, latent_w)
    if x1 == x2:
        x2 = x1 + 1
    if y1 == y2:
        y2 = y1 + 1
    mask[y1:y2, x1:x2] = 1
    return mask


def token_indices(boxes, latent_h, latent_w):
    """Per slot, the ascending row-major token indices (int64) inside the box. boxes: [N, 72]."""
    return [bbox_to_mask(box, latent_h, latent_w).view(-1).nonzero().view(-1) for box in boxes]


def layout_token_ids(boxes, latent_h, latent_w):
    """Flux RoPE ids [N, 3] of the layout tokens: (0, (Y1+Y2)/2, (X1+X2)/2) from the truncated corners,
    without the degenerate-box fix (official ``get_text_ids``)."""
    ids = torch.zeros((boxes.shape[0], 3))
    for i, box in enumerate(boxes):
        x1, y1, x2, y2 = _corners(box, latent_h, latent_w)
        ids[i, 1] = (y1 + y2) / 2
        ids[i, 2] = (x1 + x2) / 2
    return ids


def fourier_embed(boxes):
    """Fourier features [B, N, 1152] of dense boxes [B, N, 72]: index f·144 + s·72 + c (s: 0 sin, 1 cos)."""
    batch, num_boxes = boxes.shape[:2]
    freqs = 100 ** (torch.arange(FOURIER_FREQS) / FOURIER_FREQS)
    emb = freqs[None, None, None].to(dtype=boxes.dtype) * boxes.unsqueeze(-1)
    emb = torch.stack((emb.sin(), emb.cos()), dim=-1)
    return emb.permute(0, 1, 3, 4, 2).reshape(batch, num_boxes, POSITION_DIM)


class _SiluMLP(nn.Module):
    def __init__(self, in_features, hidden, out_features):
        super().__init__()
        self.linear_1 = nn.Linear(in_features, hidden)
        self.linear_2 = nn.Linear(hidden, out_features)

    def forward(self, x):
        return self.linear_2(nn.functional.silu(self.linear_1(x)))


class LayoutNet(nn.Module):
    """Official ``TextBoundingboxProjection`` (state-dict keys ``text_embedder.*`` and ``linears.*``)."""

    def __init__(self, pooled_dim, dim):
        super().__init__()
        self.text_embedder = _SiluMLP(pooled_dim, dim, dim)
        self.linears = _SiluMLP(dim + POSITION_DIM, dim // 2, dim)

    def forward(self, boxes, masks, pooled):
        """boxes [B, N, 72], masks [B, N], pooled [B, N, P] -> layout tokens [B, N, D]."""
        masks = masks.unsqueeze(-1)
        positions = fourier_embed(boxes) * masks
        texts = self.text_embedder(pooled) * masks
        return self.linears(torch.cat([texts, positions], dim=-1))


class LayoutInputs:
    """Per-call layout data of a batch, as the official pipelines build it.

    boxes [B, N, 72], masks [B, N], pooled [B, N, P], token_ids [B, N, 3] (Flux RoPE ids),
    indices[b][j] (token indices of slot j of row b), instances: valid (b, j) pairs, batch-major, slot ascending.
    N is the largest instance count of a row (at least 1); rows without instances have mask 0.
    """

    def __init__(self, boxes_xyxy, instance_pooled, image_size, pooled_dim):
        width, height = image_size
        self.grid = token_grid(width, height)
        rows = [list(row) if row is not None else [] for row in boxes_xyxy]
        slots = max(1, max(len(row) for row in rows))
        batch = len(rows)
        self.boxes = torch.zeros(batch, slots, POINT_NUM * 2)
        self.masks = torch.zeros(batch, slots)
        self.pooled = torch.zeros(batch, slots, pooled_dim)
        self.token_ids = torch.zeros(batch, slots, 3)
        self.indices = []
        for b, row in enumerate(rows):
            self.boxes[b], self.masks[b] = dense_boxes(row, width, height, slots)
            if row:
                if instance_pooled[b].shape != (len(row), pooled_dim):
                    raise ValueError(f"row {b}: {len(row)} boxes need pooled [{len(row)}, {pooled_dim}], "
                                     f"got {tuple(instance_pooled[b].shape)}")
                self.pooled[b, :len(row)] = instance_pooled[b].to(torch.float32)
            self.token_ids[b] = layout_token_ids(self.boxes[b], *self.grid)
            self.indices.append(token_indices(self.boxes[b], *self.grid))
        self.instances = [tuple(ij) for ij in (self.masks == 1).nonzero().tolist()]


@contextmanager
def lora_enabled(modules):
    """Official ``enable_lora``: LoRA scale 1 (scaling alpha/r) on ``modules`` inside the block, 0 after."""
    layers = [m for m in modules if isinstance(m, BaseTunerLayer)]
    try:
        for layer in layers:
            for name in layer.active_adapters:
                layer.set_scale(name, 1.0)
        yield
    finally:
        for layer in layers:
            for name in layer.active_adapters:
                layer.set_scale(name, 0.0)


def disable_all_lora(model):
    """Official ``_zero_out_lora_scales``: every LoRA layer of ``model`` gets scale 0 (the stock model)."""
    for module in model.modules():
        if isinstance(module, BaseTunerLayer):
            for name in module.active_adapters:
                module.set_scale(name, 0.0)


def attach_layout_modules(transformer, layout_blocks, pooled_dim):
    """Add the official layout parameters to a diffusers transformer: a ``layout_forward`` Linear [D, D] on each
    block named in ``layout_blocks`` (e.g. ``transformer_blocks.0``) and ``layout_net``."""
    dim = transformer.config.num_attention_heads * transformer.config.attention_head_dim
    for name in layout_blocks:
        transformer.get_submodule(name).layout_forward = nn.Linear(dim, dim)
    transformer.layout_net = LayoutNet(pooled_dim, dim)


def load_layout_weights(transformer, layout_sd):
    """Load ``layout.pth`` into the attached layout modules; every key must be consumed and every layout
    parameter covered (the official ``strict=False`` load would hide both kinds of mismatch)."""
    expected = {k for k in transformer.state_dict() if k.startswith("layout_net.") or ".layout_forward." in k}
    unexpected = sorted(set(layout_sd) - expected)
    missing = sorted(expected - set(layout_sd))
    if unexpected or missing:
        raise KeyError(f"layout weights do not match the model: unexpected {unexpected}, missing {missing}")
    transformer.load_state_dict(layout_sd, strict=False)
