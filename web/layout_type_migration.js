// Workflows saved before the box layout had a type name of its own carry "LAYOUT" on the slots of the
// pack's nodes and on their links. The backend runs them anyway (an API prompt carries no type names),
// but the canvas would keep the stale name, colour and connection checks; this renames it on load.
// Only the pack's nodes and links that touch them are renamed: "LAYOUT" of other packs stays.
// The names match nodes/layout_type.py.

export const LAYOUT_TYPE = 'INSTANCEASSEMBLE_BOX_LAYOUT'
export const LEGACY_LAYOUT_TYPE = 'LAYOUT'
const isPackNode = (node) => typeof node?.type === 'string' && node.type.startsWith('InstanceAssemble')

function renameSlots(slots) {
  let count = 0
  for (const slot of slots ?? []) {
    if (slot?.type === LEGACY_LAYOUT_TYPE) {
      slot.type = LAYOUT_TYPE
      count++
    }
  }
  return count
}

// graph: a serialised LiteGraph graph (workflow JSON, or a subgraph definition); links as arrays
// [id, origin, originSlot, target, targetSlot, type] (version 0.4) or objects (version 1, subgraphs).
// Renames in place; returns how many type strings were renamed.
export function migrateLayoutType(graph) {
  if (!graph || typeof graph !== 'object') return 0
  const packIds = new Set((graph.nodes ?? []).filter(isPackNode).map((node) => node.id))
  let count = 0
  for (const node of graph.nodes ?? []) {
    if (packIds.has(node.id)) count += renameSlots(node.inputs) + renameSlots(node.outputs)
  }
  for (const link of graph.links ?? []) {
    if (Array.isArray(link)) {
      if (link[5] === LEGACY_LAYOUT_TYPE && (packIds.has(link[1]) || packIds.has(link[3]))) {
        link[5] = LAYOUT_TYPE
        count++
      }
    } else if (link?.type === LEGACY_LAYOUT_TYPE && (packIds.has(link.origin_id) || packIds.has(link.target_id))) {
      link.type = LAYOUT_TYPE
      count++
    }
  }
  for (const subgraph of graph.definitions?.subgraphs ?? []) count += migrateLayoutType(subgraph)
  return count
}
