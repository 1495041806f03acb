// The drawing surface of the layout editor: a <canvas> that shows the image frame (with an optional
// background image), the boxes and the mask regions, and turns pointer drags into model edits.
// A mask instance is shown as its mask (filled) and its bbox (dashed); it can be selected, not moved.

import {
  TOKEN_GRID, boxFromDrag, containsPoint, fitRect, handleAt, handleCursor, handlePoints, moveBox,
  pickBox, resizeBox, viewToImage,
} from './layout_geometry.js'
import { boxColors } from './box_colors.js'
import { regionContains, regionRaster } from './layout_region.js'

const PADDING = 8
const HANDLE_PX = 4 // half side of a drawn handle, in view pixels
const GRAB_PX = 7 // how close to a handle a press must land, in view pixels
const DRAG_START_PX = 3 // a new box starts once the pointer moved this far
const LABEL_FONT = '12px sans-serif'
const REGION_DASH = [6, 4]

/** Per region, its mask painted in a box colour: region -> Map(css colour -> <canvas>). */
const regionImages = new WeakMap()

function regionImage(region, colors) {
  let byColor = regionImages.get(region)
  if (!byColor) regionImages.set(region, (byColor = new Map()))
  let image = byColor.get(colors.css)
  if (image) return image
  const raster = regionRaster(region)
  image = document.createElement('canvas')
  image.width = raster.width
  image.height = raster.height
  const ctx = image.getContext('2d')
  const pixels = ctx.createImageData(raster.width, raster.height)
  const [r, g, b] = colors.rgb
  for (let i = 0, p = 0; i < raster.data.length; i++, p += 4) {
    if (!raster.data[i]) continue
    pixels.data[p] = r
    pixels.data[p + 1] = g
    pixels.data[p + 2] = b
    pixels.data[p + 3] = 255
  }
  ctx.putImageData(pixels, 0, 0)
  byColor.set(colors.css, image)
  return image
}

export class LayoutCanvas {
  /**
   * @param {import('./layout_model.js').LayoutModel} model
   * @param {{ snap: () => boolean, drawOver?: () => boolean, onFocusRequest?: () => void }} options
   *   `snap` says whether drags snap to the token grid; `drawOver` whether every drag draws a new box,
   *   also over existing ones (the Draw tool; Shift+drag does it once); `onFocusRequest` is called
   *   when a press should take keyboard focus.
   */
  constructor(model, { snap = () => false, drawOver = () => false, onFocusRequest } = {}) {
    this.model = model
    this.snap = snap
    this.drawOver = drawOver
    this.onFocusRequest = onFocusRequest
    this.background = null
    this.drag = null
    this.fit = { scale: 1, x: 0, y: 0, w: 1, h: 1 }
    this.frameRequested = false

    this.element = document.createElement('canvas')
    this.element.className = 'ia-layout-canvas'
    this.ctx = this.element.getContext('2d')

    this.element.addEventListener('pointerdown', (e) => this.onPointerDown(e))
    this.element.addEventListener('pointermove', (e) => this.onPointerMove(e))
    this.element.addEventListener('pointerup', (e) => this.onPointerUp(e))
    this.element.addEventListener('pointercancel', (e) => this.onPointerUp(e))
    this.element.addEventListener('lostpointercapture', (e) => this.onPointerUp(e))

    this.resizeObserver = new ResizeObserver(() => this.requestDraw())
    this.resizeObserver.observe(this.element)
    this.unsubscribe = model.onChange(() => this.requestDraw())
  }

  /** Shows an image (an HTMLImageElement that has loaded) behind the boxes, or nothing for null. */
  setBackground(image) {
    this.background = image
    this.requestDraw()
  }

  dispose() {
    this.resizeObserver.disconnect()
    this.unsubscribe()
  }

  // ----- coordinates -----

  /** Pointer event -> image pixel coordinates. Works under the CSS scale ComfyUI applies when zooming. */
  eventToImage(e) {
    const rect = this.element.getBoundingClientRect()
    const sx = rect.width ? this.element.clientWidth / rect.width : 1
    const sy = rect.height ? this.element.clientHeight / rect.height : 1
    return viewToImage(this.currentFit(), (e.clientX - rect.left) * sx, (e.clientY - rect.top) * sy)
  }

  /** Image pixels -> client (page) coordinates; used by tests and tooling. */
  imageToClient(ix, iy) {
    const rect = this.element.getBoundingClientRect()
    const sx = this.element.clientWidth ? rect.width / this.element.clientWidth : 1
    const sy = this.element.clientHeight ? rect.height / this.element.clientHeight : 1
    const fit = this.currentFit()
    return [rect.left + (fit.x + ix * fit.scale) * sx, rect.top + (fit.y + iy * fit.scale) * sy]
  }

  /** Where the image frame sits in the canvas now (the canvas may have been resized since the last frame). */
  currentFit() {
    const { clientWidth, clientHeight } = this.element
    if (clientWidth && clientHeight) {
      this.fit = fitRect(clientWidth, clientHeight, this.model.width, this.model.height, PADDING)
    }
    return this.fit
  }

