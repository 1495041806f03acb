// The layout editor as a self-contained DOM element: toolbar, canvas, global prompt, box list and
// the JSON import/export panel. It knows nothing about ComfyUI; editor_extension.js plugs it into a node.

import { bindTextField, button, el } from './dom.js'
import { LayoutCanvas } from './layout_canvas.js'
import { moveBox } from './layout_geometry.js'
import { BoxList } from './layout_list.js'

export const SHORTCUTS = [
  ['Drag on empty canvas', 'draw a box'],
  ['Shift+drag, or the Draw tool (B)', 'draw a box over existing boxes'],
  ['Click / drag a box', 'select / move it'],
  ['Drag a white handle', 'resize the selected box'],
  ['Alt+click', 'cycle through overlapping boxes'],
  ['Delete / Backspace', 'delete the selected box'],
  ['Ctrl+D', 'duplicate the selected box'],
  ['] / [', 'bring forward / send backward'],
  ['Arrow keys (+Shift)', 'nudge by 1 px (16 px)'],
  ['Ctrl+Z / Ctrl+Shift+Z, Ctrl+Y', 'undo / redo'],
  ['G', 'toggle snapping to the 16 px token grid'],
  ['Escape', 'deselect, leave the Draw tool / a text field'],
  ['Drop an image on the canvas', 'use it as background'],
  ['Filled shape, dashed box', 'a mask region (Layout from Masks): selectable, texts editable, shape read-only'],
]

const count = (n, one, many) => `${n} ${n === 1 ? one : many}`

const TEXT_EDITING_KEYS = new Set(['z', 'y', 'a', 'c', 'v', 'x'])

const isTextField = (node) =>
  (node?.tagName === 'INPUT' && node.type === 'text' && !node.readOnly) || node?.tagName === 'TEXTAREA'

/** Marks the parts of the editor the mouse wheel scrolls (see `wheelScrollsEditorPart`). */
const WHEEL_SCROLLS = 'data-ia-wheel-scrolls'

/**
 * True when a wheel event should scroll the editor part under the mouse (the prompt, the box list,
 * the JSON box) rather than reach the page's handlers, which may zoom the graph instead.
 * Ctrl/Cmd+wheel (pinch zoom) and parts with nothing to scroll are left to the page.
 */
export function wheelScrollsEditorPart(e) {
  if (e.ctrlKey || e.metaKey) return false
  const part = e.target?.closest?.(`[${WHEEL_SCROLLS}]`)
  return !!part && part.scrollHeight > part.clientHeight
}

