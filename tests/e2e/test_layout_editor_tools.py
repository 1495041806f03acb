"""The editor's tools in the real frontend: JSON import (server-parsed) and export, width/height rescaling,
duplicate / reorder, Alt+click cycling, grid snapping, 100 boxes, and an image dropped as background."""
import json

from editor_page import EditorPage

XSS = "<img src=x onerror=alert(1)>"
DEMO = {"prompt": "two animals", "width": 512, "height": 256,
        "annos": [{"bbox": [10, 20, 200, 240], "category_name": "cat", "caption": "a ginger cat"},
                  {"bbox": [260, 30, 500, 250], "category_name": "dog", "caption": XSS}]}


def widget_size(page):
    return page.js("() => ['width', 'height'].map((n) => window.__ia.node.widgets.find((w) => w.name === n).value)")


def import_text(ed, text):
    ed.editor.locator(".ia-json").fill(text)
    ed.editor.locator("button.ia-import").click()
    message = ed.editor.locator(".ia-io-message")
    message.filter(has_not_text="Importing").wait_for()
    return message


def test_import_export_resize_and_box_tools(page):
    ed = EditorPage(page).start()
    ed.add_editor()
    keyboard = page.page.keyboard

    # import the official demo JSON through the server's parser; the size widgets follow the layout
    ed.editor.locator("button.ia-json-toggle").click()
    message = import_text(ed, json.dumps(DEMO))
    assert message.text_content() == "Imported 2 boxes (512×256)."
    assert ed.boxes() == [[10, 20, 200, 240], [260, 30, 500, 250]]
    assert widget_size(page) == [512, 256]
    assert ed.value()["prompt"] == "two animals"
    assert ed.row(1).locator(".ia-caption").input_value() == XSS
    keyboard.press("Control+z")
    assert ed.boxes() == [] and widget_size(page) == [1024, 1024]
    keyboard.press("Control+y")
    assert len(ed.boxes()) == 2 and widget_size(page) == [512, 256]

    # a bad layout: the parser's message is shown as text, the layout is unchanged
    bad = dict(DEMO, annos=[{"bbox": [300, 20, 200, 240], "category_name": XSS}])
    message = import_text(ed, json.dumps(bad))
    assert "annos[0].bbox" in message.text_content() and XSS in message.text_content()
    assert "ia-error" in message.get_attribute("class")
    assert message.locator("img").count() == 0
    assert len(ed.boxes()) == 2

    # export shows (and tries to copy) the canonical JSON
    ed.editor.locator("button.ia-export").click()
    assert json.loads(ed.editor.locator(".ia-json").input_value()) == ed.value()
    ed.editor.locator("button.ia-json-toggle").click()

    # a width change rescales the boxes (as a user edit of the widget would: value, then callback)
    page.js("() => { const w = window.__ia.node.widgets.find((w) => w.name === 'width'); w.value = 1024;"
            " w.callback(1024) }")
    assert ed.boxes() == [[20, 20, 400, 240], [520, 30, 1000, 250]]
    assert ed.value()["width"] == 1024

    # duplicate (button and Ctrl+D), reorder, Alt+click through the overlapping copies
    ed.click((100, 100))
    ed.editor.locator("button.ia-duplicate").click()
    assert ed.boxes()[2] == [36, 36, 416, 256]
    ed.editor.locator("button.ia-backward").click()
    assert page.js("() => window.__ia.state().model.selected") == 1
    keyboard.press("Control+d")
    assert len(ed.boxes()) == 4
    selected = lambda: page.js("() => window.__ia.state().model.selected")  # noqa: E731
    ed.click((100, 100))
    top = selected()
    assert top == 3
    seen = [top]
    for _ in range(3):
        ed.click((100, 100), modifiers=["Alt"])
        seen.append(selected())
    assert seen == [3, 1, 0, 3], seen  # topmost first, then the boxes under it, then around again
    keyboard.press("Escape")
    assert selected() == -1

    # grid snapping (G): new boxes land on the 16 px token grid
    keyboard.press("g")
    assert ed.editor.locator(".ia-snap").is_checked()
    ed.drag((603, 305), (781, 410))
    assert all(v % 16 == 0 for v in ed.boxes()[-1]), ed.boxes()[-1]
    assert page.js("() => window.__ia.node.properties.ia_snap") is True


def test_hundred_boxes_and_dropped_background(page):
    ed = EditorPage(page).start()
    ed.add_editor(size=(900, 560))
    boxes = [{"bbox": [(i % 10) * 100, (i // 10) * 100, (i % 10) * 100 + 90, (i // 10) * 100 + 90],
              "category": f"thing {i + 1}", "caption": f"caption {i + 1}"} for i in range(100)]
    layout = {"format": "instanceassemble.layout", "version": 1, "width": 1024, "height": 1024, "prompt": "",
              "boxes": boxes}
    ed.editor.locator("button.ia-json-toggle").click()
    assert import_text(ed, json.dumps(layout)).text_content() == "Imported 100 boxes (1024×1024)."
    ed.editor.locator("button.ia-json-toggle").click()

    rows = ed.editor.locator(".ia-box-row")
    assert rows.count() == 100
    scroll = page.js("() => { const l = document.querySelector('.ia-box-list'); return [l.scrollHeight, l.clientHeight] }")
    assert scroll[0] > scroll[1] > 0, "the box list scrolls"

    # clicking the last box on the canvas selects its row and scrolls it into view
    ed.click((945, 945))
    assert rows.nth(99).get_attribute("aria-selected") == "true"
    assert page.js("""() => {
        const list = document.querySelector('.ia-box-list').getBoundingClientRect();
        const row = document.querySelectorAll('.ia-box-row')[99].getBoundingClientRect();
        return row.top >= list.top - 1 && row.bottom <= list.bottom + 1;
    }""")
    # ... and a drag still moves it
    ed.drag((945, 945), (925, 925))
    assert ed.boxes()[99] == [880, 880, 970, 970]

    # an image dropped on the canvas becomes the background; ComfyUI does not load it as a workflow
    nodes_before = page.js("() => app.graph.nodes.length")
    page.js("""async () => {
        const canvas = document.createElement('canvas');
        canvas.width = 64; canvas.height = 64;
        const ctx = canvas.getContext('2d');
        ctx.fillStyle = '#3a7'; ctx.fillRect(0, 0, 64, 64);
        const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/png'));
        const data = new DataTransfer();
        data.items.add(new File([blob], 'background.png', { type: 'image/png' }));
        const target = document.querySelector('.ia-canvas-wrap');
        target.dispatchEvent(new DragEvent('dragover', { dataTransfer: data, bubbles: true, cancelable: true }));
        target.dispatchEvent(new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true }));
    }""")
    page.page.wait_for_function("() => window.__ia.state().background?.naturalWidth === 64")
    assert page.js("() => app.graph.nodes.length") == nodes_before
    assert ed.editor.locator("button.ia-clear-bg").is_visible()
    page.screenshot("editor-100-boxes.png", ed.editor)
    ed.editor.locator("button.ia-clear-bg").click()
    assert page.js("() => window.__ia.state().background") is None
    assert page.dialogs == []