  // ----- pointer interaction -----

  onPointerDown(e) {
    if (e.button !== 0 || this.drag) return
    e.preventDefault()
    e.stopPropagation()
    this.onFocusRequest?.()
    const [x, y] = this.eventToImage(e)
    const { model } = this
    const forceDraw = e.shiftKey || this.drawOver()
    const handle = !forceDraw && this.handleUnder(x, y)
    const index = forceDraw || handle ? -1 : this.pick(x, y, { selected: model.selected, cycle: e.altKey })
    if (handle) {
      this.drag = { mode: 'resize', handle, index: model.selected, start: [x, y], box: [...model.selectedBox.bbox] }
    } else if (index >= 0) {
      model.select(index)
      const box = model.boxes[index]
      // A mask instance is selected only: its box is its mask's, which the editor does not change.
      this.drag = box.region ? { mode: 'none', index } : { mode: 'move', index, start: [x, y], box: [...box.bbox] }
      if (box.region) this.element.style.cursor = 'not-allowed'
    } else {
      model.select(-1)
      this.drag = { mode: 'draw', index: -1, start: [x, y], clientStart: [e.clientX, e.clientY] }
    }
    this.drag.pointerId = e.pointerId
    this.element.setPointerCapture(e.pointerId)
    model.beginEdit()
  }

  onPointerMove(e) {
    const drag = this.drag
    if (!drag) {
      this.updateCursor(e)
      return
    }
    if (e.pointerId !== drag.pointerId) return
    e.preventDefault()
    const [x, y] = this.eventToImage(e)
    const { model } = this
    const { width, height } = model
    const opts = { snap: this.snap(), grid: TOKEN_GRID }
    if (drag.mode === 'draw') {
      if (drag.index < 0) {
        const moved = Math.hypot(e.clientX - drag.clientStart[0], e.clientY - drag.clientStart[1])
        if (moved < DRAG_START_PX) return
        drag.index = model.addBox(boxFromDrag(drag.start[0], drag.start[1], x, y, width, height, opts))
        if (drag.index < 0) this.drag.mode = 'none' // the layout is full
        return
      }
      model.setBBox(drag.index, boxFromDrag(drag.start[0], drag.start[1], x, y, width, height, opts))
    } else if (drag.mode === 'move') {
      model.setBBox(drag.index, moveBox(drag.box, x - drag.start[0], y - drag.start[1], width, height, opts))
    } else if (drag.mode === 'resize') {
      model.setBBox(drag.index, resizeBox(drag.box, drag.handle, x, y, width, height, opts))
    }
  }

  onPointerUp(e) {
    const drag = this.drag
    if (!drag || e.pointerId !== drag.pointerId) return
    this.drag = null
    if (this.element.hasPointerCapture(e.pointerId)) this.element.releasePointerCapture(e.pointerId)
    this.model.endEdit()
    this.requestDraw()
  }

  /** The resize handle of the selected box at image point (x, y), or null; a mask instance has none. */
  handleUnder(x, y) {
    const selected = this.model.selectedBox
    if (!selected || selected.region) return null
    return handleAt(selected.bbox, x, y, GRAB_PX / this.currentFit().scale)
  }

  /** The box at image point (x, y) (`pickBox` options); a mask instance only where its mask is. */
  pick(x, y, options = {}) {
    const { model } = this
    const contains = (bbox, px, py, i) => {
      const { region } = model.boxes[i]
      return region ? regionContains(region, px, py, model.width, model.height) : containsPoint(bbox, px, py)
    }
    return pickBox(model.boxes.map((b) => b.bbox), x, y, { ...options, contains })
  }

  updateCursor(e) {
    const [x, y] = this.eventToImage(e)
    let cursor = 'crosshair'
    if (e.shiftKey || this.drawOver()) {
      this.element.style.cursor = cursor
      return
    }
    const handle = this.handleUnder(x, y)
    const index = handle ? -1 : this.pick(x, y)
    if (handle) cursor = handleCursor(handle)
    else if (index >= 0) cursor = this.model.boxes[index].region ? 'pointer' : 'move'
    this.element.style.cursor = cursor
  }

  // ----- drawing -----

  requestDraw() {
    if (this.frameRequested) return
    this.frameRequested = true
    requestAnimationFrame(() => {
      this.frameRequested = false
      this.draw()
    })
  }

  draw() {
    const canvas = this.element
    const cssW = canvas.clientWidth
    const cssH = canvas.clientHeight
    if (!cssW || !cssH) return
    const dpr = window.devicePixelRatio || 1
    if (canvas.width !== Math.round(cssW * dpr) || canvas.height !== Math.round(cssH * dpr)) {
      canvas.width = Math.round(cssW * dpr)
      canvas.height = Math.round(cssH * dpr)
    }
    const { model, ctx } = this
    const fit = this.currentFit()
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0)
    ctx.clearRect(0, 0, cssW, cssH)

