// The editor's document: image size, global prompt and boxes, with undo/redo. Pure (no DOM), so
// it runs under `node --test`. The saved form is the pack's canonical layout JSON; parsing other
// formats (official demo JSON, DenseLayout, COCO) is the server's job (POST /instanceassemble/parse_layout).

import { clampBox, moveBox, rescaleBox, roundBox } from './layout_geometry.js'
import { readRegion, regionBBox, regionJSON } from './layout_region.js'

export const LAYOUT_FORMAT = 'instanceassemble.layout'
export const LAYOUT_VERSION = 1
export const MAX_BOXES = 200
const HISTORY_LIMIT = 200

let nextId = 1

/**
 * A box of the document. `id` identifies it in the UI only and is never saved. Coordinates are kept as
 * given (an imported layout may have fractional ones); boxes drawn or edited here are whole pixels.
 * `region` (layout_region.js) is a mask instance's mask, or null: its shape and bbox (the mask's
 * bounding box) are read-only here, its texts are edited like any box's.
 */
function makeBox(bbox, category = '', caption = '', region = null) {
  return { id: nextId++, bbox: bbox.map(Number), category: String(category), caption: String(caption), region }
}

const copyBox = (b) => makeBox(b.bbox, b.category, b.caption, b.region)

/** The canonical JSON text of an empty layout. */
export function emptyLayoutJSON(width = 1024, height = 1024) {
  return JSON.stringify({ format: LAYOUT_FORMAT, version: LAYOUT_VERSION, width, height, prompt: '', boxes: [] })
}

/**
 * Reads the editor's own saved form: canonical layout JSON of this version (text or an already parsed
 * object), as the widget stores it. It checks the structure only (format, version, a positive size, a
 * list of [x1, y1, x2, y2] boxes) and throws an Error naming the field otherwise; the caller then hands
 * the text to the server's parser (other formats, other versions). What the node accepts (box bounds,
 * texts, the number of boxes) is decided by the server: on import (the parse route) and when it runs.
 */
export function readCanonical(source) {
  const data = typeof source === 'string' ? JSON.parse(source) : source
  if (!data || typeof data !== 'object' || data.format !== LAYOUT_FORMAT) {
    throw new Error(`format: expected "${LAYOUT_FORMAT}"`)
  }
  if (data.version !== LAYOUT_VERSION) throw new Error(`version: expected ${LAYOUT_VERSION}`)
  const width = Number(data.width)
  const height = Number(data.height)
  if (!(width > 0 && height > 0)) throw new Error('width/height: expected positive numbers')
  if (!Array.isArray(data.boxes)) throw new Error('boxes: expected a list')
  const boxes = data.boxes.map((b, i) => {
    if (!Array.isArray(b?.bbox) || b.bbox.length !== 4 || !b.bbox.every(Number.isFinite)) {
      throw new Error(`boxes[${i}].bbox: expected [x1, y1, x2, y2]`)
    }
    const region = b.region == null ? null : readRegion(b.region, `boxes[${i}].region`)
    return { bbox: b.bbox.map(Number), category: b.category ?? '', caption: b.caption ?? '', region }
  })
  const seed = Number.isInteger(data.seed) ? data.seed : null
  return { width, height, prompt: String(data.prompt ?? ''), boxes, seed }
}

export class LayoutModel {
  constructor({ width = 1024, height = 1024, prompt = '', boxes = [], seed = null } = {}) {
    this.width = width
    this.height = height
    this.prompt = prompt
    /** An imported layout's seed (canonical JSON `seed`); kept and saved, not edited here. */
    this.seed = seed
    this.boxes = boxes.map(copyBox)
    /** Index of the selected box, or -1. */
    this.selected = -1
    this.undoStack = []
    this.redoStack = []
    this.pending = null
    this.inChange = false
    this.listeners = new Set()
    this.json = null
  }

