"""Editor details in the real frontend: drawing over existing boxes (Draw tool, Shift+drag), exact import (no
rounding of the size or the boxes; a DenseLayout list or COCO file with an entry to choose), the dialog button's
label, Escape closing the large dialog, the light theme, full-width captions, no tooltip over the editor."""
import json

from editor_page import EditorPage

FRACTIONAL = {"prompt": "a room", "width": 1500, "height": 1000,
              "annos": [{"bbox": [0, 0, 1500, 1000], "category_name": "wall", "caption": "a white wall"},
                        {"bbox": [100.4, 200.6, 700.5, 815.9], "category_name": "sofa", "caption": "a green sofa"}]}
DENSE_LIST = [{"id": 7, "caption": "first", "width": 512, "height": 512,
               "annos": [{"bbox": [0, 0, 100, 100], "category_name": "a", "caption": "a"}]},
              {"id": 9, "caption": "second", "width": 640, "height": 480,
               "annos": [{"bbox": [10.5, 20.25, 300, 400], "category_name": "b", "caption": "b"},
                         {"bbox": [320, 20, 600, 460], "category_name": "c", "caption": "c"}]}]
COCO = {"images": [{"id": 1, "file_name": "one.jpg", "width": 320, "height": 320},
                   {"id": 2, "file_name": "two.jpg", "width": 800, "height": 600}],
        "categories": [{"id": 5, "name": "dog"}],
        "annotations": [{"image_id": 2, "category_id": 5, "bbox": [10.5, 20, 100, 50.25]},
                        {"image_id": 1, "category_id": 5, "bbox": [0, 0, 10, 10]}]}
LONG_CAPTION = "a ginger cat asleep on a red chair"


def import_json(ed, data, entry=""):
    ed.editor.locator(".ia-json").fill(json.dumps(data))
    ed.editor.locator(".ia-entry").fill(entry)
    ed.editor.locator("button.ia-import").click()
    message = ed.editor.locator(".ia-io-message")
    message.filter(has_not_text="Importing").wait_for()
    return message.text_content()


def sizes(page):
    return page.js("() => ['width', 'height'].map((n) => window.__ia.node.widgets.find((w) => w.name === n).value)")


def test_draw_over_boxes_with_the_draw_tool_and_shift_drag(page):
    ed = EditorPage(page).start()
    ed.add_editor()
    keyboard = page.page.keyboard
    ed.drag((0, 0), (1024, 1024))  # a background box covering the image
    assert len(ed.boxes()) == 1
    ed.drag((200, 200), (300, 300))  # a plain drag inside it moves it (clamped: it cannot move)
    assert len(ed.boxes()) == 1

    # the toolbar's Draw tool: every drag draws, also inside boxes
    ed.editor.locator("button.ia-draw-over").click()
    assert ed.editor.locator("button.ia-draw-over").get_attribute("aria-pressed") == "true"
    ed.drag((200, 200), (400, 500))
    ed.drag((250, 250), (350, 350))  # inside the box just drawn, too
    assert len(ed.boxes()) == 3
    tol = 2 / ed.scale() + 1
    assert all(abs(a - e) <= tol for a, e in zip(ed.boxes()[2], (250, 250, 350, 350))), ed.boxes()
    # B toggles it (the shortcut list says so), Escape leaves it
    keyboard.press("b")
    assert ed.editor.locator("button.ia-draw-over").get_attribute("aria-pressed") == "false"
    keyboard.press("b")
    keyboard.press("Escape")
    assert ed.editor.locator("button.ia-draw-over").get_attribute("aria-pressed") == "false"
    ed.drag((600, 600), (700, 700))  # tool off: a drag inside the background box moves it, no new box
    assert len(ed.boxes()) == 3

    # Shift+drag draws once, without the tool
    keyboard.down("Shift")
    ed.drag((600, 600), (800, 700))
    keyboard.up("Shift")
    assert len(ed.boxes()) == 4
    help_text = ed.editor.locator(".ia-help").get_attribute("title")
    assert "Shift+drag" in help_text and "Draw tool (B)" in help_text
    page.screenshot("editor-draw-over.png", ed.editor)


