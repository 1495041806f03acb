// The box list next to the canvas: one row per box with its colour, category and caption (a mask
// instance's row says "mask"). Rows are rebuilt only when boxes are added, removed or reordered, so
// typing never loses focus.

import { bindTextField, el } from './dom.js'
import { boxColors } from './box_colors.js'

function regionTitle(box, index) {
  const [h, w] = box.region.size
  return `box ${index + 1}: mask region (${w}×${h} mask, threshold ${box.region.threshold}; ` +
    `bbox [${box.bbox.join(', ')}]). Its shape comes from Layout from Masks and is read-only here.`
}

export class BoxList {
  constructor(model) {
    this.model = model
    this.rows = [] // { id, element, category, caption, swatch }
    this.lastSelected = -1
    this.element = el('div', { className: 'ia-box-list', attrs: { role: 'listbox' } })
    this.empty = el('div', { className: 'ia-empty', text: 'Drag on the canvas to draw a box.' })
    this.element.append(this.empty)
    this.unsubscribe = model.onChange(() => this.render())
    this.render()
  }

  dispose() {
    this.unsubscribe()
  }

  indexOf(id) {
    return this.model.boxes.findIndex((b) => b.id === id)
  }

  buildRow(box) {
    const id = box.id
    const at = () => this.indexOf(id)
    const field = (name, placeholder) => {
      const input = el('input', {
        type: 'text', className: `ia-${name}`, placeholder, spellcheck: false,
        attrs: { 'aria-label': `${name} of box` },
      })
      const sync = bindTextField(input, this.model,
        () => this.model.boxes[at()]?.[name] ?? '',
        (value) => this.model.setText(at(), name, value))
      input.addEventListener('focus', () => this.model.select(at()))
      return { input, sync }
    }
    const category = field('category', 'category')
    const caption = field('caption', 'caption: what is in this box')
    const swatch = el('span', { className: 'ia-swatch' })
    const remove = el('button', {
      type: 'button', className: 'ia-btn ia-row-delete', text: '×', title: 'Delete this box',
      on: { click: (e) => { e.stopPropagation(); this.model.removeBox(at()) } },
    })
    const element = el('div', {
      className: box.region ? 'ia-box-row ia-region' : 'ia-box-row', dataset: { boxId: String(id) }, attrs: { role: 'option' },
      on: { pointerdown: (e) => { if (e.target === element || e.target === swatch) this.model.select(at()) } },
    }, [swatch, category.input, remove, caption.input])
    return { id, index: -1, element, swatch, category, caption }
  }

  render() {
    const { model } = this
    const ids = model.boxes.map((b) => b.id)
    if (ids.length !== this.rows.length || ids.some((id, i) => this.rows[i].id !== id)) this.rebuild()
    model.boxes.forEach((box, i) => {
      const row = this.rows[i]
      if (row.index !== i) {
        // Colour and number follow the position in the drawing order.
        row.index = i
        const colors = boxColors(i)
        row.swatch.textContent = box.region ? `${i + 1} mask` : String(i + 1)
        row.swatch.style.background = colors.css
        row.swatch.style.color = colors.text
      }
      const title = box.region ? regionTitle(box, i) : `box ${i + 1}: [${box.bbox.join(', ')}]`
      if (row.swatch.title !== title) row.swatch.title = title
      row.category.sync()
      row.caption.sync()
      // The node refuses a box with neither text; flag it while drawing.
      row.element.classList.toggle('ia-missing-text', !box.category.trim() && !box.caption.trim())
      row.element.classList.toggle('ia-selected', i === model.selected)
      row.element.setAttribute('aria-selected', String(i === model.selected))
    })
    this.empty.hidden = model.boxes.length > 0
    if (model.selected !== this.lastSelected) {
      this.lastSelected = model.selected
      this.scrollToSelected()
    }
  }

  rebuild() {
    const focused = this.rows.find((r) => r.element.contains(document.activeElement))
    const focusedField = focused && (focused.caption.input === document.activeElement ? 'caption' : 'category')
    const old = new Map(this.rows.map((r) => [r.id, r]))
    this.rows = this.model.boxes.map((b) => old.get(b.id) ?? this.buildRow(b))
    this.element.replaceChildren(this.empty, ...this.rows.map((r) => r.element))
    if (focused && this.rows.includes(focused)) focused[focusedField].input.focus({ preventScroll: true })
  }

  scrollToSelected() {
    const row = this.rows[this.model.selected]
    if (!row) return
    const list = this.element // position: relative, so it is the rows' offsetParent
    const top = row.element.offsetTop
    const bottom = top + row.element.offsetHeight
    if (top < list.scrollTop) list.scrollTop = top
    else if (bottom > list.scrollTop + list.clientHeight) list.scrollTop = bottom - list.clientHeight
  }
}
