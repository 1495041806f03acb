"""HTTP routes for the frontend. ``POST /instanceassemble/parse_layout`` (also under ``/api``) turns pasted layout
text in any supported format into canonical layout JSON with the pack's one parser; the browser reads only its own
saved canonical form (web/layout_model.js ``readCanonical``, a structural check) and sends everything else here.

Request: ``{"text": "...", "width": 1024, "height": 1024, "image": "3"}``; width/height are used only when the text
has no image size of its own; ``image`` (optional) picks the entry of a DenseLayout list or a COCO file. Response: ``{"layout": {...canonical...}}``, or status 400 with
``{"error": message, "field": JSON path, "fix": hint}``.
"""
import logging
import sys

from aiohttp import web

from ..instanceassemble_core.layout import LayoutError, parse_layout

ROUTE = "/instanceassemble/parse_layout"
MAX_TEXT = 16 * 1024 * 1024


def _parse(text: str, width, height, image):
    try:
        return parse_layout(text, image=image)
    except LayoutError as error:
        if error.field not in ("width", "height") or not (width and height):
            raise
    return parse_layout(text, width=width, height=height, image=image)


async def parse_layout_route(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except ValueError:
        return web.json_response({"error": "The request body must be JSON.", "field": None, "fix": None}, status=400)
    text = body.get("text") if isinstance(body, dict) else None
    if not isinstance(text, str):
        return web.json_response({"error": "Send the layout as {\"text\": \"...\"}.", "field": None, "fix": None},
                                 status=400)
    if len(text) > MAX_TEXT:
        return web.json_response({"error": "The layout text is too large.", "field": None, "fix": None}, status=400)
    try:
        layout = _parse(text, body.get("width"), body.get("height"), body.get("image"))
    except LayoutError as error:
        return web.json_response({"error": str(error), "field": error.field, "fix": error.fix}, status=400)
    return web.json_response({"layout": layout.to_dict()})


_registered = False


def register() -> bool:
    """Add the routes to the running ComfyUI server; False when there is none (tests importing the pack)."""
    global _registered
    if _registered:
        return True
    # ComfyUI's main.py imports `server` and creates the PromptServer before it loads custom nodes.
    prompt_server = getattr(sys.modules.get("server"), "PromptServer", None)
    server = getattr(prompt_server, "instance", None)
    if server is None:
        return False
    server.routes.post(ROUTE)(parse_layout_route)
    _registered = True
    logging.debug("InstanceAssemble: registered %s", ROUTE)
    return True
