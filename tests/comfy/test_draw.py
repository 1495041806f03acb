"""InstanceAssembleDrawLayout on real image tensors: outlines where the boxes are, every other pixel unchanged."""
import torch

W, H = 1024, 512  # image size; the layout below is drawn for twice that size
LAYOUT = {
    "format": "instanceassemble.layout", "version": 1, "width": 2 * W, "height": 2 * H, "prompt": "a test",
    "boxes": [
        {"bbox": [200, 200, 1000, 800], "category": "dog", "caption": "a brown dog"},
        {"bbox": [1200, 100, 1900, 900], "category": "", "caption": "<img src=x onerror=alert(1)>"},
    ],
}


def run(pack, image, layout_json=LAYOUT):
    layout = pack.instanceassemble_core.layout.parse_layout(layout_json)
    return pack.nodes.draw.InstanceAssembleDrawLayout().draw(image, layout)[0]


def color(pack, index):
    return torch.tensor(pack.nodes.draw.box_color(index), dtype=torch.float32) / 255


def test_outlines_scaled_to_the_image_and_nothing_else_touched(pack):
    torch.manual_seed(0)
    image = torch.rand(2, H, W, 3)
    original = image.clone()
    out = run(pack, image)

    assert out.shape == image.shape and out.dtype == image.dtype
    assert torch.equal(image, original), "the input tensor must not be modified"
    lw = pack.nodes.draw.line_width(W, H)
    assert lw == 2

    # box 0 scaled by 1/2: [100, 100, 500, 400]; outline drawn inside the box
    dog = color(pack, 0)
    for b in range(2):
        for y, x in [(250, 100), (250, 101), (250, 499), (250, 498), (399, 300), (398, 300)]:
            assert torch.allclose(out[b, y, x], dog), (b, y, x)
        # just outside the box and just inside the outline: untouched
        for y, x in [(250, 99), (250, 500), (400, 300), (250, 102), (250, 497), (397, 300), (250, 300)]:
            assert torch.equal(out[b, y, x], image[b, y, x]), (b, y, x)

    # box 1: [600, 50, 950, 450] in its own colour, distinct from box 0
    other = color(pack, 1)
    assert not torch.allclose(dog, other)
    assert torch.allclose(out[0, 300, 600], other) and torch.allclose(out[0, 300, 949], other)

    # labels: a tag filled with the box colour at each box's top-left corner, with text in black or white
    for (top, left), rgb, index in [((100, 100), dog, 0), ((50, 600), other, 1)]:
        tag = out[0, top + lw:top + 20, left + lw:left + 60]
        assert ((tag - rgb).abs().amax(-1) < 1e-3).sum() > 100
        text = torch.tensor(pack.nodes.draw.label_text_color(pack.nodes.draw.box_color(index))) / 255
        assert ((tag - text).abs().amax(-1) < 1e-3).sum() > 5

    # every changed pixel lies on an outline or in a label near the top of a box
    changed = (out != image).any(dim=-1)[0]
    inside_any = torch.zeros(H, W, dtype=torch.bool)
    inside_any[100:400, 100:500] = True
    inside_any[50:450, 600:950] = True
    assert changed.any()
    assert not (changed & ~inside_any).any()
    interior = torch.zeros(H, W, dtype=torch.bool)
    interior[150:400 - lw, 100 + lw:500 - lw] = True  # below the label row
    assert not (changed & interior).any()
    assert torch.equal(out[:, :, 960:], image[:, :, 960:])


def test_line_width_and_labels_follow_image_size(pack):
    draw = pack.nodes.draw
    assert draw.line_width(256, 256) == 1
    assert draw.line_width(2048, 1024) == 4
    assert draw.font_size(2048, 2048) > draw.font_size(512, 512)
    small = run(pack, torch.zeros(1, 128, 256, 3))
    assert torch.allclose(small[0, 60, 25], color(pack, 0))  # [25, 25, 125, 100], left edge, 1 px wide
    assert torch.equal(small[0, 60, 26], torch.zeros(3))


def test_empty_layout_returns_the_image(pack):
    image = torch.rand(1, 64, 64, 3)
    empty = dict(LAYOUT, boxes=[])
    assert torch.equal(run(pack, image, empty), image)


def test_label_colours_are_readable(pack):
    draw = pack.nodes.draw
    for i in range(100):
        rgb = draw.box_color(i)
        lum = draw._luminance(rgb)
        text = draw.label_text_color(rgb)
        contrast = (lum + 0.05) / 0.05 if text == (0, 0, 0) else 1.05 / (lum + 0.05)
        assert contrast >= 3, (i, rgb)


# ---- mask regions ----------------------------------------------------------------------------------------------

def region_box(pack, mask, category="mask", layout_size=(2 * W, 2 * H)):
    """A layout box for a mask instance: its region and its bbox (the mask's bounding box in layout pixels)."""
    region = pack.instanceassemble_core.regions.Region.from_mask(mask)
    return {"bbox": list(region.bbox(*layout_size)), "category": category, "caption": "", "region": region.to_dict()}


def contour(mask, lw):
    """[h, w] bool: the pixels of ``mask`` with a pixel outside it (or outside the image) within ``lw`` px, by a
    square max filter (an independent check of the node's log-step filter)."""
    outside = torch.nn.functional.pad((~mask).float()[None, None], (lw,) * 4, value=1.0)
    return mask & (torch.nn.functional.max_pool2d(outside, 2 * lw + 1, stride=1)[0, 0] > 0)


