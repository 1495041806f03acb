"""Mask regions in the editor, in the real frontend: a layout from InstanceAssemble Layout from Masks (its Layout to
JSON text, pasted into the editor) shows each mask filled in its colour, selectable where the mask is, read-only
(no move, resize, nudge or duplicate), with editable texts; the saved widget value, the workflow and the queued
prompt keep every region bit for bit, and a resize gives the mask's bounding box at the new size."""
import importlib
import json

import torch

from editor_page import EditorPage
from test_layout_editor_details import import_json, sizes

WIDTH, HEIGHT = 600, 400
SOFA_BBOX = [100, 100, 400, 300]


def layout_from_masks(pack) -> dict:
    """A box and an L-shaped mask instance, through the pack's own nodes (Layout from Masks -> Layout to JSON)."""
    adapters = importlib.import_module(f"{pack.__name__}.nodes.layout_adapters")
    layout_nodes = importlib.import_module(f"{pack.__name__}.nodes.layout_nodes")
    boxes = {"format": "instanceassemble.layout", "version": 1, "width": WIDTH, "height": HEIGHT,
             "prompt": "a living room",
             "boxes": [{"bbox": [420, 40, 580, 200], "category": "lamp", "caption": "a brass floor lamp"}]}
    (base,) = layout_nodes.InstanceAssembleLayoutFromJSON().parse(json.dumps(boxes))[:1]
    mask = torch.zeros(1, 40, 60)  # mask pixel (i, j) covers image pixels 10i..10i+9 x 10j..10j+9
    mask[0, 10:30, 10:20] = 1  # the upright: image x 100..200, y 100..300
    mask[0, 20:30, 10:40] = 1  # the foot: image x 100..400, y 200..300
    layout = adapters.InstanceAssembleLayoutFromMasks().build(mask, "an L-shaped green sofa", 0.5, "", 0, 0,
                                                              layout=base)[0]
    return json.loads(adapters.InstanceAssembleLayoutToJSON().convert(layout)[0])


def canvas_rgb(page, x, y):
    """The inline canvas's colour at image point (x, y), [r, g, b]."""
    return page.js("""([x, y]) => {
        const view = window.__ia.state().inline.canvas;
        view.draw();
        const fit = view.currentFit(), dpr = window.devicePixelRatio || 1;
        const px = view.ctx.getImageData(Math.round((fit.x + x * fit.scale) * dpr), Math.round((fit.y + y * fit.scale) * dpr), 1, 1);
        return [...px.data.slice(0, 3)];
    }""", [x, y])


def test_mask_regions_are_shown_read_only_and_kept(page, comfy_server, pack):
    source = layout_from_masks(pack)
    region = source["boxes"][1]["region"]
    assert source["boxes"][1]["bbox"] == SOFA_BBOX
    ed = EditorPage(page).start()
    node_id = ed.add_editor()
    ed.editor.locator("button.ia-json-toggle").click()
    message = import_json(ed, source)
    assert message == "Imported 2 boxes, 1 of them mask regions (shape read-only) (600×400).", message
    assert ed.value()["boxes"] == source["boxes"]
    assert "1 mask" in ed.editor.locator(".ia-status").text_content()

    # the list marks the mask instance; the canvas fills its mask, not its box
    assert ed.row(1).get_attribute("class").split().count("ia-region") == 1
    assert ed.row(1).locator(".ia-swatch").text_content() == "2 mask"
    assert "read-only" in ed.row(1).locator(".ia-swatch").get_attribute("title")
    assert ed.row(0).get_attribute("class").split().count("ia-region") == 0
    frame = canvas_rgb(page, 300, 380)
    on_mask, off_mask = canvas_rgb(page, 150, 150), canvas_rgb(page, 330, 150)
    assert on_mask != frame and off_mask == frame, (on_mask, off_mask, frame)
    page.screenshot("editor-mask-region.png", ed.editor)

    # selected where its mask is; a press on its box off the mask does not select it
    ed.click((330, 150))
    assert page.js("() => window.__ia.state().model.selected") == -1
    ed.click((150, 150))
    assert page.js("() => window.__ia.state().model.selected") == 1
    assert ed.editor.locator("button.ia-duplicate").is_disabled()
    assert "read-only" in ed.editor.locator(".ia-status").text_content()
    # no move, no nudge, no duplicate
    undo_depth = "() => window.__ia.state().model.undoStack.length"
    depth = page.js(undo_depth)
    ed.drag((150, 150), (250, 200))
    for key in ("ArrowRight", "Shift+ArrowDown", "Control+d"):
        page.page.keyboard.press(key)
    assert ed.boxes() == [[420, 40, 580, 200], SOFA_BBOX]
    assert page.js(undo_depth) == depth
    # no resize handles: a drag from its box's corner draws a new box
    ed.drag((400, 300), (500, 380))
    assert ed.boxes() == [[420, 40, 580, 200], SOFA_BBOX, [400, 300, 500, 380]]
    page.page.keyboard.press("Control+z")
    assert ed.boxes() == [[420, 40, 580, 200], SOFA_BBOX]

    # its texts are edited like a box's, and the region stays
    ed.row(1).locator(".ia-caption").fill("an L-shaped red sofa")
    ed.row(1).locator(".ia-caption").press("Tab")
    saved = ed.value()["boxes"][1]
    assert saved == {**source["boxes"][1], "caption": "an L-shaped red sofa"}

    # the workflow keeps it: save, clear, load
    workflow = page.js("() => JSON.stringify(app.graph.serialize())")
    page.js("() => app.graph.clear()")
    page.js("async (wf) => { await app.loadGraphData(JSON.parse(wf)) }", workflow)
    ed.use_node(node_id)
    assert ed.value()["boxes"][1]["region"] == region
    assert page.js("() => window.__ia.state().model.boxes[1].region !== null")

    # the queued prompt carries it, and the server reads the same mask and box
    prompt_layout = page.js("async (id) => (await app.graphToPrompt()).output[id].inputs.layout", node_id)
    status, body = comfy_server.request("/instanceassemble/parse_layout", {"text": prompt_layout})
    assert status == 200, body
    assert body["layout"]["boxes"][1] == {**source["boxes"][1], "caption": "an L-shaped red sofa"}

    # a new size: the mask stretches, its box is the mask's bounding box at that size (the server's)
    width_widget = "window.__ia.node.widgets.find((w) => w.name === 'width')"
    page.js(f"() => {{ const w = {width_widget}; w.value = 1200; w.callback?.(1200) }}")
    assert sizes(page) == [1200, 400]
    assert ed.boxes()[1] == [200, 100, 800, 300]
    assert ed.value()["boxes"][1]["region"] == region
    assert ed.injected_images() == [[], 0]
