"""The layout editor widget in the real ComfyUI frontend (headless Chromium): draw, caption, move, resize, delete,
undo, save and reload, caption safety, and a queued graph that carries the layout to the server."""
import json
import os
import shutil
import time

from PIL import Image, ImageDraw

from editor_page import ROOT, EditorPage

XSS = "<img src=x onerror=alert(1)>"
DRAWN = [(100, 100, 400, 400), (500, 150, 900, 500), (200, 600, 700, 900)]
TEXTS = [("dog", "a brown dog"), ("cat", "a white cat"), ("sign", XSS)]
WORKFLOW_FILE = "workflows/instanceassemble-e2e.json"
DOCS_SCREENSHOT = ROOT / "docs" / "editor.png"


def assert_box(actual, expected, tolerance):
    assert all(abs(a - e) <= tolerance for a, e in zip(actual, expected)), f"{actual} != {expected} ± {tolerance}"


def test_draw_edit_undo_save_reload(page):
    ed = EditorPage(page).start()
    node_id = ed.add_editor()
    tol = 2 / ed.scale() + 1  # one screen pixel either way, in image pixels

    # draw three boxes with the mouse; each new box is selected and gets a row in the list
    for i, (x1, y1, x2, y2) in enumerate(DRAWN):
        ed.drag((x1, y1), (x2, y2))
        assert len(ed.boxes()) == i + 1
        assert_box(ed.boxes()[i], (x1, y1, x2, y2), tol)
        assert ed.row(i).get_attribute("aria-selected") == "true"

    # captions typed in the list (Backspace while typing edits the text, it does not delete the box)
    for i, (category, caption) in enumerate(TEXTS):
        ed.row(i).locator(".ia-category").click()
        page.page.keyboard.type(category + "x")
        page.page.keyboard.press("Backspace")
        ed.row(i).locator(".ia-caption").fill(caption)
        ed.row(i).locator(".ia-caption").press("Tab")
    assert len(ed.boxes()) == 3
    assert [(b["category"], b["caption"]) for b in ed.value()["boxes"]] == TEXTS

    # move box 2 by dragging its middle; resize box 1 by its bottom-right handle
    before = ed.boxes()[1]
    ed.drag((700, 325), (800, 375))
    assert_box(ed.boxes()[1], (before[0] + 100, before[1] + 50, before[2] + 100, before[3] + 50), tol)
    ed.click((250, 250))
    start = ed.boxes()[0]
    ed.drag((start[2], start[3]), (300, 350))
    assert_box(ed.boxes()[0], (start[0], start[1], 300, 350), tol)
    # a drag that leaves the canvas keeps going (pointer capture) and the box clamps to the image
    ed.click((250, 250))
    x, y = ed.client(300, 350)
    page.page.mouse.move(x, y)
    page.page.mouse.down()
    page.page.mouse.move(x + 2000, y + 2000, steps=4)
    page.page.mouse.up()
    assert ed.boxes()[0][2:] == [1024, 1024]
    page.page.keyboard.press("Control+z")
    assert_box(ed.boxes()[0], (start[0], start[1], 300, 350), tol)

    # delete box 2 with the Delete key, undo; then with the toolbar button, undo again
    state = ed.boxes()
    ed.click((850, 400))
    page.page.keyboard.press("Delete")
    assert ed.boxes() == [state[0], state[2]]
    page.page.keyboard.press("Control+z")
    assert ed.boxes() == state
    page.page.keyboard.press("Control+Shift+z")
    assert len(ed.boxes()) == 2
    page.page.keyboard.press("Control+z")
    ed.row(1).locator(".ia-swatch").click()
    ed.editor.locator("button.ia-delete").click()
    assert len(ed.boxes()) == 2
    page.page.keyboard.press("Control+z")
    assert ed.boxes() == state
    # ComfyUI's own Delete / graph undo did not fire: same node object, still in the graph
    assert page.js("() => app.graph.nodes.length === 1 && app.graph.nodes[0] === window.__ia.node")

    saved = ed.value()
    assert [b["bbox"] for b in saved["boxes"]] == state
    assert [(b["category"], b["caption"]) for b in saved["boxes"]] == TEXTS

    # the caption with HTML is plain text: shown as the input's value, no <img> created, no dialog
    assert ed.row(2).locator(".ia-caption").input_value() == XSS
    assert ed.editor.locator("img").count() == 0
    assert ed.injected_images() == [[], 0]

    # the API prompt carries the layout JSON as the node's `layout` input
    prompt_layout = page.js("async (id) => (await app.graphToPrompt()).output[id].inputs.layout", node_id)
    assert json.loads(prompt_layout) == saved
    page.screenshot("editor-before-reload.png", ed.editor)

    # save the workflow to the server's user data, reload the page, load it: the boxes are unchanged
    page.js("async (file) => { const r = await app.api.storeUserData(file, app.graph.serialize(),"
            " { overwrite: true, stringify: true, throwOnError: true }); return r.status }", WORKFLOW_FILE)
    ed.start()
    page.js("async (file) => { const r = await app.api.getUserData(file); await app.loadGraphData(await r.json()) }",
            WORKFLOW_FILE)
    node_id = page.js("() => app.graph.nodes.find((n) => n.type === 'InstanceAssembleLayoutEditor').id")
    ed.use_node(node_id)
    assert ed.value() == saved
    assert ed.editor.locator(".ia-box-row").count() == 3
    for i, (category, caption) in enumerate(TEXTS):
        assert ed.row(i).locator(".ia-category").input_value() == category
        assert ed.row(i).locator(".ia-caption").input_value() == caption
    assert ed.injected_images() == [[], 0]
    assert page.dialogs == []
    page.screenshot("editor-after-reload.png", ed.editor)

    # copy / paste of the node keeps the layout
    page.js("() => { app.canvas.selectItems([window.__ia.node]); app.canvas.copyToClipboard();"
            " app.canvas.pasteFromClipboard({ position: [40, 700] }); }")
    copies = page.js("() => app.graph.nodes.filter((n) => n.type === 'InstanceAssembleLayoutEditor')"
                     ".map((n) => n.widgets.find((w) => w.name === 'layout').value)")
    assert len(copies) == 2 and all(json.loads(v) == saved for v in copies)
    assert ed.injected_images() == [[], 0]
    assert page.dialogs == []


