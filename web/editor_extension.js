// ComfyUI frontend extension: the box-layout editor widget of the InstanceAssembleLayoutEditor node.
//
// State: the node's `layout` input is a STRING whose widget (type INSTANCEASSEMBLE_LAYOUT_CANVAS, from
// the input's `widgetType`) is a DOM widget over a LayoutModel. Its value is the canonical layout
// JSON, so it is saved in the workflow's widgets_values and sent as the `layout` input of the API
// prompt. The width/height widgets and the layout's size are kept equal: changing a widget rescales
// the boxes, and importing or undoing updates the widgets.

import { api } from '../../scripts/api.js'
import { app } from '../../scripts/app.js'
import { el } from './dom.js'
import { openDialog } from './layout_dialog.js'
import { LayoutModel, emptyLayoutJSON, readCanonical } from './layout_model.js'
import { LayoutEditor, wheelScrollsEditorPart } from './layout_editor.js'

export const NODE_CLASS = 'InstanceAssembleLayoutEditor'
export const WIDGET_TYPE = 'INSTANCEASSEMBLE_LAYOUT_CANVAS'
export const DRAW_NODE_CLASS = 'InstanceAssembleDrawLayout'
const PARSE_ROUTE = '/instanceassemble/parse_layout'
const STATE = Symbol('instanceassemble.layoutEditor')
const OPEN_BUTTON = 'Open layout editor'

function loadStylesheet() {
  const href = new URL('./layout_editor.css', import.meta.url).href
  if ([...document.styleSheets].some((s) => s.href === href)) return
  document.head.append(el('link', { rel: 'stylesheet', href }))
}

/**
 * Parses layout text in any supported format on the server (the pack's one parser) and returns the
 * canonical layout object; `image` picks the entry of a DenseLayout list or a COCO file. Throws an
 * Error with the parser's message and its `field` (e.g. "image" when an entry must be chosen).
 */
export async function parseLayoutOnServer(text, { width, height, image } = {}) {
  const res = await api.fetchApi(PARSE_ROUTE, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ text, width, height, image: image || undefined }),
  })
  const body = await res.json().catch(() => ({}))
  if (!res.ok || !body.layout) {
    const error = new Error(body.error ?? `The server could not parse the layout (HTTP ${res.status}).`)
    error.field = body.field ?? null
    throw error
  }
  return body.layout
}

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const image = new Image()
    image.onload = () => resolve(image)
    image.onerror = () => reject(new Error(`could not load ${src}`))
    image.src = src
  })
}

/** Editor state of a node (model, widget, views), or undefined for other nodes. For tests and tools. */
export function getLayoutEditorState(node) {
  return node?.[STATE]
}

function setBackground(state, image, objectURL = null) {
  if (state.objectURL) URL.revokeObjectURL(state.objectURL)
  state.objectURL = objectURL
  state.background = image
  for (const view of state.views) view.setBackground(image)
}

/** Records the graph state for ComfyUI's undo and "modified" flag: `captureCanvasState` since it
 * deprecated `checkState` (1.4x), `checkState` on older frontends. */
function captureGraphState() {
  const tracker = app.extensionManager?.workflow?.activeWorkflow?.changeTracker
  if (!tracker) return
  if (typeof tracker.captureCanvasState === 'function') tracker.captureCanvasState()
  else tracker.checkState?.()
}

/** Lets ComfyUI notice the edit (workflow "modified" flag, graph-level undo), at most every 300 ms. */
function graphChangedNotifier(node) {
  let timer = null
  return () => {
    node.setDirtyCanvas?.(true, false)
    clearTimeout(timer)
    timer = setTimeout(captureGraphState, 300)
  }
}

function makeView(node, state, { expandable }) {
  const view = new LayoutEditor(state.model, {
    importLayout: (text, image) => parseLayoutOnServer(text, { width: state.model.width, height: state.model.height, image }),
    snapSetting: {
      get: () => !!node.properties?.ia_snap,
      set: (v) => {
        node.properties ??= {}
        node.properties.ia_snap = v
        for (const other of state.views) other.snapBox.checked = v
      },
    },
    onExpand: expandable ? () => openEditorDialog(node) : undefined,
    onImageDropped: (file) => {
      const url = URL.createObjectURL(file)
      loadImage(url).then((image) => setBackground(state, image, url), () => URL.revokeObjectURL(url))
    },
    onBackgroundCleared: () => setBackground(state, null),
  })
  view.setBackground(state.background)
  state.views.add(view)
  return view
}

/** Opens the node's layout in a large dialog (a second view of the same model). */
export function openEditorDialog(node) {
  const state = node[STATE]
  if (!state) return
  if (state.closeDialog) return
  const view = makeView(node, state, { expandable: false })
  view.element.classList.add('ia-in-dialog')
  state.closeDialog = openDialog(node.title || 'Layout editor', view.element, () => {
    state.views.delete(view)
    view.dispose()
    state.closeDialog = null
  })
}

