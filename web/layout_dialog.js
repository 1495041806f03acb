// A full-window dialog that hosts a second view of a node's layout (the "⤢" button). It is also the
// way to edit layouts under the Vue node renderer, which in frontend 1.27 does not show DOM widgets.

import { button, el } from './dom.js'

/**
 * Opens `content` (an element) in a modal dialog titled `title`. Returns a function that closes it;
 * `onClose` runs once when the dialog closes (Close button, Escape, or a click on the backdrop).
 * Escape reaches the dialog only when the content did not use it (the editor first deselects).
 */
export function openDialog(title, content, onClose) {
  let closed = false
  const onKeyDown = (e) => {
    if (e.key !== 'Escape' || e.defaultPrevented) return
    e.preventDefault()
    e.stopPropagation()
    close()
  }
  const close = () => {
    if (closed) return
    closed = true
    document.removeEventListener('keydown', onKeyDown)
    overlay.remove()
    onClose?.()
  }
  const dialog = el('div', { className: 'ia-dialog', attrs: { role: 'dialog', 'aria-modal': 'true' } }, [
    el('div', { className: 'ia-dialog-header' }, [
      el('span', { className: 'ia-dialog-title', text: title }),
      button('Close', 'Close the editor', close, 'ia-dialog-close'),
    ]),
    el('div', { className: 'ia-dialog-body' }, [content]),
  ])
  const overlay = el('div', { className: 'ia-dialog-overlay' }, [dialog])
  overlay.addEventListener('pointerdown', (e) => {
    if (e.target === overlay) close()
  })
  document.body.append(overlay)
  document.addEventListener('keydown', onKeyDown)
  return close
}