export class LayoutEditor {
  /**
   * @param {import('./layout_model.js').LayoutModel} model
   * @param {object} options
   * @param {(text: string, entry: string) => Promise<object>} options.importLayout  text in any
   *   supported format (and the entry of a DenseLayout list or COCO file, '' for none) -> canonical
   *   layout object; throws an Error whose message is shown to the user (`field` "image": the text
   *   holds several entries and one must be chosen).
   * @param {{ get: () => boolean, set: (v: boolean) => void }} [options.snapSetting]
   * @param {() => void} [options.onExpand]  opens the editor in a large dialog; no button when absent.
   * @param {(file: File) => void} [options.onImageDropped]  an image file was dropped on the canvas.
   * @param {() => void} [options.onBackgroundCleared]  the user removed the background image.
   */
  constructor(model, {
    importLayout, snapSetting, onExpand, onImageDropped, onBackgroundCleared,
  } = {}) {
    this.model = model
    this.importLayout = importLayout
    let snap = false
    this.snapSetting = snapSetting ?? { get: () => snap, set: (v) => { snap = v } }

    // Keyboard focus for the canvas goes to this invisible read-only input. ComfyUI (1.27) treats a
    // focused <input> as "typing": its graph-level Ctrl+Z and key shortcuts then stay out of the way.
    this.focusSink = el('input', {
      className: 'ia-focus-sink', readOnly: true, tabIndex: -1, attrs: { 'aria-label': 'layout canvas' },
    })
    this.drawOver = false
    this.canvas = new LayoutCanvas(model, {
      snap: () => this.snapSetting.get(),
      drawOver: () => this.drawOver,
      onFocusRequest: () => this.focusSink.focus({ preventScroll: true }),
    })
    this.list = new BoxList(model)

    const prompt = el('textarea', {
      className: 'ia-prompt', rows: 2, placeholder: 'Global prompt (the whole image)', spellcheck: false,
      attrs: { 'aria-label': 'global prompt' },
    })
    this.syncPrompt = bindTextField(prompt, model, () => model.prompt, (v) => model.setPrompt(v))

    this.snapBox = el('input', { type: 'checkbox', className: 'ia-snap', checked: this.snapSetting.get() })
    this.snapBox.addEventListener('change', () => this.setSnap(this.snapBox.checked))
    const toolbar = this.buildToolbar({ onExpand, onBackgroundCleared })
    this.io = this.buildImportExport()

    const canvasWrap = el('div', { className: 'ia-canvas-wrap' }, [this.focusSink, this.canvas.element])
    this.element = el('div', { className: 'ia-layout-editor' }, [
      toolbar,
      el('div', { className: 'ia-body' }, [
        canvasWrap,
        el('div', { className: 'ia-side' }, [prompt, this.list.element]),
      ]),
      this.io,
    ])
    this.element.addEventListener('keydown', (e) => this.onKeyDown(e))
    // After a button click, keyboard shortcuts should act on the layout again, not on the button
    // (unless the button moved focus to a text field itself, like "JSON").
    this.element.addEventListener('click', (e) => {
      if (e.target.closest('button, .ia-swatch') && !isTextField(document.activeElement)) {
        this.focusSink.focus({ preventScroll: true })
      }
    })
    for (const part of [prompt, this.list.element, this.jsonText]) part.setAttribute(WHEEL_SCROLLS, '')
    canvasWrap.addEventListener('dragover', (e) => this.onDragOver(e))
    canvasWrap.addEventListener('drop', (e) => this.onDrop(e))
    this.onImageDropped = onImageDropped

    this.unsubscribe = model.onChange(() => this.refresh())
    this.refresh()
  }

  buildToolbar({ onExpand, onBackgroundCleared }) {
    const { model } = this
    this.undoButton = button('↶', 'Undo (Ctrl+Z)', () => model.undo(), 'ia-undo')
    this.redoButton = button('↷', 'Redo (Ctrl+Shift+Z)', () => model.redo(), 'ia-redo')
    this.deleteButton = button('Delete', 'Delete the selected box (Del)', () => model.removeBox(), 'ia-delete')
    this.duplicateButton = button('Duplicate', 'Duplicate the selected box (Ctrl+D)', () => model.duplicateBox(), 'ia-duplicate')
    this.forwardButton = button('▲', 'Bring forward (])', () => model.reorder(model.selected, 'up'), 'ia-forward')
    this.backwardButton = button('▼', 'Send backward ([)', () => model.reorder(model.selected, 'down'), 'ia-backward')
    this.clearBackgroundButton = button('No image', 'Remove the background image', () => {
      this.setBackground(null)
      onBackgroundCleared?.()
    }, 'ia-clear-bg')
    this.clearBackgroundButton.hidden = true
    this.drawButton = button('▭ Draw', 'Draw over boxes: every drag draws a new box (B; Shift+drag once)',
      () => this.setDrawOver(!this.drawOver), 'ia-draw-over')
    this.drawButton.setAttribute('aria-pressed', 'false')
    this.status = el('span', { className: 'ia-status' })
    const help = el('span', {
      className: 'ia-help', text: '?',
      title: SHORTCUTS.map(([keys, what]) => `${keys}: ${what}`).join('\n'),
      attrs: { 'aria-label': 'keyboard shortcuts' },
    })
    return el('div', { className: 'ia-toolbar' }, [
      this.drawButton,
      el('span', { className: 'ia-sep' }),
      this.undoButton, this.redoButton,
      el('span', { className: 'ia-sep' }),
      this.duplicateButton, this.deleteButton, this.forwardButton, this.backwardButton,
      el('span', { className: 'ia-sep' }),
      el('label', { className: 'ia-snap-label', title: 'Snap to the 16 px token grid (G)' },
        [this.snapBox, el('span', { text: 'snap 16' })]),
      button('JSON', 'Import / export the layout as JSON', () => this.toggleIO(), 'ia-json-toggle'),
      this.clearBackgroundButton,
      onExpand ? button('⤢', 'Open in a large editor', () => onExpand(), 'ia-expand') : null,
      help,
      this.status,
    ])
  }

