// Unit tests for web/layout_region.js and mask instances in web/layout_model.js. Run: node --test tests/web
// (tests/e2e/test_web_units.py also checks the bounding boxes and rasters against the server's Region.)
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'

import { LayoutModel, readCanonical } from '../../web/layout_model.js'
import {
  RASTER_MAX_SIDE, readRegion, regionBBox, regionContains, regionJSON, regionRaster,
} from '../../web/layout_region.js'

/** COCO RLE (column-major, starting with 0s) of a row-major 0/1 array [h * w]. */
function encode(bits, h, w) {
  const counts = []
  let value = 0
  let run = 0
  for (let c = 0; c < w; c++) {
    for (let r = 0; r < h; r++) {
      if (bits[r * w + c] !== value) {
        counts.push(run)
        value = 1 - value
        run = 0
      }
      run++
    }
  }
  counts.push(run)
  return counts
}

// An L shape in a 4 x 6 mask: rows 1-2 of column 1, row 2 of columns 1-3.
const L_BITS = [
  0, 0, 0, 0, 0, 0,
  0, 1, 0, 0, 0, 0,
  0, 1, 1, 1, 0, 0,
  0, 0, 0, 0, 0, 0,
]
const L_REGION = { size: [4, 6], counts: encode(L_BITS, 4, 6), threshold: 0.25 }

const layoutWith = (boxes) => ({ format: 'instanceassemble.layout', version: 1, width: 600, height: 400, prompt: 'p', boxes })
const maskBox = { bbox: [100, 100, 400, 300], category: 'sofa', caption: 'an L-shaped sofa', region: L_REGION }

describe('regions', () => {
  it('reads what the server writes and refuses anything else, naming the field', () => {
    const region = readRegion(L_REGION, 'boxes[0].region')
    assert.deepEqual(regionJSON(region), L_REGION)
    assert.equal(readRegion({ size: [1, 1], counts: [0, 1] }, 'r').threshold, 0.5)
    const bad = [
      [{ size: [4], counts: [24] }, /r\.size/],
      [{ size: [0, 6], counts: [] }, /r\.size/],
      [{ size: [4, 6], counts: [3, -1, 22] }, /r\.counts/],
      [{ size: [4, 6], counts: [3, 1.5, 19.5] }, /r\.counts/],
      [{ size: [4, 6], counts: [3, 4] }, /add up/],
      [{ size: [4, 6], counts: [24], threshold: 0 }, /r\.threshold/],
      [{ size: [4, 6], counts: [24], threshold: '0.5' }, /r\.threshold/],
      ['mask', /r\.size/],
    ]
    for (const [value, message] of bad) assert.throws(() => readRegion(value, 'r'), message)
  })

  it('has the bounding box of its mask, at any image size', () => {
    const region = readRegion(L_REGION, 'r')
    assert.deepEqual(regionBBox(region, 6, 4), [1, 1, 4, 3])
    assert.deepEqual(regionBBox(region, 600, 400), [100, 100, 400, 300])
    assert.deepEqual(regionBBox(region, 1200, 400), [200, 100, 800, 300])
    assert.equal(regionBBox(readRegion({ size: [2, 2], counts: [4] }, 'r'), 10, 10), null)
    // a run through a column's end and the next column's start spans all rows
    const wrap = readRegion({ size: [3, 3], counts: [2, 2, 5] }, 'r')
    assert.deepEqual(regionBBox(wrap, 3, 3), [0, 0, 2, 3])
  })

  it('rasters its bounding box window: a small one pixel for pixel, a large one sampled', () => {
    const small = regionRaster(readRegion(L_REGION, 'r'))
    assert.deepEqual([small.width, small.height], [3, 2])
    assert.deepEqual([...small.data], [1, 0, 0, 1, 1, 1])
    assert.deepEqual([small.left, small.top, small.right, small.bottom], [1 / 6, 1 / 4, 4 / 6, 3 / 4])
    const side = 2 * RASTER_MAX_SIDE
    const half = side / 2
    // the top-left quadrant and the bottom-right pixel: the window is the whole mask, sampled 1 in 2
    const bits = Array.from({ length: side * side }, (_, i) => {
      const [r, c] = [Math.floor(i / side), i % side]
      return Number((r < half && c < half) || (r === side - 1 && c === side - 1))
    })
    const large = regionRaster(readRegion({ size: [side, side], counts: encode(bits, side, side) }, 'r'))
    const n = RASTER_MAX_SIDE
    assert.deepEqual([large.width, large.height, large.left, large.top, large.right, large.bottom], [n, n, 0, 0, 1, 1])
    const expected = Array.from({ length: n * n }, (_, i) => {
      const [r, c] = [Math.floor(i / n), i % n]
      return Number((r < n / 2 && c < n / 2) || (r === n - 1 && c === n - 1))
    })
    assert.deepEqual([...large.data], expected)
    // a thin window keeps at least one raster pixel a side
    const thin = regionRaster(readRegion({ size: [1, side], counts: [0, side] }, 'r'))
    assert.deepEqual([thin.width, thin.height], [n, 1])
    const empty = regionRaster(readRegion({ size: [2, 2], counts: [4] }, 'r'))
    assert.deepEqual([empty.width, empty.height], [0, 0])
    assert.ok(!regionContains(readRegion({ size: [2, 2], counts: [4] }, 'r'), 1, 1, 2, 2))
  })

  it('hit-tests its mask, not its box', () => {
    const region = readRegion(L_REGION, 'r')
    assert.ok(regionContains(region, 150, 150, 600, 400)) // the L's upright
    assert.ok(regionContains(region, 350, 250, 600, 400)) // its foot
    assert.ok(!regionContains(region, 350, 150, 600, 400)) // inside the box, off the mask
    assert.ok(!regionContains(region, -1, 150, 600, 400))
  })
})