def _scene_png(path):
    """A small synthetic photo-like picture (sky, ground, sun) used as the editor's background."""
    image = Image.new("RGB", (512, 512), (120, 170, 230))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 330, 512, 512), fill=(90, 150, 70))
    draw.ellipse((380, 40, 460, 120), fill=(250, 220, 90))
    image.save(path)


def test_queued_graph_reaches_server_and_sets_background(page, comfy_server):
    (comfy_server.base_dir / "input").mkdir(exist_ok=True)
    _scene_png(comfy_server.base_dir / "input" / "ia_scene.png")
    ed = EditorPage(page).start()
    node_id = ed.add_editor()
    ed.draw_layout([(box, category, caption) for box, (category, caption) in zip(DRAWN[:2], TEXTS[:2])],
                   "a dog and a cat in a garden")
    layout = ed.value()
    assert layout["prompt"] == "a dog and a cat in a garden"

    # editor -> DrawLayout(EmptyImage) -> PreviewImage, and LoadImage -> PreviewImage (the background source)
    page.js("""(editorId) => {
        const add = (type, pos) => { const n = LiteGraph.createNode(type); n.pos = pos; app.graph.add(n); return n };
        const editor = app.graph.getNodeById(editorId);
        const empty = add('EmptyImage', [960, 20]);
        empty.widgets.find((w) => w.name === 'width').value = 256;
        empty.widgets.find((w) => w.name === 'height').value = 256;
        const draw = add('InstanceAssembleDrawLayout', [960, 260]);
        const preview = add('PreviewImage', [1200, 260]);
        empty.connect(0, draw, 0);
        editor.connect(0, draw, 1);
        draw.connect(0, preview, 0);
        const load = add('LoadImage', [960, 420]);
        load.widgets.find((w) => w.name === 'image').value = 'ia_scene.png';
        load.connect(0, add('PreviewImage', [1200, 420]), 0);
    }""", node_id)
    earlier = set(comfy_server.request("/history")[1])  # the server is shared by the renderers' runs
    page.js("() => app.queuePrompt(0, 1)")

    # the history shows the prompt succeeded with the editor's layout as its input
    def carries_layout(entry):
        return any(n.get("class_type") == "InstanceAssembleLayoutEditor" and n["inputs"].get("layout")
                   and json.loads(n["inputs"]["layout"]) == layout for n in entry["prompt"][2].values())

    deadline = time.monotonic() + 90
    entries = []
    while not entries and time.monotonic() < deadline:
        time.sleep(0.3)
        entries = [k for k, e in comfy_server.request("/history")[1].items() if k not in earlier and carries_layout(e)]
    assert len(entries) == 1, f"the queued prompt with this layout is not in the history:\n{comfy_server.log_tail()}"
    entry = comfy_server.wait_history(entries[0])
    page.page.wait_for_function("() => window.__ia.state().background !== null", timeout=30_000)
    assert entry["status"]["status_str"] == "success", entry["status"]
    draw_id = next(k for k, n in entry["prompt"][2].items() if n["class_type"] == "InstanceAssembleDrawLayout")
    preview_id = next(k for k, n in entry["prompt"][2].items()
                      if n["class_type"] == "PreviewImage" and n["inputs"]["images"][0] == draw_id)
    image = entry["outputs"][preview_id]["images"][0]
    assert image["type"] == "temp"

    # the background came from LoadImage's preview (a DrawLayout preview is skipped: it has boxes drawn in)
    load_id = next(k for k, n in entry["prompt"][2].items() if n["class_type"] == "LoadImage")
    scene_preview = next(k for k, n in entry["prompt"][2].items()
                         if n["class_type"] == "PreviewImage" and n["inputs"]["images"][0] == load_id)
    background = page.js("() => window.__ia.state().background.src")
    assert entry["outputs"][scene_preview]["images"][0]["filename"] in background
    assert image["filename"] not in background

    page.js("() => { document.activeElement?.blur(); window.__ia.state().model.select(1) }")
    page.page.wait_for_timeout(100)  # one frame for the canvas to redraw
    shot = page.screenshot("editor.png", ed.editor)
    if (not DOCS_SCREENSHOT.exists() or os.environ.get("UPDATE_DOCS_SCREENSHOT")) and not page.target.vue:
        DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, DOCS_SCREENSHOT)
