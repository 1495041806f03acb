"""InstanceAssembleDrawLayout: a layout's boxes, mask regions and labels drawn over images, to check what went where.

Boxes are scaled from the layout's size to the image size and drawn as rectangle outlines. A mask instance (one
with a ``region``, see instanceassemble_core/regions.py) is drawn as its mask's outline instead: the mask is scaled
from its own size to the image size (nearest pixel), and its pixels within the line width of its outside (or of
the image edge) are its outline, as a box's outline lies inside the box. Each instance's numbered label sits at
its bbox's top-left corner. Colours match the editor widget (web/box_colors.js ``boxColors``;
tests/e2e/test_web_units.py checks they agree): box i has hue ``(i * 137.508 + 10) % 360``, saturation 0.85,
lightness 0.55, and its label text is black or white, whichever reads better. Pixels outside the outlines and labels
are unchanged.
"""
import colorsys

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..instanceassemble_core.regions import nearest_indices
from .layout_type import LAYOUT_TYPE


def box_color(index: int) -> tuple[int, int, int]:
    """The editor's colour of box ``index`` as 0..255 RGB."""
    hue = (index * 137.508 + 10) % 360
    return tuple(round(c * 255) for c in colorsys.hls_to_rgb(hue / 360, 0.55, 0.85))