  static fromJSON(text) {
    return new LayoutModel(readCanonical(text))
  }

  // ----- saved form -----

  toObject() {
    const data = {
      format: LAYOUT_FORMAT,
      version: LAYOUT_VERSION,
      width: this.width,
      height: this.height,
      prompt: this.prompt,
      boxes: this.boxes.map((b) => {
        const box = { bbox: [...b.bbox], category: b.category, caption: b.caption }
        if (b.region) box.region = regionJSON(b.region)
        return box
      }),
    }
    if (this.seed !== null) data.seed = this.seed
    return data
  }

  /** The saved form as text; kept until the next change (the frontend reads the widget value often). */
  toJSON() {
    this.json ??= JSON.stringify(this.toObject())
    return this.json
  }

  /** Replaces the whole document (an import), as one undoable step unless `record` is false. */
  load(source, { record = true } = {}) {
    const data = readCanonical(source)
    const apply = () => {
      this.width = data.width
      this.height = data.height
      this.prompt = data.prompt
      this.seed = data.seed
      this.boxes = data.boxes.map(copyBox)
      this.selected = -1
    }
    if (record) {
      this.change(apply)
    } else {
      apply()
      this.emit()
    }
  }

  /** Replaces the whole document and forgets the history (a workflow load). */
  reset(source) {
    this.pending = null
    this.undoStack = []
    this.redoStack = []
    this.load(source, { record: false })
  }

  // ----- change notification -----

  onChange(fn) {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }

  /** Every change of the document ends here: it drops the saved text, then tells the listeners. */
  emit() {
    this.json = null
    for (const fn of this.listeners) fn(this)
  }

  // ----- history -----

  snapshot() {
    return {
      width: this.width,
      height: this.height,
      prompt: this.prompt,
      seed: this.seed,
      boxes: this.boxes.map((b) => ({ ...b, bbox: [...b.bbox] })),
      selected: this.selected,
    }
  }

  restore(s) {
    this.width = s.width
    this.height = s.height
    this.prompt = s.prompt
    this.seed = s.seed
    this.boxes = s.boxes.map((b) => ({ ...b, bbox: [...b.bbox] }))
    this.selected = Math.min(s.selected, this.boxes.length - 1)
  }

  static sameDocument(a, b) {
    return a.width === b.width && a.height === b.height && a.prompt === b.prompt && a.seed === b.seed &&
      a.boxes.length === b.boxes.length &&
      a.boxes.every((x, i) => {
        const y = b.boxes[i]
        return x.id === y.id && x.category === y.category && x.caption === y.caption && x.region === y.region &&
          x.bbox.every((v, k) => v === y.bbox[k])
      })
  }

  pushUndo(s) {
    this.undoStack.push(s)
    if (this.undoStack.length > HISTORY_LIMIT) this.undoStack.shift()
    this.redoStack = []
  }

  /** Runs `fn` as one undoable step (or as part of the enclosing step or `beginEdit` edit). */
  change(fn) {
    if (this.inChange) return fn()
    const before = this.pending ? null : this.snapshot()
    this.inChange = true
    let result
    try {
      result = fn()
    } finally {
      this.inChange = false
    }
    if (before && !LayoutModel.sameDocument(before, this)) this.pushUndo(before)
    this.emit()
    return result
  }

  /**
   * Starts an edit made of many small changes (a drag, typing in a field) that undo as one step.
   * Changes inside it go through `change` as usual; `endEdit` records the step if anything changed.
   */
  beginEdit() {
    if (!this.pending) this.pending = this.snapshot()
  }

  endEdit() {
    const before = this.pending
    this.pending = null
    if (before && !LayoutModel.sameDocument(before, this)) this.pushUndo(before)
  }

  get canUndo() {
    return this.undoStack.length > 0
  }

  get canRedo() {
    return this.redoStack.length > 0
  }

