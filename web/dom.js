// Tiny DOM helpers. Text always goes in through textContent / value, never as HTML.

/**
 * Creates an element. `props` may hold className, text (set as textContent), title, and any other
 * property assigned as is (value, type, tabIndex, ...); `dataset` and `attrs` set data-* and other
 * attributes; `on` maps event names to listeners.
 */
export function el(tag, props = {}, children = []) {
  const node = document.createElement(tag)
  const { text, dataset, attrs, on, ...rest } = props
  if (text !== undefined) node.textContent = String(text)
  Object.assign(node, rest)
  for (const [k, v] of Object.entries(dataset ?? {})) node.dataset[k] = v
  for (const [k, v] of Object.entries(attrs ?? {})) node.setAttribute(k, v)
  for (const [k, v] of Object.entries(on ?? {})) node.addEventListener(k, v)
  for (const child of children) if (child) node.append(child)
  return node
}

/** A small toolbar button. */
export function button(label, title, onClick, className = '') {
  return el('button', {
    type: 'button', className: `ia-btn ${className}`.trim(), text: label, title,
    on: { click: (e) => { e.preventDefault(); onClick(e) } },
  })
}

/**
 * Wires a text field to the model: focusing it starts one undoable edit, typing updates the model
 * live, leaving the field ends the edit.
 */
export function bindTextField(input, model, read, write) {
  input.value = read()
  input.addEventListener('focus', () => model.beginEdit())
  input.addEventListener('input', () => write(input.value))
  input.addEventListener('blur', () => model.endEdit())
  return () => {
    if (input.value !== read()) input.value = read()
  }
}
