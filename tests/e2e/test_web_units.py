"""Runs the JavaScript unit tests (tests/web, Node's built-in runner) so that pytest reports them."""
import shutil
import subprocess

from editor_page import ROOT


def test_node_unit_tests_pass():
    node = shutil.which("node")
    assert node, "Node.js (v20+) is required for the JavaScript unit tests in tests/web"
    result = subprocess.run([node, "--test", "tests/web"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout
