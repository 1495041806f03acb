// Pure geometry for the InstanceAssemble layout editor: no DOM, no ComfyUI.
// Boxes are [x1, y1, x2, y2] in image pixels (x right, y down, x1 < x2, y1 < y2).

/** Side of a Flux/SD3 latent token in image pixels (8x VAE, 2x2 patches). */
export const TOKEN_GRID = 16

/** Smallest box side the editor creates, in image pixels. */
export const MIN_BOX_SIZE = 4

/** Resize handles, named by compass direction. */
export const HANDLES = ['nw', 'n', 'ne', 'e', 'se', 's', 'sw', 'w']

const clamp = (v, lo, hi) => Math.min(Math.max(v, lo), hi)

/** Orders the corners so that x1 <= x2 and y1 <= y2. */
export function normalizeBox([x1, y1, x2, y2]) {
  return [Math.min(x1, x2), Math.min(y1, y2), Math.max(x1, x2), Math.max(y1, y2)]
}

/** Rounds a box to whole pixels. */
export function roundBox(box) {
  return box.map((v) => Math.round(v))
}

/**
 * Clips a box to the image [0, width] x [0, height] and keeps it at least `minSize` wide and tall
 * (growing it inward from the image border when it would fall below).
 */
export function clampBox(box, width, height, minSize = MIN_BOX_SIZE) {
  let [x1, y1, x2, y2] = normalizeBox(box)
  const minW = Math.min(minSize, width)
  const minH = Math.min(minSize, height)
  x1 = clamp(x1, 0, width)
  x2 = clamp(x2, 0, width)
  y1 = clamp(y1, 0, height)
  y2 = clamp(y2, 0, height)
  if (x2 - x1 < minW) {
    x2 = Math.min(x1 + minW, width)
    x1 = x2 - minW
  }
  if (y2 - y1 < minH) {
    y2 = Math.min(y1 + minH, height)
    y1 = y2 - minH
  }
  return [x1, y1, x2, y2]
}

/** Snaps a coordinate to the nearest multiple of `grid`. */
export function snapValue(v, grid = TOKEN_GRID) {
  return Math.round(v / grid) * grid
}

/** Snaps all four edges to the grid, then clamps to the image. */
export function snapBox(box, width, height, grid = TOKEN_GRID) {
  return clampBox(box.map((v) => snapValue(v, grid)), width, height, grid)
}

/**
 * Moves a box by (dx, dy) without changing its size; it stops at the image border.
 * With `snap`, the top-left corner lands on the grid.
 */
export function moveBox(box, dx, dy, width, height, { snap = false, grid = TOKEN_GRID } = {}) {
  const [x1, y1, x2, y2] = normalizeBox(box)
  const w = Math.min(x2 - x1, width)
  const h = Math.min(y2 - y1, height)
  let nx = x1 + dx
  let ny = y1 + dy
  if (snap) {
    nx = snapValue(nx, grid)
    ny = snapValue(ny, grid)
  }
  nx = clamp(nx, 0, width - w)
  ny = clamp(ny, 0, height - h)
  return [nx, ny, nx + w, ny + h]
}

/**
 * Drags one handle of a box to image point (x, y). The opposite edges stay put; the box may flip
 * through itself (a drag past the opposite edge), is clipped to the image and keeps `minSize`.
 */
export function resizeBox(box, handle, x, y, width, height,
  { snap = false, grid = TOKEN_GRID, minSize = MIN_BOX_SIZE } = {}) {
  let [x1, y1, x2, y2] = normalizeBox(box)
  if (snap) {
    x = snapValue(x, grid)
    y = snapValue(y, grid)
  }
  x = clamp(x, 0, width)
  y = clamp(y, 0, height)
  if (handle.includes('w')) x1 = x
  if (handle.includes('e')) x2 = x
  if (handle.includes('n')) y1 = y
  if (handle.includes('s')) y2 = y
  return clampBox([x1, y1, x2, y2], width, height, snap ? Math.max(minSize, grid) : minSize)
}

/** The box spanned by a drag from (x0, y0) to (x1, y1), clipped to the image. */
export function boxFromDrag(x0, y0, x1, y1, width, height, opts = {}) {
  if (opts.snap) {
    x0 = snapValue(x0, opts.grid)
    y0 = snapValue(y0, opts.grid)
  }
  return resizeBox([x0, y0, x0, y0], 'se', x1, y1, width, height, opts)
}

