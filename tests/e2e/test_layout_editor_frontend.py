"""The editor inside today's frontends (1.4x-1.5x, both renderers): the properties panel leaves it alone, the
wheel scrolls its lists under Nodes 2.0, edits reach ComfyUI's change tracker through the current API."""
import json

import pytest

from editor_page import EditorPage

HUNDRED = {"format": "instanceassemble.layout", "version": 1, "width": 1024, "height": 1024, "prompt": "",
           "boxes": [{"bbox": [(i % 10) * 100, (i // 10) * 100, (i % 10) * 100 + 90, (i // 10) * 100 + 90],
                      "category": f"thing {i + 1}", "caption": f"caption {i + 1}"} for i in range(100)]}


def editor_size(page):
    return page.js("() => { const r = window.__ia.state().inline.element.getBoundingClientRect();"
                   " return [Math.round(r.width), Math.round(r.height)] }")


@pytest.mark.frontends("1.4", "1.5")  # the right side panel arrived in 1.3x
def test_properties_panel_leaves_the_editor_in_the_node(page):
    ed = EditorPage(page).start()
    ed.add_editor()
    before = editor_size(page)
    assert before[0] > 500, before
    page.js("() => app.canvas.selectItems([window.__ia.node])")
    page.js("async () => { await app.extensionManager.setting.set('Comfy.RightSidePanel.IsOpen', true) }")
    page.page.wait_for_timeout(600)
    page.screenshot("properties-panel-open.png")
    opened = editor_size(page)
    panel_editors = page.js("() => [...document.querySelectorAll('.ia-layout-editor')]"
                            ".filter((e) => e !== window.__ia.state().inline.element).length")
    # the panel lists width and height, and no (empty) row for the editor
    panel_rows = page.js("""() => [...document.querySelectorAll('body *')]
        .filter((e) => !e.closest('[data-node-id], .ia-layout-editor') && e.children.length === 0)
        .map((e) => e.textContent.trim()).filter((t) => ['width', 'height', 'layout'].includes(t))""")
    page.js("async () => { await app.extensionManager.setting.set('Comfy.RightSidePanel.IsOpen', false) }")
    page.page.wait_for_timeout(600)
    closed = editor_size(page)
    assert abs(opened[0] - before[0]) <= 2 and abs(closed[0] - before[0]) <= 2, (before, opened, closed)
    assert abs(closed[1] - before[1]) <= 2, (before, closed)
    assert panel_editors == 0
    assert "width" in panel_rows and "layout" not in panel_rows, panel_rows
    ed.drag((100, 100), (300, 300))  # and it still draws where the mouse is
    assert len(ed.boxes()) == 1


def test_wheel_scrolls_the_box_list_and_json_not_the_graph(page):
    ed = EditorPage(page).start()
    ed.add_editor(size=(900, 560))
    ed.editor.locator("button.ia-json-toggle").click()
    ed.editor.locator(".ia-json").fill(json.dumps(HUNDRED, indent=1))
    ed.editor.locator("button.ia-import").click()
    ed.editor.locator(".ia-io-message").filter(has_text="Imported").wait_for()
    page.js("() => { document.activeElement?.blur(); }")
    scale = page.js("() => app.canvas.ds.scale")
    for selector in (".ia-box-list", ".ia-json"):
        box = ed.editor.locator(selector).bounding_box()
        page.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.page.mouse.wheel(0, 300)
        page.page.wait_for_timeout(200)
        scrolled = page.js("(s) => document.querySelector(s).scrollTop", selector)
        assert scrolled > 0, f"{selector} did not scroll"
        assert page.js("() => app.canvas.ds.scale") == scale, f"the wheel over {selector} zoomed the graph"
    # Ctrl+wheel (pinch) and the wheel elsewhere still reach the graph
    view = page.js("() => [app.canvas.ds.scale, ...app.canvas.ds.offset]")
    page.page.mouse.move(1200, 400)
    page.page.mouse.wheel(0, 300)
    page.page.wait_for_function("(v) => [app.canvas.ds.scale, ...app.canvas.ds.offset].some((x, i) => x !== v[i])",
                                arg=view, timeout=5_000)


def test_edits_reach_the_change_tracker_without_deprecation_warnings(page):
    ed = EditorPage(page).start()
    ed.add_editor()
    # the graph with the new node is the tracker's last state, as after a user adds a node
    page.js("() => { const t = app.extensionManager.workflow.activeWorkflow.changeTracker;"
            " (t.captureCanvasState ?? t.checkState).call(t) }")
    ed.drag((100, 100), (400, 400))
    page.page.wait_for_timeout(700)  # the editor notifies the tracker 300 ms after the last edit
    ed.drag((500, 500), (700, 800))
    page.page.wait_for_timeout(700)
    assert page.js("() => app.extensionManager.workflow.activeWorkflow.isModified") is True
    deprecated = [m for m in page.console_warnings if "deprecated" in m and "State" in m]
    assert deprecated == []
    # graph-level undo (outside the editor) reverts the last edit
    page.js("() => document.activeElement?.blur()")
    page.page.mouse.click(1300, 850)
    page.page.keyboard.press("Control+z")
    page.page.wait_for_function("""() => {
        const node = app.graph.nodes.find((n) => n.type === 'InstanceAssembleLayoutEditor');
        return JSON.parse(node.widgets.find((w) => w.name === 'layout').value).boxes.length === 1;
    }""", timeout=5_000)
