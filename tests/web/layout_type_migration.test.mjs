// Unit tests for web/layout_type_migration.js. Run: node --test tests/web
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'

import { LAYOUT_TYPE, LEGACY_LAYOUT_TYPE, migrateLayoutType } from '../../web/layout_type_migration.js'

const oldWorkflow = () => ({
  nodes: [
    { id: 1, type: 'InstanceAssembleLayoutFromJSON', inputs: [], outputs: [{ name: 'layout', type: 'LAYOUT', links: [1] }] },
    { id: 2, type: 'InstanceAssembleLayoutEncode', inputs: [{ name: 'layout', type: 'LAYOUT', link: 1 }], outputs: [] },
    { id: 3, type: 'OtherPackLayout', inputs: [], outputs: [{ name: 'layout', type: 'LAYOUT', links: [2] }] },
    { id: 4, type: 'OtherPackUse', inputs: [{ name: 'layout', type: 'LAYOUT', link: 2 }], outputs: [] },
  ],
  links: [[1, 1, 0, 2, 0, 'LAYOUT'], [2, 3, 0, 4, 0, 'LAYOUT']],
  definitions: { subgraphs: [{
    nodes: [{ id: 7, type: 'InstanceAssembleDrawLayout', inputs: [{ name: 'layout', type: 'LAYOUT', link: 9 }] }],
    links: [{ id: 9, origin_id: -10, origin_slot: 0, target_id: 7, target_slot: 1, type: 'LAYOUT' }],
  }] },
})

describe('the old LAYOUT type on load', () => {
  it('renames it on the pack nodes, their links and in subgraphs, and nowhere else', () => {
    const graph = oldWorkflow()
    assert.equal(migrateLayoutType(graph), 5)
    assert.equal(graph.nodes[0].outputs[0].type, LAYOUT_TYPE)
    assert.equal(graph.nodes[1].inputs[0].type, LAYOUT_TYPE)
    assert.deepEqual(graph.links[0], [1, 1, 0, 2, 0, LAYOUT_TYPE])
    assert.deepEqual(graph.links[1], [2, 3, 0, 4, 0, LEGACY_LAYOUT_TYPE])
    assert.equal(graph.nodes[2].outputs[0].type, LEGACY_LAYOUT_TYPE)
    assert.equal(graph.definitions.subgraphs[0].links[0].type, LAYOUT_TYPE)
    assert.equal(graph.definitions.subgraphs[0].nodes[0].inputs[0].type, LAYOUT_TYPE)
    assert.equal(migrateLayoutType(graph), 0)
  })

  it('uses the type names of nodes/layout_type.py', () => {
    const python = readFileSync(new URL('../../nodes/layout_type.py', import.meta.url), 'utf-8')
    assert.match(python, new RegExp(`^LAYOUT_TYPE = "${LAYOUT_TYPE}"$`, 'm'))
    assert.match(python, new RegExp(`^LEGACY_LAYOUT_TYPE = "${LEGACY_LAYOUT_TYPE}"$`, 'm'))
  })

  it('leaves graphs without pack nodes alone', () => {
    assert.equal(migrateLayoutType({ nodes: [], links: [] }), 0)
    assert.equal(migrateLayoutType(null), 0)
  })
})