describe('mask instances in the document', () => {
  it('load and save their region unchanged', () => {
    const model = new LayoutModel(readCanonical(layoutWith([maskBox, { bbox: [0, 0, 50, 50], category: 'cup', caption: '' }])))
    assert.ok(Object.isFrozen(model.boxes[0].region))
    assert.equal(model.boxes[1].region, null)
    const saved = JSON.parse(model.toJSON())
    assert.deepEqual(saved.boxes[0], maskBox)
    assert.ok(!('region' in saved.boxes[1]))
    assert.throws(() => readCanonical(layoutWith([{ ...maskBox, region: { size: [4, 6], counts: [1] } }])),
      /boxes\[0\]\.region\.counts/)
  })

  it('cannot be moved, resized or duplicated; texts, order and deletion work as for boxes', () => {
    const model = new LayoutModel(readCanonical(layoutWith([maskBox, { bbox: [0, 0, 50, 50], category: 'cup', caption: '' }])))
    model.setBBox(0, [0, 0, 10, 10])
    assert.deepEqual(model.boxes[0].bbox, [100, 100, 400, 300])
    assert.equal(model.duplicateBox(0), -1)
    assert.equal(model.boxes.length, 2)
    assert.ok(!model.canUndo)
    model.setText(0, 'caption', 'a red sofa')
    model.reorder(0, 'top')
    assert.equal(model.boxes[1].caption, 'a red sofa')
    assert.deepEqual(JSON.parse(model.toJSON()).boxes[1].region, L_REGION)
    model.undo()
    model.undo()
    assert.equal(model.boxes[0].caption, 'an L-shaped sofa')
    assert.equal(model.boxes[0].region, model.boxes[0].region)
    model.removeBox(0)
    assert.equal(model.boxes.length, 1)
    model.undo()
    assert.deepEqual(JSON.parse(model.toJSON()).boxes[0], maskBox)
  })

  it('take their mask\'s bounding box when the image is resized', () => {
    const model = new LayoutModel(readCanonical(layoutWith([maskBox, { bbox: [0, 0, 50, 50], category: 'cup', caption: '' }])))
    model.resize(1000, 700)
    assert.deepEqual(model.boxes[0].bbox, regionBBox(model.boxes[0].region, 1000, 700))
    assert.deepEqual(model.boxes[0].bbox, [1000 / 6, 175, 4 * (1000 / 6), 525])
    assert.deepEqual(model.boxes[1].bbox, [0, 0, 83, 88]) // a box is rescaled and rounded, as before
    model.resize(600, 400)
    assert.deepEqual(model.boxes[0].bbox, [100, 100, 400, 300])
  })
})