  undo() {
    this.endEdit()
    const s = this.undoStack.pop()
    if (!s) return false
    this.redoStack.push(this.snapshot())
    this.restore(s)
    this.emit()
    return true
  }

  redo() {
    this.endEdit()
    const s = this.redoStack.pop()
    if (!s) return false
    this.undoStack.push(this.snapshot())
    this.restore(s)
    this.emit()
    return true
  }

  // ----- selection (not a document change, not undoable) -----

  select(index) {
    const i = index >= 0 && index < this.boxes.length ? index : -1
    if (i === this.selected) return
    this.selected = i
    this.emit()
  }

  get selectedBox() {
    return this.boxes[this.selected] ?? null
  }

  /** How many boxes are mask instances. */
  get regionCount() {
    return this.boxes.filter((b) => b.region).length
  }

  // ----- edits -----

  /** A box clipped to the image, in whole pixels. */
  fit(bbox) {
    return roundBox(clampBox(bbox, this.width, this.height))
  }

  /** Adds a box (clamped to the image) on top and selects it. Returns its index, or -1 when full. */
  addBox(bbox, category = '', caption = '') {
    if (this.boxes.length >= MAX_BOXES) return -1
    return this.change(() => {
      this.boxes.push(makeBox(this.fit(bbox), category, caption))
      this.selected = this.boxes.length - 1
      return this.selected
    })
  }

  /** Moves or resizes a box; a mask instance's box stays where its mask is. */
  setBBox(index, bbox) {
    const box = this.boxes[index]
    if (!box || box.region) return
    this.change(() => {
      box.bbox = this.fit(bbox)
    })
  }

  setText(index, field, value) {
    const box = this.boxes[index]
    if (!box || (field !== 'category' && field !== 'caption')) return
    this.change(() => {
      box[field] = String(value)
    })
  }

  setPrompt(value) {
    this.change(() => {
      this.prompt = String(value)
    })
  }

  removeBox(index = this.selected) {
    if (!this.boxes[index]) return
    this.change(() => {
      this.boxes.splice(index, 1)
      this.selected = Math.min(index, this.boxes.length - 1)
    })
  }

  /**
   * Copies a box, offset by `offset` pixels (kept inside the image), on top; selects the copy. A mask
   * instance is not copied (its copy could not move off it).
   */
  duplicateBox(index = this.selected, offset = 16) {
    const box = this.boxes[index]
    if (!box || box.region || this.boxes.length >= MAX_BOXES) return -1
    return this.change(() => {
      const bbox = moveBox(box.bbox, offset, offset, this.width, this.height)
      this.boxes.push(makeBox(bbox, box.category, box.caption))
      this.selected = this.boxes.length - 1
      return this.selected
    })
  }

  /**
   * Moves a box in the drawing order (the list order). `to` is 'up' (one step towards the top),
   * 'down', 'top' or 'bottom'.
   */
  reorder(index, to) {
    const n = this.boxes.length
    if (!this.boxes[index]) return
    const target = { up: index + 1, down: index - 1, top: n - 1, bottom: 0 }[to]
    if (target === undefined || target < 0 || target >= n || target === index) return
    this.change(() => {
      const [box] = this.boxes.splice(index, 1)
      this.boxes.splice(target, 0, box)
      this.selected = target
    })
  }

  /**
   * Sets the image size; boxes scale proportionally. A mask stretches over the whole image, so a mask
   * instance's box becomes its mask's bounding box at the new size, as the server computes it.
   */
  resize(width, height) {
    if (!(width > 0 && height > 0) || (width === this.width && height === this.height)) return
    this.change(() => {
      for (const b of this.boxes) {
        b.bbox = (b.region && regionBBox(b.region, width, height)) ??
          roundBox(clampBox(rescaleBox(b.bbox, this.width, this.height, width, height), width, height))
      }
      this.width = width
      this.height = height
    })
  }

  clear() {
    this.change(() => {
      this.boxes = []
      this.selected = -1
    })
  }
}