function createLayoutWidget(node, inputName, inputData) {
  const initial = inputData?.[1]?.default ?? emptyLayoutJSON()
  let model
  try {
    model = new LayoutModel(readCanonical(initial))
  } catch {
    model = new LayoutModel()
  }
  const state = { model, views: new Set(), background: null, objectURL: null, closeDialog: null }
  node[STATE] = state
  const inline = makeView(node, state, { expandable: true })
  state.inline = inline

  const widget = node.addDOMWidget(inputName, WIDGET_TYPE, inline.element, {
    getValue: () => model.toJSON(),
    setValue: (value) => {
      try {
        model.reset(value)
      } catch {
        // Not canonical JSON (an API prompt or a hand-edited workflow): let the server convert it.
        parseLayoutOnServer(String(value)).then((layout) => model.reset(layout),
          (err) => console.warn(`[InstanceAssemble] ${node.title}: layout not loaded: ${err.message}`))
      }
    },
    getMinHeight: () => 320,
    // The properties panel (1.4x+) would list the widget and move the editor into it, squeezing it
    // in the node for good; the editor is edited in the node or its dialog only.
    hideInPanel: true,
  })
  // Nodes 2.0 shows a widget's tooltip (else the input's) while the mouse is over it: over the editor
  // it would cover the canvas. A blank one shows nothing; the editor has its own help (?).
  widget.tooltip = ' '
  state.widget = widget
  model.onChange(graphChangedNotifier(node))
  return widget
}

function keepSizeInSync(node) {
  const state = node[STATE]
  const width = node.widgets?.find((w) => w.name === 'width')
  const height = node.widgets?.find((w) => w.name === 'height')
  if (!state || !width || !height) return
  for (const w of [width, height]) {
    const callback = w.callback
    w.callback = function (...args) {
      const result = callback?.apply(this, args)
      state.model.resize(Number(width.value), Number(height.value))
      return result
    }
  }
  state.model.onChange((m) => {
    if (width.value !== m.width) width.value = m.width
    if (height.value !== m.height) height.value = m.height
  })
}

/** A preview fed by InstanceAssembleDrawLayout shows boxes already: not a useful background. */
function isLayoutOverlay(node) {
  try {
    return node?.getInputNode?.(0)?.comfyClass === DRAW_NODE_CLASS
  } catch {
    return false
  }
}

function editorNodes(graph) {
  const nodes = [...(graph?.nodes ?? [])]
  for (const sub of graph?.subgraphs?.values?.() ?? []) nodes.push(...sub.nodes)
  return nodes.filter((n) => n[STATE])
}

/** Uses the last image the graph produced as the background of its layout editors. */
function onExecuted({ detail }) {
  const image = detail?.output?.images?.[0]
  if (!image?.filename || !app.graph) return
  const source = app.graph.getNodeById?.(detail.display_node ?? detail.node)
  if (isLayoutOverlay(source)) return
  const targets = editorNodes(app.graph)
  if (!targets.length) return
  const params = new URLSearchParams({ filename: image.filename, subfolder: image.subfolder ?? '', type: image.type ?? 'output' })
  loadImage(api.apiURL(`/view?${params}`)).then(
    (img) => targets.forEach((n) => setBackground(n[STATE], img)),
    (err) => console.warn(`[InstanceAssemble] background image: ${err.message}`))
}

app.registerExtension({
  name: 'InstanceAssemble.LayoutEditor',

  setup() {
    loadStylesheet()
    api.addEventListener('executed', onExecuted)
    // Nodes 2.0 forwards every wheel over a node to the graph (capture phase, unless a focused element
    // asks otherwise). Stopping the event here, before that, leaves the browser's own scrolling.
    window.addEventListener('wheel', (e) => {
      if (wheelScrollsEditorPart(e)) e.stopPropagation()
    }, { capture: true })
  },

  getCustomWidgets() {
    return {
      [WIDGET_TYPE]: (node, inputName, inputData) => ({
        widget: createLayoutWidget(node, inputName, inputData),
        minWidth: 560,
        minHeight: 520,
      }),
    }
  },

  nodeCreated(node) {
    if (node.comfyClass !== NODE_CLASS) return
    keepSizeInSync(node)
    const onRemoved = node.onRemoved
    node.onRemoved = function (...args) {
      node[STATE]?.closeDialog?.()
      return onRemoved?.apply(this, args)
    }
    // The Vue node renderer of frontend 1.27 shows no DOM widgets; this button works in both renderers.
    const open = node.addWidget('button', 'open layout editor', null, () => openEditorDialog(node),
      { serialize: false, label: OPEN_BUTTON })
    open.label = OPEN_BUTTON
    open.serialize = false
  },
})