  buildImportExport() {
    this.jsonText = el('textarea', {
      className: 'ia-json', rows: 6, spellcheck: false,
      placeholder: 'Paste a layout here: official InstanceAssemble demo JSON, a DenseLayout record, COCO, or canonical JSON.',
      attrs: { 'aria-label': 'layout JSON' },
    })
    this.ioMessage = el('div', { className: 'ia-io-message', attrs: { role: 'status' } })
    this.entryField = el('input', {
      type: 'text', className: 'ia-entry', placeholder: 'entry', spellcheck: false,
      title: 'DenseLayout list / COCO file: the id or file name of the layout to import',
      attrs: { 'aria-label': 'entry to import' },
    })
    return el('div', { className: 'ia-io', hidden: true }, [
      this.jsonText,
      el('div', { className: 'ia-io-buttons' }, [
        this.entryField,
        button('Import', 'Replace the layout with the pasted JSON', () => this.runImport(), 'ia-import'),
        button('Export', 'Show the layout as canonical JSON and copy it', () => this.runExport(), 'ia-export'),
        this.ioMessage,
      ]),
    ])
  }

  dispose() {
    this.unsubscribe()
    this.canvas.dispose()
    this.list.dispose()
  }

  /** Shows a loaded image behind the boxes (null clears it). */
  setBackground(image) {
    this.canvas.setBackground(image)
    this.clearBackgroundButton.hidden = !image
  }

  refresh() {
    const { model } = this
    const has = model.selected >= 0
    const region = !!model.selectedBox?.region
    this.deleteButton.disabled = !has
    this.duplicateButton.disabled = !has || region
    this.forwardButton.disabled = !has || model.selected === model.boxes.length - 1
    this.backwardButton.disabled = !has || model.selected === 0
    this.undoButton.disabled = !model.canUndo
    this.redoButton.disabled = !model.canRedo
    const masks = model.regionCount
    this.status.textContent = [
      `${count(model.boxes.length, 'box', 'boxes')}${masks ? ` (${count(masks, 'mask', 'masks')})` : ''}`,
      `${model.width}×${model.height}`,
      region ? 'mask region: shape read-only' : '',
    ].filter(Boolean).join(' · ')
    this.syncPrompt()
  }

  /** The Draw tool: while on, a drag draws a new box even where boxes are. */
  setDrawOver(on) {
    this.drawOver = on
    this.drawButton.setAttribute('aria-pressed', String(on))
    this.drawButton.classList.toggle('ia-active', on)
  }

  setSnap(on) {
    this.snapSetting.set(on)
    this.snapBox.checked = on
    this.canvas.requestDraw()
  }

  // ----- keyboard -----

