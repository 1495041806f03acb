// ComfyUI frontend extension: when a workflow opens, names the InstanceAssemble weights it needs that the
// server does not have, with the download links the workflow lists in the loader's `properties.models`
// (name, url, directory: the format ComfyUI's missing-models dialog reads). That dialog only checks
// combo values that are model files; the loader's value is a folder ("flux", "sd3"), so it says nothing.

import { app } from '../../scripts/app.js'

const LOADER_CLASS = 'InstanceAssembleLoader'
const WEIGHTS_FOLDER = 'models/instanceassemble'

function comboValues(widget) {
  const values = widget?.options?.values
  return typeof values === 'function' ? values() : values
}

/** One line per loader whose `weights` choice is not on the server, or null when it is there. */
function missingWeightsLine(node) {
  const widget = node.widgets?.find((w) => w.name === 'weights')
  const available = comboValues(widget)
  if (!widget?.value || !Array.isArray(available) || available.includes(widget.value)) return null
  const files = (node.properties?.models ?? []).map((m) => `${m.name} ← ${m.url}`)
  const where = `${WEIGHTS_FOLDER}/${widget.value}/`
  return files.length
    ? `"${widget.value}" is not in ${WEIGHTS_FOLDER}/. Download into ${where}: ${files.join('; ')}`
    : `"${widget.value}" is not in ${WEIGHTS_FOLDER}/ (put the official folder at ${where}).`
}

function warnMissingWeights(graph) {
  const lines = (graph?.nodes ?? []).filter((n) => n.comfyClass === LOADER_CLASS).map(missingWeightsLine)
  const detail = [...new Set(lines.filter(Boolean))].join('\n')
  if (!detail) return
  const toast = app.extensionManager?.toast
  if (toast?.add) {
    toast.add({ severity: 'warn', summary: 'InstanceAssemble weights missing', detail, life: 60_000 })
  } else {
    console.warn(`[InstanceAssemble] InstanceAssemble weights missing: ${detail}`)
  }
}

app.registerExtension({
  name: 'InstanceAssemble.MissingWeights',
  afterConfigureGraph() {
    warnMissingWeights(app.graph)
  },
})