def _luminance(rgb) -> float:
    def linear(c):
        v = c / 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4
    r, g, b = (linear(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def label_text_color(rgb) -> tuple[int, int, int]:
    return (0, 0, 0) if _luminance(rgb) > 0.3 else (255, 255, 255)


def line_width(width: int, height: int) -> int:
    """Outline width: 4 px at 1024, proportional to the shorter image side, at least 1."""
    return max(1, round(min(width, height) / 256))


def font_size(width: int, height: int) -> int:
    return max(10, round(min(width, height) / 40))


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one bitmap size
        return ImageFont.load_default()


def _fit_text(draw, text: str, font, max_width: float) -> str:
    """``text``, or its longest prefix + "..." that fits ``max_width`` px: O(log n) measurements of at most
    ``max_width`` + 1 characters each (a visible character is at least 1 px wide), so any caption length is cheap."""
    limit = int(max_width) + 1
    if len(text) <= limit and draw.textlength(text, font=font) <= max_width:
        return text
    low, high = 1, min(len(text), limit)  # text[:low] + "..." is shown even when it does not fit
    while low < high:
        middle = (low + high + 1) // 2
        if draw.textlength(text[:middle] + "...", font=font) <= max_width:
            low = middle
        else:
            high = middle - 1
    return text[:low] + "..."


def _any_within(values: torch.Tensor, span: int, dim: int) -> torch.Tensor:
    """Along ``dim``: whether any of ``span`` consecutive values is True, for each window start (bool, that axis
    shortened by ``span`` - 1); O(log span) whole-tensor ORs of windows doubling in length."""
    covered, length = values, 1
    while 2 * length <= span:
        n = covered.shape[dim] - length
        covered = covered.narrow(dim, 0, n) | covered.narrow(dim, length, n)
        length *= 2
    n = values.shape[dim] - span + 1
    return covered.narrow(dim, 0, n) | covered.narrow(dim, span - length, n)


def region_outline(region, width: int, height: int, thickness: int) -> tuple[int, int, np.ndarray] | None:
    """The outline of ``region`` on a ``width`` × ``height`` image: (left, top, edge), ``edge`` [h, w] bool over the
    image pixels from (left, top) that the scaled mask's bounding box spans, True on mask pixels with a pixel outside
    the mask (or the image) within ``thickness`` px, Chebyshev distance; None when no image pixel samples the mask."""
    mask = region.mask()
    rows, cols = nearest_indices(height, region.height), nearest_indices(width, region.width)
    on_rows, on_cols = mask.any(dim=1)[rows].nonzero().reshape(-1), mask.any(dim=0)[cols].nonzero().reshape(-1)
    if on_rows.numel() == 0 or on_cols.numel() == 0:
        return None
    top, bottom, left, right = int(on_rows[0]), int(on_rows[-1]) + 1, int(on_cols[0]), int(on_cols[-1]) + 1
    # numpy's take: several times faster than torch's index_select on bool
    crop = torch.from_numpy(mask.numpy().take(cols[left:right], axis=1).take(rows[top:bottom], axis=0))
    outside = torch.ones(crop.shape[0] + 2 * thickness, crop.shape[1] + 2 * thickness, dtype=torch.bool)
    outside[thickness:thickness + crop.shape[0], thickness:thickness + crop.shape[1]] = ~crop
    span = 2 * thickness + 1
    return left, top, (crop & _any_within(_any_within(outside, span, 1), span, 0)).numpy()


def render_overlay(layout, width: int, height: int) -> Image.Image:
    """An RGBA image of the outlines (boxes, mask regions) and labels for a ``width`` × ``height`` image,
    transparent elsewhere."""
    overlay = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    sx, sy = width / layout.width, height / layout.height
    lw = line_width(width, height)
    size = font_size(width, height)
    font = _font(size)
    pad = max(1, lw // 2 + 1)
    for index, inst in enumerate(layout.instances):
        x1, y1, x2, y2 = inst.bbox
        left, top = round(x1 * sx), round(y1 * sy)
        right, bottom = max(left + 1, round(x2 * sx)), max(top + 1, round(y2 * sy))
        color = box_color(index)
        if inst.region is None:
            draw.rectangle((left, top, right - 1, bottom - 1), outline=color + (255,), width=lw)
        elif (outline := region_outline(inst.region, width, height, lw)) is not None:
            edge_left, edge_top, edge = outline
            overlay.paste(color + (255,), (edge_left, edge_top), Image.fromarray(edge))

        name = inst.category.strip() or inst.caption.strip()
        text = _fit_text(draw, f"{index + 1} {name}".strip(), font, max(right - left - 2 * pad, size * 2))
        tx0, ty0, tx1, ty1 = draw.textbbox((0, 0), text, font=font)
        label_w, label_h = tx1 - tx0 + 2 * pad, ty1 - ty0 + 2 * pad
        lx = min(left, width - label_w)
        ly = min(top, height - label_h)
        draw.rectangle((lx, ly, lx + label_w - 1, ly + label_h - 1), fill=color + (255,))
        draw.text((lx + pad - tx0, ly + pad - ty0), text, font=font, fill=label_text_color(color) + (255,))
    return overlay


class InstanceAssembleDrawLayout:
    DESCRIPTION = ("Draws the layout's boxes (coloured outlines, numbered labels) over the images, scaled from the "
                   "layout's size to the image size; a mask instance is drawn as its mask's outline. Colours match "
                   "the layout editor.")
    CATEGORY = "InstanceAssemble/layout"
    RETURN_TYPES = ("IMAGE",)
    OUTPUT_TOOLTIPS = ("The images with the boxes drawn on top.",)
    FUNCTION = "draw"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "image": ("IMAGE", {"tooltip": "Images to draw on, e.g. the generated image."}),
                "layout": (LAYOUT_TYPE, {"tooltip": "The layout whose boxes and mask regions are drawn."}),
            },
        }

    def draw(self, image: torch.Tensor, layout):
        if not layout.instances:
            return (image,)
        _, height, width, channels = image.shape
        overlay = torch.from_numpy(np.asarray(render_overlay(layout, width, height), dtype=np.float32) / 255.0)
        overlay = overlay.to(device=image.device, dtype=image.dtype)
        alpha = overlay[..., 3:]
        out = image.clone()
        out[..., :3] = image[..., :3] * (1 - alpha) + overlay[..., :3] * alpha
        return (out,)


NODE_CLASS_MAPPINGS = {"InstanceAssembleDrawLayout": InstanceAssembleDrawLayout}
NODE_DISPLAY_NAME_MAPPINGS = {"InstanceAssembleDrawLayout": "InstanceAssemble Draw Layout"}