  onKeyDown(e) {
    const target = e.target
    const typing = isTextField(target)
    const mod = e.ctrlKey || e.metaKey
    const key = e.key.length === 1 ? e.key.toLowerCase() : e.key
    if (typing) {
      // Keep the field's own editing keys away from ComfyUI's shortcuts (Delete would delete the node,
      // Ctrl+Z would undo the graph); other shortcuts (Ctrl+S, Ctrl+Enter) still reach ComfyUI.
      if (e.key === 'Escape') this.focusSink.focus({ preventScroll: true })
      if (!mod || TEXT_EDITING_KEYS.has(key)) e.stopPropagation()
      return
    }
    const handled = this.handleShortcut(e, key, mod)
    if (handled || ['Delete', 'Backspace'].includes(e.key) || (mod && (key === 'z' || key === 'y'))) {
      e.preventDefault()
      e.stopPropagation()
    }
  }

  handleShortcut(e, key, mod) {
    const { model } = this
    const box = model.selectedBox
    if (mod && key === 'z') return e.shiftKey ? model.redo() : model.undo()
    if (mod && key === 'y') return model.redo()
    if (mod && key === 'd') return model.duplicateBox() >= 0
    if (mod || e.altKey) return false
    if (e.key === 'Delete' || e.key === 'Backspace') return model.removeBox(), true
    if (e.key === 'Escape') {
      if (model.selected < 0 && !this.drawOver) return false // nothing to leave: the dialog may close
      return model.select(-1), this.setDrawOver(false), true
    }
    if (key === 'g') return this.setSnap(!this.snapSetting.get()), true
    if (key === 'b') return this.setDrawOver(!this.drawOver), true
    if (key === ']') return model.reorder(model.selected, 'up'), true
    if (key === '[') return model.reorder(model.selected, 'down'), true
    const arrows = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] }
    if (arrows[e.key] && box) {
      const step = e.shiftKey ? 16 : 1
      const [dx, dy] = arrows[e.key]
      model.setBBox(model.selected, moveBox(box.bbox, dx * step, dy * step, model.width, model.height))
      return true
    }
    return false
  }

  // ----- background image drop -----

  onDragOver(e) {
    if (![...(e.dataTransfer?.types ?? [])].includes('Files')) return
    e.preventDefault()
    e.stopPropagation()
    e.dataTransfer.dropEffect = 'copy'
  }

  onDrop(e) {
    const file = [...(e.dataTransfer?.files ?? [])].find((f) => f.type.startsWith('image/'))
    if (!file) return
    // Keep ComfyUI's document-level drop handler from loading the image as a workflow.
    e.preventDefault()
    e.stopPropagation()
    this.onImageDropped?.(file)
  }

  // ----- import / export -----

  toggleIO(show = this.io.hidden) {
    this.io.hidden = !show
    if (show) this.jsonText.focus({ preventScroll: true })
  }

  setMessage(text, isError = false) {
    this.ioMessage.textContent = text
    this.ioMessage.classList.toggle('ia-error', isError)
  }

  async runImport() {
    const text = this.jsonText.value.trim()
    if (!text) return this.setMessage('Paste a layout first.', true)
    this.setMessage('Importing…')
    try {
      // Exactly as parsed: size and coordinates are not rounded, so the tokens each box covers stay
      // those the official code computes for the same file.
      const layout = await this.importLayout(text, this.entryField.value.trim())
      this.model.load(layout)
      const masks = this.model.regionCount
      const shown = masks ? `, ${masks} of them mask regions (shape read-only)` : ''
      this.setMessage(`Imported ${count(this.model.boxes.length, 'box', 'boxes')}${shown} (${layout.width}×${layout.height}).`)
    } catch (err) {
      this.setMessage(String(err?.message ?? err), true)
      if (err?.field === 'image') this.entryField.focus({ preventScroll: true })
    }
  }

  async runExport() {
    const text = JSON.stringify(this.model.toObject(), null, 2)
    this.jsonText.value = text
    try {
      await navigator.clipboard.writeText(text)
      this.setMessage('Copied to the clipboard.')
    } catch {
      this.jsonText.select()
      this.setMessage('Clipboard unavailable: the JSON is selected above, copy it with Ctrl+C.')
    }
  }
}
