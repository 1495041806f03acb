"""The ComfyUI type name of the pack's box layout, and the name it had before.

Up to version 0.1 the box layout travelled as ``LAYOUT``, a name other packs use for other things. A saved
workflow keeps the old name on its links and slots; the API prompt carries no type names, so old workflows run
unchanged, and web/layout_type_migration.js renames the old name on the pack's own nodes and links when the
frontend loads one (saving the workflow then stores the new name).
"""
LAYOUT_TYPE = "INSTANCEASSEMBLE_BOX_LAYOUT"
LEGACY_LAYOUT_TYPE = "LAYOUT"
