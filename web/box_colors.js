// Box colours, shared by the editor (canvas, list) and, in Python, nodes/draw.py (InstanceAssembleDrawLayout):
// box i has hue (i * 137.508 + 10) % 360, saturation 0.85, lightness 0.55, and black or white label text,
// whichever reads better. tests/e2e/test_web_units.py checks that both sides give the same colours.

/** Hue of box `index` (golden-angle steps: neighbours get well separated colours). */
export function boxHue(index) {
  return (index * 137.508 + 10) % 360
}

/** HSL (h in degrees, s and l in 0..1) -> [r, g, b] in 0..255. */
export function hslToRgb(h, s, l) {
  const k = (n) => (n + h / 30) % 12
  const a = s * Math.min(l, 1 - l)
  const f = (n) => l - a * Math.max(-1, Math.min(k(n) - 3, Math.min(9 - k(n), 1)))
  return [f(0), f(8), f(4)].map((v) => Math.round(v * 255))
}

/** Relative luminance (WCAG) of an [r, g, b] colour in 0..255. */
export function luminance([r, g, b]) {
  const lin = (c) => {
    const v = c / 255
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4
  }
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)
}

/**
 * Colours for box `index`: `stroke` (the outline and label background, as an [r, g, b] triple and
 * a CSS string) and `text` (black or white, whichever reads better on the label background).
 */
export function boxColors(index) {
  const rgb = hslToRgb(boxHue(index), 0.85, 0.55)
  const css = `rgb(${rgb.join(', ')})`
  const text = luminance(rgb) > 0.3 ? '#000000' : '#ffffff'
  return { rgb, css, text }
}
