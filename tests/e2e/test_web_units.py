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
