// Unit tests for web/layout_model.js (document, canonical JSON, undo/redo). Run: node --test tests/web
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'

import { LayoutModel, MAX_BOXES, emptyLayoutJSON, readCanonical } from '../../web/layout_model.js'

const sample = () => new LayoutModel({
  width: 1024, height: 512, prompt: 'a park',
  boxes: [
    { bbox: [0, 0, 100, 100], category: 'dog', caption: 'a brown dog' },
    { bbox: [200, 100, 400, 300], category: 'cat', caption: '<img src=x onerror=alert(1)>' },
  ],
})

describe('canonical JSON', () => {
  it('round-trips', () => {
    const model = sample()
    const again = LayoutModel.fromJSON(model.toJSON())
    assert.equal(again.toJSON(), model.toJSON())
    const data = JSON.parse(model.toJSON())
    assert.equal(data.format, 'instanceassemble.layout')
    assert.equal(data.version, 1)
    assert.deepEqual(data.boxes[1], { bbox: [200, 100, 400, 300], category: 'cat', caption: '<img src=x onerror=alert(1)>' })
    assert.ok(!('id' in data.boxes[0]))
  })

  it('keeps loaded coordinates and size exactly; drawn boxes are whole pixels', () => {
    const model = new LayoutModel()
    model.load({ format: 'instanceassemble.layout', version: 1, width: 1500, height: 1000, prompt: '',
      boxes: [{ bbox: [10.25, 20.5, 300.75, 999.9], category: 'a', caption: '' }] })
    assert.deepEqual([model.width, model.height], [1500, 1000])
    assert.deepEqual(model.boxes[0].bbox, [10.25, 20.5, 300.75, 999.9])
    model.addBox([1.4, 2.6, 100.2, 200.7])
    assert.deepEqual(model.boxes[1].bbox, [1, 3, 100, 201])
  })

  it('saves text that follows every change: edits, typing, undo, redo and loads', () => {
    const model = sample()
    const saved = () => JSON.parse(model.toJSON())
    const first = model.toJSON()
    assert.equal(model.toJSON(), first)
    model.setText(0, 'caption', 'a black dog')
    assert.equal(saved().boxes[0].caption, 'a black dog')
    model.beginEdit()
    model.setBBox(1, [10, 10, 60, 60])
    assert.deepEqual(saved().boxes[1].bbox, [10, 10, 60, 60])
    model.endEdit()
    model.undo()
    assert.deepEqual(saved().boxes[1].bbox, [200, 100, 400, 300])
    model.undo()
    assert.equal(model.toJSON(), first)
    model.redo()
    assert.equal(saved().boxes[0].caption, 'a black dog')
    model.reset(emptyLayoutJSON(640, 480))
    assert.deepEqual([saved().width, saved().boxes], [640, []])
  })

  it('has an empty default', () => {
    const empty = readCanonical(emptyLayoutJSON())
    assert.deepEqual(empty, { width: 1024, height: 1024, prompt: '', boxes: [], seed: null })
  })

  it('keeps an imported seed', () => {
    const model = LayoutModel.fromJSON({ ...JSON.parse(emptyLayoutJSON()), seed: 42 })
    assert.equal(JSON.parse(model.toJSON()).seed, 42)
    assert.ok(!('seed' in JSON.parse(sample().toJSON())))
  })

  it('rejects other formats (they go through the server parser)', () => {
    assert.throws(() => readCanonical('{"prompt": "x", "annos": []}'), /format/)
    assert.throws(() => readCanonical({ format: 'instanceassemble.layout', version: 1, width: 1, height: 1, boxes: [{ bbox: [1, 2] }] }), /boxes\[0\]\.bbox/)
    assert.throws(() => readCanonical({ format: 'instanceassemble.layout', version: 2, width: 1, height: 1, boxes: [] }), /version/)
    assert.throws(() => readCanonical({ format: 'instanceassemble.layout', width: 1, height: 1, boxes: [] }), /version/)
  })
})