def label_zone(pack, bbox, layout_size=(2 * W, 2 * H), size=(W, H)):
    """[H, W] bool: a rectangle at the box's top-left corner that holds its label tag (2 font sizes high)."""
    sx, sy = size[0] / layout_size[0], size[1] / layout_size[1]
    left, top, right = round(bbox[0] * sx), round(bbox[1] * sy), round(bbox[2] * sx)
    zone = torch.zeros(size[1], size[0], dtype=torch.bool)
    zone[top:top + 2 * pack.nodes.draw.font_size(*size), left:right] = True
    return zone


def test_a_mask_region_is_drawn_as_its_outline_in_its_colour(pack):
    # an L at a quarter of the image's resolution: a bar x 160..320, y 80..400 and a foot y 280..400 out to the
    # image's right edge (x 1024), in image pixels
    mask = torch.zeros(H // 4, W // 4)
    mask[20:100, 40:80] = 1
    mask[70:100, 40:] = 1
    layout = dict(LAYOUT, boxes=[region_box(pack, mask)])
    torch.manual_seed(1)
    image = torch.rand(1, H, W, 3)
    out = run(pack, image, layout)

    lw = pack.nodes.draw.line_width(W, H)
    on_image = mask.bool().repeat_interleave(4, 0).repeat_interleave(4, 1)
    outline = contour(on_image, lw)
    changed = (out != image).any(dim=-1)[0]
    label = label_zone(pack, layout["boxes"][0]["bbox"])
    assert torch.equal(changed & ~label, outline & ~label)
    assert torch.allclose(out[0][outline & ~label], color(pack, 0).expand(int((outline & ~label).sum()), 3))

    # the contour follows the L: its inner corner, the image edge; the bbox's empty corner and the inside untouched
    for y, x in [(200, 318), (200, 319), (280, 500), (281, 500), (300, 1023), (300, 1022), (399, 700)]:
        assert changed[y, x], (y, x)
    for y, x in [(200, 320), (200, 317), (279, 500), (282, 500), (300, 1021), (80, 700), (100, 1000), (350, 500),
                 (200, 240), (450, 500)]:
        assert not changed[y, x], (y, x)
    assert label[80:100, 160:200].all() and changed[80:100, 160:200].any()  # the label at the bbox's top-left


def test_a_rectangle_region_draws_what_its_box_draws(pack):
    mask = torch.zeros(2 * H // 8, 2 * W // 8)  # 8 layout px per mask pixel: its edges land on image pixels
    mask[25:100, 25:125] = 1  # the layout's first box, [200, 200, 1000, 800]
    as_box = dict(LAYOUT, boxes=[{**region_box(pack, mask, "dog"), "region": None}, LAYOUT["boxes"][1]])
    as_region = dict(LAYOUT, boxes=[region_box(pack, mask, "dog"), LAYOUT["boxes"][1]])
    assert as_box["boxes"][0]["bbox"] == LAYOUT["boxes"][0]["bbox"]
    image = torch.rand(1, H, W, 3)
    assert torch.equal(run(pack, image, as_region), run(pack, image, as_box))
    assert torch.equal(run(pack, image, as_box), run(pack, image))


def test_a_region_of_another_resolution_is_scaled_to_the_image(pack):
    """A circle whose mask is larger than the image on one axis and smaller on the other: its outline is the
    contour of the mask as Layout to Masks scales it to the image (nearest pixel)."""
    size = (2 * W, 2 * H)
    image = torch.zeros(1, H, W, 3)
    ys, xs = torch.meshgrid(torch.arange(700), torch.arange(300), indexing="ij")
    circle = ((ys - 350) / 300) ** 2 + ((xs - 150) / 120) ** 2 <= 1
    layout = pack.instanceassemble_core.layout.parse_layout(dict(LAYOUT, boxes=[region_box(pack, circle.float())]))
    out = pack.nodes.draw.InstanceAssembleDrawLayout().draw(image, layout)[0]

    on_image = pack.instanceassemble_core.interchange.instance_masks(layout, W, H)[0].bool()
    assert on_image.shape == (H, W) and on_image[H // 2, W // 2] and not on_image[H // 2, 0]
    outline = contour(on_image, pack.nodes.draw.line_width(W, H))
    label = label_zone(pack, layout.instances[0].bbox, size)
    changed = (out != image).any(dim=-1)[0]
    assert outline.sum() > 500 and torch.equal(changed & ~label, outline & ~label)


def test_boxes_are_drawn_as_exact_frames(pack):
    """A layout without regions: outside the label tags, exactly the lw-px frame inside each scaled box changes."""
    image = torch.rand(1, H, W, 3)
    out = run(pack, image)
    lw = pack.nodes.draw.line_width(W, H)
    frames = torch.zeros(H, W, dtype=torch.bool)
    labels = torch.zeros(H, W, dtype=torch.bool)
    for box in LAYOUT["boxes"]:
        x1, y1, x2, y2 = (v // 2 for v in box["bbox"])
        inside = torch.zeros(H, W, dtype=torch.bool)
        inside[y1:y2, x1:x2] = True
        frames |= contour(inside, lw)
        labels |= label_zone(pack, box["bbox"])
    changed = (out != image).any(dim=-1)[0]
    assert torch.equal(changed & ~labels, frames & ~labels)