def test_import_keeps_size_and_coordinates_and_picks_an_entry(page, comfy_server):
    ed = EditorPage(page).start()
    node_id = ed.add_editor()
    ed.editor.locator("button.ia-json-toggle").click()

    assert import_json(ed, FRACTIONAL) == "Imported 2 boxes (1500×1000)."
    assert sizes(page) == [1500, 1000]
    layout = ed.value()
    assert (layout["width"], layout["height"]) == (1500, 1000)
    assert [b["bbox"] for b in layout["boxes"]] == [[0, 0, 1500, 1000], [100.4, 200.6, 700.5, 815.9]]
    # the queued prompt carries the same numbers, and the server takes them as they are
    prompt_layout = page.js("async (id) => (await app.graphToPrompt()).output[id].inputs.layout", node_id)
    assert json.loads(prompt_layout)["boxes"][1]["bbox"] == [100.4, 200.6, 700.5, 815.9]
    status, body = comfy_server.request("/instanceassemble/parse_layout", {"text": prompt_layout})
    assert status == 200 and body["layout"]["boxes"][1]["bbox"] == [100.4, 200.6, 700.5, 815.9], body

    # a DenseLayout list: without an entry the server's message lists the ids and the entry field takes focus
    message = import_json(ed, DENSE_LIST)
    assert "7" in message and "9" in message and "ia-error" in ed.editor.locator(".ia-io-message").get_attribute("class")
    assert page.js("() => document.activeElement?.classList.contains('ia-entry')")
    assert len(ed.boxes()) == 2  # unchanged
    assert import_json(ed, DENSE_LIST, "9") == "Imported 2 boxes (640×480)."
    assert ed.boxes()[0] == [10.5, 20.25, 300, 400] and sizes(page) == [640, 480]
    # a multi-image COCO file, by file name
    assert import_json(ed, COCO, "two.jpg") == "Imported 1 box (800×600)."
    assert ed.boxes() == [[10.5, 20, 110.5, 70.25]]
    page.page.keyboard.press("Control+z")  # each import is one undo step
    assert ed.boxes()[0] == [10.5, 20.25, 300, 400]


def test_dialog_button_escape_light_theme_captions_and_tooltip(page):
    ed = EditorPage(page).start()
    node_id = ed.add_editor(size=(560, 620))  # the node's default width
    label = page.js("() => window.__ia.node.widgets.find((w) => w.type === 'button').label")
    assert label == "Open layout editor"
    if page.target.vue:
        vue_node = page.page.locator(f'[data-node-id="{node_id}"]')
        assert vue_node.get_by_role("button", name="Open layout editor", exact=True).count() == 1

    # a caption fits its field at the default node width
    ed.drag((100, 100), (400, 400))
    ed.row(0).locator(".ia-caption").fill(LONG_CAPTION)
    fits = page.js("() => { const c = document.querySelector('.ia-caption'); return [c.scrollWidth, c.clientWidth] }")
    assert fits[0] <= fits[1], f"the caption is cut: {fits}"

    # no tooltip covers the editor while the mouse rests on it (Nodes 2.0 shows widget tooltips)
    x, y = ed.client(700, 700)
    page.page.mouse.move(x, y)
    page.page.mouse.move(x + 5, y + 5)
    page.page.wait_for_timeout(1500)
    tooltips = page.js("() => [...document.querySelectorAll('.p-tooltip, [role=tooltip]')]"
                       ".filter((t) => t.offsetParent !== null).map((t) => t.textContent)")
    assert tooltips == [], tooltips

    # Escape: first deselects, then closes the large dialog
    ed.editor.locator("button.ia-expand").click()
    page.page.locator(".ia-dialog").wait_for()
    ed.use_dialog()
    ed.click((250, 250))
    page.page.keyboard.press("Escape")
    assert page.page.locator(".ia-dialog").count() == 1
    page.page.keyboard.press("Escape")
    page.page.locator(".ia-dialog").wait_for(state="detached", timeout=5_000)
    ed.use_dialog(False)

    # the light theme gives a light drawing frame (the image area), not a dark one
    dark = frame_pixel(page, ed)
    page.js("async () => { await app.extensionManager.setting.set('Comfy.ColorPalette', 'light') }")
    page.page.wait_for_timeout(500)
    page.js("() => window.__ia.state().inline.canvas.draw()")
    light = frame_pixel(page, ed)
    page.screenshot("editor-light-theme.png", ed.editor)
    page.js("async () => { await app.extensionManager.setting.set('Comfy.ColorPalette', 'dark') }")
    assert sum(dark) / 3 < 100 and sum(light) / 3 > 180, (dark, light)


def frame_pixel(page, ed):
    """The canvas colour at an empty spot of the image frame, [r, g, b]."""
    return page.js("""() => {
        const view = window.__ia.state().inline.canvas;
        const fit = view.currentFit(), dpr = window.devicePixelRatio || 1;
        const px = view.ctx.getImageData(Math.round((fit.x + 0.9 * fit.w) * dpr), Math.round((fit.y + 0.9 * fit.h) * dpr), 1, 1);
        return [...px.data.slice(0, 3)];
    }""")