/** Scales boxes from a (fromW x fromH) image to a (toW x toH) image. */
export function rescaleBox(box, fromW, fromH, toW, toH) {
  const sx = toW / fromW
  const sy = toH / fromH
  const [x1, y1, x2, y2] = box
  return [x1 * sx, y1 * sy, x2 * sx, y2 * sy]
}

/** True when image point (x, y) lies inside the box (edges included). */
export function containsPoint([x1, y1, x2, y2], x, y) {
  return x >= x1 && x <= x2 && y >= y1 && y <= y2
}

/**
 * Indices of the boxes under image point (x, y), topmost first. Later boxes are drawn on top, so
 * the topmost is the one with the highest index. `contains(box, x, y, index)` decides what is under
 * the point (a mask instance is under it only where its mask is); by default, the box.
 */
export function boxesAt(boxes, x, y, contains = containsPoint) {
  const hits = []
  for (let i = boxes.length - 1; i >= 0; i--) {
    if (contains(boxes[i], x, y, i)) hits.push(i)
  }
  return hits
}

/**
 * The box a click at (x, y) picks. A plain click takes the topmost box; with `cycle` (Alt+click),
 * a click on the currently selected box picks the next box below it, wrapping around, so repeated
 * clicks walk through every box under the cursor. Returns -1 on empty space.
 */
export function pickBox(boxes, x, y, { selected = -1, cycle = false, contains } = {}) {
  const hits = boxesAt(boxes, x, y, contains)
  if (hits.length === 0) return -1
  if (cycle) {
    const at = hits.indexOf(selected)
    if (at >= 0) return hits[(at + 1) % hits.length]
  }
  return hits[0]
}

/** Image-space positions of the eight resize handles. */
export function handlePoints([x1, y1, x2, y2]) {
  const mx = (x1 + x2) / 2
  const my = (y1 + y2) / 2
  return {
    nw: [x1, y1], n: [mx, y1], ne: [x2, y1], e: [x2, my],
    se: [x2, y2], s: [mx, y2], sw: [x1, y2], w: [x1, my],
  }
}

/**
 * The handle of `box` within `tolerance` image pixels of (x, y), or null. Corners win over edge
 * midpoints, so small boxes stay resizable diagonally.
 */
export function handleAt(box, x, y, tolerance) {
  const points = handlePoints(box)
  let best = null
  let bestDist = Infinity
  for (const name of ['nw', 'ne', 'se', 'sw', 'n', 'e', 's', 'w']) {
    const [hx, hy] = points[name]
    const d = Math.max(Math.abs(hx - x), Math.abs(hy - y))
    if (d <= tolerance && d < bestDist) {
      best = name
      bestDist = d
    }
  }
  return best
}

/** CSS cursor for a handle. */
export function handleCursor(handle) {
  return { nw: 'nwse-resize', se: 'nwse-resize', ne: 'nesw-resize', sw: 'nesw-resize',
    n: 'ns-resize', s: 'ns-resize', e: 'ew-resize', w: 'ew-resize' }[handle] ?? 'default'
}

/**
 * Where an image of (imageW x imageH) sits, letterboxed, inside a (viewW x viewH) view:
 * `scale` view pixels per image pixel and the view offset of the image's top-left corner.
 */
export function fitRect(viewW, viewH, imageW, imageH, padding = 0) {
  const availW = Math.max(viewW - 2 * padding, 1)
  const availH = Math.max(viewH - 2 * padding, 1)
  const scale = Math.min(availW / imageW, availH / imageH)
  const w = imageW * scale
  const h = imageH * scale
  return { scale, x: (viewW - w) / 2, y: (viewH - h) / 2, w, h }
}

/** View point -> image point for a `fitRect` result. */
export function viewToImage(fit, vx, vy) {
  return [(vx - fit.x) / fit.scale, (vy - fit.y) / fit.scale]
}

/** Image point -> view point for a `fitRect` result. */
export function imageToView(fit, ix, iy) {
  return [fit.x + ix * fit.scale, fit.y + iy * fit.scale]
}
