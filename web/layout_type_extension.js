// ComfyUI frontend extension: renames the box layout's old type name in workflows as they load
// (see layout_type_migration.js).
import { app } from '../../scripts/app.js'
import { migrateLayoutType } from './layout_type_migration.js'

app.registerExtension({
  name: 'InstanceAssemble.LayoutTypeMigration',
  beforeConfigureGraph(graphData) {
    const renamed = migrateLayoutType(graphData)
    if (renamed) console.info(`InstanceAssemble: renamed the old LAYOUT type on ${renamed} slots and links`)
  },
})
