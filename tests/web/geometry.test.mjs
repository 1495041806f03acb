// Unit tests for web/layout_geometry.js and web/box_colors.js. Run: node --test tests/web
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'

import {
  MIN_BOX_SIZE, TOKEN_GRID, boxFromDrag, boxesAt, clampBox, fitRect, handleAt, imageToView,
  moveBox, normalizeBox, pickBox, rescaleBox, resizeBox, snapBox, snapValue, viewToImage,
} from '../../web/layout_geometry.js'
import { boxColors, luminance } from '../../web/box_colors.js'

describe('clamping', () => {
  it('orders corners', () => {
    assert.deepEqual(normalizeBox([50, 60, 10, 20]), [10, 20, 50, 60])
  })

  it('clips a box to the image', () => {
    assert.deepEqual(clampBox([-10, -5, 120, 90], 100, 80), [0, 0, 100, 80])
    assert.deepEqual(clampBox([10, 10, 50, 50], 100, 80), [10, 10, 50, 50])
  })

  it('keeps a minimum size, growing inward at the border', () => {
    assert.deepEqual(clampBox([10, 10, 10, 10], 100, 80), [10, 10, 10 + MIN_BOX_SIZE, 10 + MIN_BOX_SIZE])
    assert.deepEqual(clampBox([99, 79, 100, 80], 100, 80), [100 - MIN_BOX_SIZE, 80 - MIN_BOX_SIZE, 100, 80])
    const outside = clampBox([200, 200, 300, 300], 100, 80)
    assert.deepEqual(outside, [100 - MIN_BOX_SIZE, 80 - MIN_BOX_SIZE, 100, 80])
  })

  it('moves without resizing and stops at the border', () => {
    assert.deepEqual(moveBox([10, 10, 30, 40], 5, 7, 100, 80), [15, 17, 35, 47])
    assert.deepEqual(moveBox([10, 10, 30, 40], -50, 500, 100, 80), [0, 50, 20, 80])
  })

  it('resizes by a handle, clipped to the image and flipping through the opposite edge', () => {
    assert.deepEqual(resizeBox([10, 10, 50, 50], 'se', 70, 60, 100, 80), [10, 10, 70, 60])
    assert.deepEqual(resizeBox([10, 10, 50, 50], 'se', 500, 500, 100, 80), [10, 10, 100, 80])
    assert.deepEqual(resizeBox([10, 10, 50, 50], 'n', 999, 30, 100, 80), [10, 30, 50, 50])
    assert.deepEqual(resizeBox([10, 10, 50, 50], 'w', 60, 0, 100, 80), [50, 10, 60, 50])
    assert.deepEqual(resizeBox([10, 10, 50, 50], 'nw', -20, -20, 100, 80), [0, 0, 50, 50])
  })

  it('draws a box from a drag in any direction', () => {
    assert.deepEqual(boxFromDrag(60, 50, 20, 10, 100, 80), [20, 10, 60, 50])
    assert.deepEqual(boxFromDrag(60, 50, 200, -10, 100, 80), [60, 0, 100, 50])
  })
})

describe('rescale on size change', () => {
  it('scales boxes proportionally', () => {
    assert.deepEqual(rescaleBox([100, 200, 300, 400], 1024, 1024, 512, 2048), [50, 400, 150, 800])
  })

  it('round-trips', () => {
    const box = [16, 32, 480, 500]
    const there = rescaleBox(box, 1024, 768, 768, 1024)
    assert.deepEqual(rescaleBox(there, 768, 1024, 1024, 768).map((v) => Math.round(v)), box)
  })
})

describe('hit-testing', () => {
  const boxes = [[0, 0, 50, 50], [25, 25, 75, 75], [60, 60, 90, 90]]

  it('lists the boxes under a point, topmost first', () => {
    assert.deepEqual(boxesAt(boxes, 30, 30), [1, 0])
    assert.deepEqual(boxesAt(boxes, 65, 65), [2, 1])
    assert.deepEqual(boxesAt(boxes, 95, 5), [])
  })

  it('picks the topmost box on a plain click', () => {
    assert.equal(pickBox(boxes, 30, 30, { selected: 1 }), 1)
    assert.equal(pickBox(boxes, 99, 99), -1)
  })

  it('cycles through overlapping boxes with the modifier', () => {
    let selected = pickBox(boxes, 30, 30)
    const seen = [selected]
    for (let i = 0; i < 3; i++) {
      selected = pickBox(boxes, 30, 30, { selected, cycle: true })
      seen.push(selected)
    }
    assert.deepEqual(seen, [1, 0, 1, 0])
    assert.equal(pickBox(boxes, 30, 30, { selected: 2, cycle: true }), 1) // selection elsewhere: topmost
  })

  it('finds handles within a tolerance, corners first', () => {
    const box = [10, 10, 50, 50]
    assert.equal(handleAt(box, 11, 9, 3), 'nw')
    assert.equal(handleAt(box, 30, 51, 3), 's')
    assert.equal(handleAt(box, 50, 30, 3), 'e')
    assert.equal(handleAt(box, 30, 30, 3), null)
    assert.equal(handleAt([10, 10, 12, 12], 12, 12, 3), 'se')
  })
})

describe('snapping', () => {
  it('snaps values to the 16 px token grid', () => {
    assert.equal(TOKEN_GRID, 16)
    assert.equal(snapValue(7), 0)
    assert.equal(snapValue(8), 16)
    assert.equal(snapValue(23), 16)
    assert.equal(snapValue(25), 32)
  })

  it('snaps boxes and keeps them at least one cell', () => {
    assert.deepEqual(snapBox([5, 9, 40, 41], 1024, 1024), [0, 16, 48, 48])
    assert.deepEqual(snapBox([5, 5, 7, 7], 1024, 1024), [0, 0, 16, 16])
  })

  it('snaps drags, moves and resizes when asked', () => {
    const opts = { snap: true }
    assert.deepEqual(boxFromDrag(3, 5, 61, 70, 1024, 1024, opts), [0, 0, 64, 64])
    assert.deepEqual(moveBox([0, 0, 40, 40], 21, 9, 1024, 1024, opts), [16, 16, 56, 56])
    assert.deepEqual(resizeBox([0, 0, 64, 64], 'e', 70, 0, 1024, 1024, opts), [0, 0, 64, 64])
    assert.deepEqual(resizeBox([0, 0, 64, 64], 'e', 2, 0, 1024, 1024, opts), [0, 0, 16, 64])
  })
})

describe('view mapping', () => {
  it('letterboxes the image and maps points both ways', () => {
    const fit = fitRect(400, 300, 1024, 512)
    assert.equal(fit.w, 400)
    assert.equal(fit.h, 200)
    assert.equal(fit.y, 50)
    assert.deepEqual(viewToImage(fit, ...imageToView(fit, 256, 128)), [256, 128])
  })
})

describe('colours', () => {
  it('gives neighbouring boxes distinct hues and readable label text', () => {
    const colors = Array.from({ length: 100 }, (_, i) => boxColors(i))
    for (let i = 1; i < colors.length; i++) assert.notDeepEqual(colors[i].rgb, colors[i - 1].rgb)
    for (const c of colors) {
      const text = c.text === '#000000' ? 0 : 1
      const lum = luminance(c.rgb)
      const contrast = text ? 1.05 / (lum + 0.05) : (lum + 0.05) / 0.05
      assert.ok(contrast >= 3, `contrast ${contrast} for ${c.css}`)
    }
  })
})