    // image frame, in the theme's colours (layout_editor.css)
    const style = getComputedStyle(canvas)
    ctx.fillStyle = style.getPropertyValue('--ia-frame-fill').trim() || '#2a2a2a'
    ctx.fillRect(fit.x, fit.y, fit.w, fit.h)
    if (this.background) ctx.drawImage(this.background, fit.x, fit.y, fit.w, fit.h)
    if (this.snap()) this.drawGrid(fit)
    ctx.strokeStyle = style.getPropertyValue('--ia-frame-line').trim() || '#888'
    ctx.lineWidth = 1
    ctx.strokeRect(fit.x - 0.5, fit.y - 0.5, fit.w + 1, fit.h + 1)

    ctx.save()
    ctx.beginPath()
    ctx.rect(fit.x, fit.y, fit.w, fit.h)
    ctx.clip()
    model.boxes.forEach((box, i) => this.drawBox(box, i, i === model.selected))
    ctx.restore()
    if (model.selectedBox && !model.selectedBox.region) this.drawHandles(model.selectedBox.bbox)
  }

  drawGrid(fit) {
    const step = TOKEN_GRID * fit.scale
    if (step < 6) return
    const { ctx } = this
    ctx.save()
    ctx.strokeStyle = 'rgba(127, 127, 127, 0.25)'
    ctx.lineWidth = 1
    ctx.beginPath()
    for (let x = fit.x + step; x < fit.x + fit.w; x += step) {
      ctx.moveTo(Math.round(x) + 0.5, fit.y)
      ctx.lineTo(Math.round(x) + 0.5, fit.y + fit.h)
    }
    for (let y = fit.y + step; y < fit.y + fit.h; y += step) {
      ctx.moveTo(fit.x, Math.round(y) + 0.5)
      ctx.lineTo(fit.x + fit.w, Math.round(y) + 0.5)
    }
    ctx.stroke()
    ctx.restore()
  }

  viewRect([x1, y1, x2, y2]) {
    const { fit } = this
    return [fit.x + x1 * fit.scale, fit.y + y1 * fit.scale, (x2 - x1) * fit.scale, (y2 - y1) * fit.scale]
  }

  drawBox(box, index, selected) {
    const { ctx } = this
    const colors = boxColors(index)
    const [x, y, w, h] = this.viewRect(box.bbox)
    if (box.region) {
      this.drawRegion(box.region, colors, selected)
    } else {
      ctx.fillStyle = `rgba(${colors.rgb.join(', ')}, ${selected ? 0.25 : 0.12})`
      ctx.fillRect(x, y, w, h)
    }
    ctx.strokeStyle = colors.css
    ctx.lineWidth = selected ? 3 : 2
    if (box.region) ctx.setLineDash(REGION_DASH)
    ctx.strokeRect(x, y, w, h)
    ctx.setLineDash([])
    if (selected) {
      ctx.strokeStyle = '#ffffff'
      ctx.lineWidth = 1
      ctx.setLineDash([4, 3])
      ctx.strokeRect(x - 2.5, y - 2.5, w + 5, h + 5)
      ctx.setLineDash([])
    }
    this.drawLabel(`${index + 1} ${box.category || box.caption}`.trim(), x, y, w, colors)
  }

  /** A mask (it stretches over the whole image frame), in the box's colour. */
  drawRegion(region, colors, selected) {
    const { ctx, fit } = this
    const raster = regionRaster(region)
    if (!raster.width) return
    ctx.save()
    ctx.globalAlpha = selected ? 0.5 : 0.3
    ctx.imageSmoothingEnabled = false
    ctx.drawImage(regionImage(region, colors), fit.x + raster.left * fit.w, fit.y + raster.top * fit.h,
      (raster.right - raster.left) * fit.w, (raster.bottom - raster.top) * fit.h)
    ctx.restore()
  }

  drawLabel(text, x, y, w, colors) {
    const { ctx } = this
    ctx.font = LABEL_FONT
    const pad = 3
    const maxW = Math.max(w, 24)
    let label = text
    while (label.length > 1 && ctx.measureText(label).width + 2 * pad > maxW) label = label.slice(0, -1)
    if (label !== text) label = label.slice(0, -1) + '…'
    const tw = Math.min(ctx.measureText(label).width + 2 * pad, maxW)
    ctx.fillStyle = colors.css
    ctx.fillRect(x, y, tw, 16)
    ctx.fillStyle = colors.text
    ctx.textBaseline = 'middle'
    ctx.fillText(label, x + pad, y + 8)
  }

  drawHandles(bbox) {
    const { ctx, fit } = this
    ctx.fillStyle = '#ffffff'
    ctx.strokeStyle = '#000000'
    ctx.lineWidth = 1
    for (const [hx, hy] of Object.values(handlePoints(bbox))) {
      const vx = fit.x + hx * fit.scale
      const vy = fit.y + hy * fit.scale
      ctx.fillRect(vx - HANDLE_PX, vy - HANDLE_PX, 2 * HANDLE_PX, 2 * HANDLE_PX)
      ctx.strokeRect(vx - HANDLE_PX + 0.5, vy - HANDLE_PX + 0.5, 2 * HANDLE_PX - 1, 2 * HANDLE_PX - 1)
    }
  }
}
