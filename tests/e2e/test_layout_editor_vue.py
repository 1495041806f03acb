"""Under the Vue node renderer (frontend 1.27, experimental), DOM widgets are not shown inside nodes; the node's
"Open layout editor" button opens the same editor in a dialog, and its edits are saved in the node."""
import json

import pytest

from conftest import VUE_SETTING
from editor_page import EditorPage


def set_vue_nodes(page, on: bool):
    page.js("async ([key, on]) => { await app.extensionManager.setting.set(key, on) }", [VUE_SETTING, on])
    page.page.wait_for_function("(on) => LiteGraph.vueNodesMode === on", arg=on)
    page.page.wait_for_timeout(500)  # the Vue node manager attaches to the graph on the next ticks


@pytest.mark.frontends("1.27")
@pytest.mark.renderers("classic")  # switches to 1.27's Vue renderer itself, as a user would
def test_vue_renderer_edits_through_the_dialog(page):
    ed = EditorPage(page).start()
    set_vue_nodes(page, True)
    try:
        ed.start()  # reload with the Vue renderer on from the start, as a user who enabled it would have it
        page.page.wait_for_function("() => LiteGraph.vueNodesMode === true")
        node_id = ed.add_editor(wait=False)
        vue_node = page.page.locator(f'[data-node-id="{node_id}"]')
        vue_node.wait_for(timeout=15_000)
        assert vue_node.locator(".ia-layout-editor").count() == 0  # no DOM widgets in Vue nodes (1.27)

        vue_node.get_by_role("button", name="Open layout editor").click()
        page.page.locator(".ia-dialog .ia-layout-editor").wait_for(timeout=10_000)
        ed.use_dialog()
        ed.drag((100, 200), (600, 700))
        ed.row(0).locator(".ia-category").fill("balloon")
        ed.row(0).locator(".ia-caption").fill("a red balloon")
        ed.row(0).locator(".ia-caption").press("Tab")
        ed.editor.locator(".ia-prompt").fill("a sky")
        ed.editor.locator(".ia-prompt").press("Tab")
        page.screenshot("editor-dialog-vue.png", page.page.locator(".ia-dialog"))
        page.page.locator(".ia-dialog-close").click()
        assert page.page.locator(".ia-dialog").count() == 0

        ed.use_dialog(False)
        layout = ed.value()
        assert layout["prompt"] == "a sky"
        assert [(b["category"], b["caption"]) for b in layout["boxes"]] == [("balloon", "a red balloon")]
        bbox = layout["boxes"][0]["bbox"]
        assert all(abs(a - e) <= 6 for a, e in zip(bbox, (100, 200, 600, 700))), bbox
        prompt_layout = page.js("async (id) => (await app.graphToPrompt()).output[id].inputs.layout", node_id)
        assert json.loads(prompt_layout) == layout
        assert page.js("(id) => app.graph.getNodeById(id).serialize().widgets_values[2]", node_id) == json.dumps(
            layout, separators=(",", ":"), ensure_ascii=False)
    finally:
        set_vue_nodes(page, False)
