// Mask regions of a layout (instances made by InstanceAssemble Layout from Masks), as the editor reads,
// shows and saves them. A region is `{ size: [height, width], counts: [...], threshold }`: a binary
// mask of its own size, stretched over the whole image, as COCO uncompressed RLE (column-major run
// lengths, starting with a run of 0s), the form instanceassemble_core/regions.py writes. The editor
// never changes a region: its shape decides the instance's tokens, so it is shown and saved as is.
// Pure (no DOM), so it runs under `node --test`.

/** Longest side of the raster a region is shown and hit-tested with (larger windows are sampled). */
export const RASTER_MAX_SIDE = 512

const rasters = new WeakMap()

const isWhole = (v) => Number.isInteger(v) && v >= 0

/**
 * Checks a region read from layout JSON and returns it frozen, with the threshold defaulted to 0.5
 * as the server does. Throws an Error naming `field` when it is not a region; the caller then lets
 * the server's parser explain (its message has the fix).
 */
export function readRegion(value, field) {
  const size = value?.size
  if (!Array.isArray(size) || size.length !== 2 || !size.every((v) => isWhole(v) && v > 0)) {
    throw new Error(`${field}.size: expected [height, width]`)
  }
  const counts = value.counts
  if (!Array.isArray(counts) || !counts.every(isWhole)) {
    throw new Error(`${field}.counts: expected run lengths`)
  }
  if (counts.reduce((a, b) => a + b, 0) !== size[0] * size[1]) {
    throw new Error(`${field}.counts: the run lengths must add up to height × width`)
  }
  const threshold = value.threshold ?? 0.5
  if (!(typeof threshold === 'number' && threshold > 0 && threshold <= 1)) {
    throw new Error(`${field}.threshold: expected a number in (0, 1]`)
  }
  return Object.freeze({ size: Object.freeze([...size]), counts: Object.freeze([...counts]), threshold })
}

/** The region as layout JSON writes it (key order as the server's `Region.to_dict`). */
export function regionJSON(region) {
  return { size: [...region.size], counts: [...region.counts], threshold: region.threshold }
}

/** The mask's extent in its own pixels, [col0, row0, col1, row1) (end exclusive), or null when empty. */
function maskExtent(region) {
  const [h] = region.size
  let rowMin = Infinity; let rowMax = -1; let colMin = Infinity; let colMax = -1
  let at = 0
  region.counts.forEach((run, i) => {
    if (i % 2 === 1 && run > 0) {
      const last = at + run - 1
      const [c0, c1] = [Math.floor(at / h), Math.floor(last / h)]
      // A run that continues into the next column covers the last row of one and the first of the next.
      const [r0, r1] = c0 === c1 ? [at % h, last % h] : [0, h - 1]
      rowMin = Math.min(rowMin, r0); rowMax = Math.max(rowMax, r1)
      colMin = Math.min(colMin, c0); colMax = Math.max(colMax, c1)
    }
    at += run
  })
  return colMax < 0 ? null : [colMin, rowMin, colMax + 1, rowMax + 1]
}

/**
 * The mask's bounding box in pixels of a `width` × `height` image, [x1, y1, x2, y2] (what the server
 * computes for the instance's bbox, `Region.bbox`), or null for an empty mask.
 */
export function regionBBox(region, width, height) {
  const extent = maskExtent(region)
  if (!extent) return null
  const [h, w] = region.size
  const sx = width / w
  const sy = height / h
  return [extent[0] * sx, extent[1] * sy, extent[2] * sx, extent[3] * sy]
}

/**
 * The part of the mask inside its bounding box, sampled (nearest) to at most RASTER_MAX_SIDE a side:
 * `{ width, height, data, left, top, right, bottom }`, data a row-major Uint8Array of 0/1 and the
 * edges the window's place in the image as fractions of its size (0..1); a window that fits is
 * the mask pixel for pixel. Computed once per region, straight from the runs, so a large mask is
 * never expanded in full. An empty mask gives an empty window.
 */
export function regionRaster(region) {
  const cached = rasters.get(region)
  if (cached) return cached
  const [h, w] = region.size
  const [c0, r0, c1, r1] = maskExtent(region) ?? [0, 0, 0, 0]
  const scale = Math.min(1, RASTER_MAX_SIDE / Math.max(c1 - c0, r1 - r0, 1))
  const rw = c1 > c0 ? Math.max(1, Math.round((c1 - c0) * scale)) : 0
  const rh = r1 > r0 ? Math.max(1, Math.round((r1 - r0) * scale)) : 0
  const data = new Uint8Array(rw * rh)
  const { counts } = region
  // Column by column, top to bottom, the sampled positions (column-major, like the runs) only grow,
  // so one pass over the runs finds the run of each.
  let run = 0
  let runEnd = counts[0] ?? 0
  for (let c = 0; c < rw; c++) {
    const column = (c0 + Math.floor(((c + 0.5) * (c1 - c0)) / rw)) * h
    for (let r = 0; r < rh; r++) {
      const p = column + r0 + Math.floor(((r + 0.5) * (r1 - r0)) / rh)
      while (p >= runEnd) runEnd += counts[++run]
      data[r * rw + c] = run % 2
    }
  }
  const raster = { width: rw, height: rh, data, left: c0 / w, top: r0 / h, right: c1 / w, bottom: r1 / h }
  rasters.set(region, raster)
  return raster
}

/** True when image point (x, y) of a `width` × `height` image lies on the region's mask. */
export function regionContains(region, x, y, width, height) {
  const raster = regionRaster(region)
  const c = Math.floor(((x / width - raster.left) / (raster.right - raster.left)) * raster.width)
  const r = Math.floor(((y / height - raster.top) / (raster.bottom - raster.top)) * raster.height)
  if (!(c >= 0 && r >= 0 && c < raster.width && r < raster.height)) return false
  return raster.data[r * raster.width + c] === 1
}
