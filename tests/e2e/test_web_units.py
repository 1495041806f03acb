"""Runs the JavaScript unit tests (tests/web, Node's built-in runner) so that pytest reports them."""
import json
import shutil
import subprocess

from editor_page import ROOT


def test_node_unit_tests_pass():
    node = shutil.which("node")
    assert node, "Node.js (v20+) is required for the JavaScript unit tests in tests/web"
    result = subprocess.run([node, "--test", "tests/web"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout


def test_box_colours_agree_between_editor_and_draw_layout(pack):
    """web/box_colors.js (editor) and nodes/draw.py (InstanceAssembleDrawLayout) give every box the same colours."""
    import importlib
    draw = importlib.import_module(f"{pack.__name__}.nodes.draw")
    script = ("import { boxColors } from './web/box_colors.js';"
              "console.log(JSON.stringify(Array.from({ length: 200 }, (_, i) => boxColors(i))"
              ".map((c) => [c.rgb, c.text])))")
    result = subprocess.run([shutil.which("node"), "--input-type=module", "-e", script], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    editor = json.loads(result.stdout)
    python = [[list(draw.box_color(i)), "#000000" if draw.label_text_color(draw.box_color(i)) == (0, 0, 0)
               else "#ffffff"] for i in range(200)]
    assert editor == python


def test_mask_regions_agree_between_editor_and_server(pack):
    """web/layout_region.js reads the regions the server writes (instanceassemble_core/regions.py) as the same
    masks (the window inside the bounding box, pixel for pixel), with the same bounding boxes at any image size, to the last bit."""
    import importlib

    import torch
    regions = importlib.import_module(f"{pack.__name__}.instanceassemble_core.regions")
    generator = torch.Generator().manual_seed(12)
    cases = []
    for height, width in ((1, 1), (5, 7), (16, 16), (33, 20), (64, 128)):
        mask = torch.rand(height, width, generator=generator) < 0.3
        mask[height // 2, width // 2] = True
        cases.append((mask, regions.Region.from_mask(mask.float())))
    sizes = [(1024, 1024), (1000, 700), (333, 517)]
    script = ("import { readRegion, regionBBox, regionRaster } from './web/layout_region.js';"
              "const cases = JSON.parse(process.argv[1]); const sizes = JSON.parse(process.argv[2]);"
              "console.log(JSON.stringify(cases.map((c) => { const r = readRegion(c, 'r'); const raster = regionRaster(r);"
              "return { bboxes: sizes.map(([w, h]) => regionBBox(r, w, h)), mask: [...raster.data] } })))")
    result = subprocess.run([shutil.which("node"), "--input-type=module", "-e", script,
                             json.dumps([region.to_dict() for _, region in cases]), json.dumps(sizes)],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    editor = json.loads(result.stdout)
    for (mask, region), seen in zip(cases, editor):
        rows, cols = mask.any(dim=1).nonzero().reshape(-1), mask.any(dim=0).nonzero().reshape(-1)
        window = mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]  # every case is at most RASTER_MAX_SIDE a side
        assert seen["mask"] == window.reshape(-1).int().tolist()
        assert seen["bboxes"] == [list(region.bbox(w, h)) for w, h in sizes]
