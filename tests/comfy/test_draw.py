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
