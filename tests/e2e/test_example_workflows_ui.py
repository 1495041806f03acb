"""The example workflows as a new user opens them: no node covers another or a group title in either renderer, the
layout node is readable on screen, and missing InstanceAssemble weights are flagged when the workflow opens."""
import json

from editor_page import ARTIFACTS, ROOT

EXAMPLES = sorted((ROOT / "example_workflows").glob("*.json"))
TOAST = ":is(.p-toast-message, li[data-toast-kind])"  # PrimeVue's toasts (<= 1.4x), the new ones (1.5x)
MIN_SCALE = 0.9  # below this the box list's text is hard to read

# Every node's and group title's rectangle [x, y, w, h] in graph coordinates, as the renderer shows them (Vue nodes:
# their DOM boxes; classic: LiteGraph's bounding box with the title bar).
MEASURE = """() => {
    const ds = app.canvas.ds;
    const origin = app.canvas.canvas.getBoundingClientRect();
    const toGraph = (r) => [(r.left - origin.left) / ds.scale - ds.offset[0], (r.top - origin.top) / ds.scale - ds.offset[1],
                            r.width / ds.scale, r.height / ds.scale];
    const nodes = app.graph.nodes.map((n) => {
        const el = document.querySelector(`[data-node-id="${n.id}"]`);
        const rect = LiteGraph.vueNodesMode && el ? toGraph(el.getBoundingClientRect()) : [...n.getBounding()];
        return { id: n.id, type: n.type, rect };
    });
    const groups = app.graph.groups.map((g) => ({ title: g.title,
        rect: [g.pos[0], g.pos[1], g.size[0], g.titleHeight ?? g.font_size * 1.4] }));
    return { nodes, groups, scale: ds.scale };
}"""


def overlap(a, b, margin=0):
    return (a[0] < b[0] + b[2] - margin and b[0] < a[0] + a[2] - margin
            and a[1] < b[1] + b[3] - margin and b[1] < a[1] + a[3] - margin)


def on_screen(page, node_type):
    return page.js("""(type) => {
        const n = app.graph.nodes.find((n) => n.type === type);
        const ds = app.canvas.ds, r = app.canvas.canvas.getBoundingClientRect();
        const [x, y, w, h] = n.getBounding();
        const left = (x + ds.offset[0]) * ds.scale, top = (y + ds.offset[1]) * ds.scale;
        return left >= 48 && top >= 0 && left + w * ds.scale <= r.width && top + h * ds.scale <= r.height;
    }""", node_type)


def test_examples_open_without_overlaps_readable_and_flag_missing_weights(page):
    page.open()
    measured, problems = {}, []
    for path in EXAMPLES:
        workflow = json.loads(path.read_text(encoding="utf-8"))
        page.js("() => { const t = app.extensionManager.toast; (t.dismissAll ?? t.removeAll)?.call(t) }")
        page.page.wait_for_function(f"() => !document.querySelector('{TOAST}')", timeout=10_000)
        page.js("async (w) => { await app.loadGraphData(w) }", workflow)
        page.page.wait_for_timeout(1200 if page.target.vue else 300)  # Vue nodes mount and measure themselves
        page.screenshot(f"example-{path.stem}.png")
        shown = measured[path.stem] = page.js(MEASURE)
        nodes = shown["nodes"]
        clashes = [(a["type"], b["type"]) for i, a in enumerate(nodes) for b in nodes[i + 1:]
                   if overlap(a["rect"], b["rect"])]
        if clashes:
            problems.append(f"{path.name}: nodes overlap: {clashes}")
        hidden = [(g["title"], n["type"]) for g in shown["groups"] for n in nodes if overlap(g["rect"], n["rect"])]
        if hidden:
            problems.append(f"{path.name}: group titles under nodes: {hidden}")
        if shown["scale"] < MIN_SCALE:
            problems.append(f"{path.name} opens at {shown['scale']:.0%} zoom")
        layout_node = next(n["type"] for n in nodes if n["type"].startswith("InstanceAssembleLayout"))
        if not on_screen(page, layout_node):
            problems.append(f"{path.name}: the layout node is not fully on screen")

        # the test server has no InstanceAssemble weights: the user is told which files to get, and where
        loader = next(n for n in workflow["nodes"] if n["type"] == "InstanceAssembleLoader")
        family = loader["widgets_values"][0]
        toast = page.page.locator(TOAST, has_text="InstanceAssemble weights missing")
        try:
            toast.first.wait_for(timeout=10_000)
        except Exception:  # noqa: BLE001 - reported below with the other findings
            problems.append(f"{path.name}: no missing-weights message")
            continue
        text = toast.first.text_content()
        for model in loader["properties"].get("models", [None]):
            if not model or model["url"] not in text or model["name"] not in text:
                problems.append(f"{path.name}: the message lacks {model}: {text}")
        if f"models/instanceassemble/{family}/" not in text:
            problems.append(f"{path.name}: the message does not say where the weights go: {text}")
    (ARTIFACTS / page.target.slug / "examples-measured.json").write_text(json.dumps(measured, indent=1))
    assert problems == []