describe('edits', () => {
  it('adds clamped, whole-pixel boxes and selects them', () => {
    const model = sample()
    const i = model.addBox([900.4, 400.6, 1200, 700], 'tree', '')
    assert.equal(i, 2)
    assert.equal(model.selected, 2)
    assert.deepEqual(model.boxes[2].bbox, [900, 401, 1024, 512])
  })

  it('rescales boxes when the image size changes', () => {
    const model = sample()
    model.resize(512, 1024)
    assert.deepEqual(model.boxes[1].bbox, [100, 200, 200, 600])
    assert.equal(model.width, 512)
    model.undo()
    assert.deepEqual(model.boxes[1].bbox, [200, 100, 400, 300])
    assert.equal(model.width, 1024)
  })

  it('deletes, duplicates and reorders', () => {
    const model = sample()
    model.select(0)
    assert.equal(model.duplicateBox(), 2)
    assert.deepEqual(model.boxes[2].bbox, [16, 16, 116, 116])
    assert.equal(model.boxes[2].caption, 'a brown dog')
    model.reorder(2, 'bottom')
    assert.deepEqual(model.boxes.map((b) => b.bbox[0]), [16, 0, 200])
    assert.equal(model.selected, 0)
    model.reorder(0, 'up')
    assert.deepEqual(model.boxes.map((b) => b.bbox[0]), [0, 16, 200])
    model.removeBox(1)
    assert.deepEqual(model.boxes.map((b) => b.bbox[0]), [0, 200])
  })

  it('stops at the box limit', () => {
    const model = new LayoutModel()
    for (let i = 0; i < MAX_BOXES; i++) assert.equal(model.addBox([i, i, i + 10, i + 10]), i)
    assert.equal(model.addBox([0, 0, 10, 10]), -1)
    assert.equal(model.boxes.length, MAX_BOXES)
  })
})

describe('undo / redo', () => {
  it('undoes and redoes single steps', () => {
    const model = sample()
    model.addBox([10, 10, 20, 20])
    model.setText(2, 'caption', 'x')
    model.removeBox(0)
    assert.equal(model.boxes.length, 2)
    model.undo()
    assert.equal(model.boxes.length, 3)
    model.undo()
    assert.equal(model.boxes[2].caption, '')
    model.redo()
    assert.equal(model.boxes[2].caption, 'x')
    model.undo()
    model.undo()
    assert.equal(model.boxes.length, 2)
    assert.equal(model.undo(), false)
    model.addBox([1, 1, 9, 9])
    assert.equal(model.redo(), false, 'a new edit clears the redo stack')
  })

  it('groups a drag or a typing session into one step', () => {
    const model = sample()
    model.beginEdit()
    for (let x = 0; x < 50; x += 5) model.setBBox(0, [x, 0, x + 100, 100])
    model.endEdit()
    model.beginEdit()
    for (const text of ['a', 'a r', 'a re', 'a red dog']) model.setText(0, 'caption', text)
    model.endEdit()
    assert.equal(model.undoStack.length, 2)
    model.undo()
    assert.equal(model.boxes[0].caption, 'a brown dog')
    assert.deepEqual(model.boxes[0].bbox, [45, 0, 145, 100])
    model.undo()
    assert.deepEqual(model.boxes[0].bbox, [0, 0, 100, 100])
  })

  it('records nothing for an edit that changed nothing, or for selection', () => {
    const model = sample()
    model.beginEdit()
    model.endEdit()
    model.select(1)
    model.setBBox(1, [200, 100, 400, 300])
    assert.equal(model.canUndo, false)
  })

  it('records an import (a nested change) as one step; reset forgets history', () => {
    const model = sample()
    model.change(() => {
      model.load({ format: 'instanceassemble.layout', version: 1, width: 500, height: 500, prompt: 'p', boxes: [{ bbox: [0, 0, 250, 250] }] }, { record: false })
      model.resize(1000, 1000)
    })
    assert.deepEqual(model.boxes[0].bbox, [0, 0, 500, 500])
    assert.equal(model.undoStack.length, 1)
    model.undo()
    assert.equal(model.prompt, 'a park')
    model.reset(emptyLayoutJSON(512, 512))
    assert.equal(model.canUndo || model.canRedo, false)
    assert.equal(model.width, 512)
  })

  it('notifies listeners on every change', () => {
    const model = sample()
    let calls = 0
    const off = model.onChange(() => calls++)
    model.addBox([0, 0, 10, 10])
    model.undo()
    model.select(0)
    off()
    model.addBox([0, 0, 10, 10])
    assert.equal(calls, 3)
  })
})
