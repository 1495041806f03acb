"""Helpers that drive the layout editor widget in the real ComfyUI frontend (used by the e2e tests)."""
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / ".artifacts" / "e2e"  # screenshots and the server log (git-ignored)

NODE = "InstanceAssembleLayoutEditor"
CANVAS_OFFSET = (60, 100)  # graph origin on screen: right of the sidebar, below the tab bar and the graph toolbar

# Installed before the app's scripts: records every <img> element that appears with src="x", so a caption
# like <img src=x onerror=...> would be caught if it were ever inserted as HTML.
IMG_TRAP = """
window.__iaInjected = [];
new MutationObserver((records) => {
  for (const r of records) for (const n of r.addedNodes) {
    if (n.nodeType !== 1) continue;
    for (const img of [n, ...n.querySelectorAll('img')]) {
      if (img.tagName === 'IMG' && img.getAttribute('src') === 'x') window.__iaInjected.push(img.outerHTML);
    }
  }
}).observe(document, { childList: true, subtree: true });
"""

# Defines window.__ia: the extension module (the same instance the app loaded) and the editor node helpers.
SETUP = """
async () => {
  const url = (await (await fetch('/extensions')).json()).find((u) => u.endsWith('/editor_extension.js'));
  const mod = await import(url);
  window.__ia = {
    mod,
    node: null,
    state() { return mod.getLayoutEditorState(this.node) },
    dialogView: false,
    view() {
      const state = this.state();
      return this.dialogView ? [...state.views].find((v) => v.element.closest('.ia-dialog')) : state.inline;
    },
    toClient(x, y) { return this.view().canvas.imageToClient(x, y) },
    boxes() { return this.state().model.boxes.map((b) => b.bbox) },
    value() { return this.node.widgets.find((w) => w.name === 'layout').value },
  };
  return url;
}
"""


class EditorPage:
    """The ComfyUI page with one layout editor node on an otherwise empty graph."""

    def __init__(self, ui):
        self.ui = ui
        self.page = ui.page

    def start(self):
        self.page.context.add_init_script(IMG_TRAP)
        self.ui.open()
        self.ui.js(SETUP)
        return self

    def add_editor(self, pos=(20, 20), size=(900, 620), wait=True, clear=True):
        """Clear the graph and add the editor node at a fixed place on an unzoomed canvas, clear of the sidebar
        and the top bars that float over the canvas since frontend 1.40."""
        node_id = self.ui.js("""([pos, size, clear]) => {
            if (clear) app.graph.clear();
            const node = LiteGraph.createNode('%s');
            node.pos = pos;
            app.graph.add(node);
            node.setSize(size);
            app.canvas.ds.scale = 1;
            app.canvas.ds.offset = [%d, %d];
            app.canvas.setDirty(true, true);
            window.__ia.node = node;
            return node.id;
        }""" % (NODE, *CANVAS_OFFSET), [list(pos), list(size), clear])
        if wait:
            self.wait_ready()
        return node_id

    def use_dialog(self, on=True):
        """Drive the editor in the large dialog (True) or the one inside the node (False)."""
        self.ui.js("(on) => { window.__ia.dialogView = on }", on)
        if on:
            self.wait_ready()

    def use_node(self, node_id):
        self.ui.js("(id) => { window.__ia.node = app.graph.getNodeById(id) }", node_id)
        self.wait_ready()

    def wait_ready(self):
        """Wait until the inline editor is on screen and its canvas has laid out the image frame."""
        self.page.wait_for_function("""() => {
            const view = window.__ia.view();
            const rect = view.element.getBoundingClientRect();
            return view.element.isConnected && rect.width > 300 && view.canvas.fit.scale > 0.2
                && view.canvas.fit.w > 100;
        }""", timeout=15_000)
        # Vue nodes may still settle (position, size) for a few frames: wait until the canvas stays put
        self.page.wait_for_function("""() => {
            const r = window.__ia.view().canvas.element.getBoundingClientRect();
            const key = [r.left, r.top, r.width, r.height].join();
            const same = window.__iaLastRect === key;
            window.__iaLastRect = key;
            return same;
        }""", polling=250, timeout=15_000)

    # ----- reading state -----

    def boxes(self):
        return self.ui.js("() => window.__ia.boxes()")

    def value(self) -> dict:
        return json.loads(self.ui.js("() => window.__ia.value()"))

    def scale(self) -> float:
        """Screen pixels per image pixel."""
        return self.ui.js("() => window.__ia.view().canvas.fit.scale")

    def client(self, x, y):
        return self.ui.js("([x, y]) => window.__ia.toClient(x, y)", [x, y])

    @property
    def editor(self):
        if self.ui.js("() => window.__ia.dialogView"):
            return self.page.locator(".ia-dialog .ia-layout-editor")
        return self.page.locator(".ia-layout-editor").first

    def row(self, index):
        return self.editor.locator(".ia-box-row").nth(index)

    # ----- drawing a layout -----

    def draw_layout(self, boxes, prompt):
        """Drag each box ((x1, y1, x2, y2), category, caption) on the canvas, type its texts, then the prompt."""
        for (x1, y1, x2, y2), category, caption in boxes:
            self.drag((x1, y1), (x2, y2))
            row = self.row(len(self.boxes()) - 1)
            row.locator(".ia-category").fill(category)
            row.locator(".ia-caption").fill(caption)
            row.locator(".ia-caption").press("Tab")
        self.editor.locator(".ia-prompt").fill(prompt)
        self.editor.locator(".ia-prompt").press("Tab")

    # ----- mouse -----

    def drag(self, start, end, steps=8):
        """Press at image point `start`, move to image point `end`, release."""
        x0, y0 = self.client(*start)
        x1, y1 = self.client(*end)
        mouse = self.page.mouse
        mouse.move(x0, y0)
        mouse.down()
        mouse.move(x1, y1, steps=steps)
        mouse.up()

    def click(self, point, modifiers=()):
        x, y = self.client(*point)
        for key in modifiers:
            self.page.keyboard.down(key)
        self.page.mouse.click(x, y)
        for key in modifiers:
            self.page.keyboard.up(key)

    def injected_images(self):
        return self.ui.js("() => [window.__iaInjected, [...document.querySelectorAll('img')]"
                          ".filter((i) => i.getAttribute('src') === 'x').length]")
