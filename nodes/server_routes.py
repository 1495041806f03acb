"""HTTP routes for the frontend. ``POST /instanceassemble/parse_layout`` (also under ``/api``) turns pasted layout
text in any supported format into canonical layout JSON with the pack's one parser, so the browser has no parser
of its own.

Request: ``{"text": "...", "width": 1024, "height": 1024, "image": "3"}``; width/height are used only when the text
has no image size of its own; ``image`` (optional) picks the entry of a DenseLayout list or a COCO file. Response: ``{"layout": {...canonical...}, "warnings": [...]}``, or status 400 with
``{"error": message, "field": JSON path, "fix": hint}`` for any bad request, never a 500.
"""
import logging
import sys

from aiohttp import web

from ..instanceassemble_core.layout import LayoutError, load_json_text, parse_layout

ROUTE = "/instanceassemble/parse_layout"
MAX_TEXT = 16 * 1024 * 1024


def _parse(text: str, width, height, image, warnings: list[str]):
    try:
        return parse_layout(text, image=image, warnings=warnings)
    except LayoutError as error:
        if error.field not in ("width", "height") or not (width and height):
            raise
    return parse_layout(text, width=width, height=height, image=image, warnings=warnings)


def _bad_request(error: str, field: str | None = None, fix: str | None = None) -> web.Response:
    return web.json_response({"error": error, "field": field, "fix": fix}, status=400)


async def parse_layout_route(request: web.Request) -> web.Response:
    try:
        try:
            raw = (await request.read()).decode("utf-8")
        except UnicodeDecodeError:
            return _bad_request("The request body is not UTF-8 text.", "body", "Send the request as UTF-8 JSON.")
        body = load_json_text(raw, "body")
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str):
            return _bad_request("Send the layout as {\"text\": \"...\"}.", "text",
                                "POST a JSON object with the layout text under \"text\".")
        if len(text) > MAX_TEXT:
            return _bad_request("The layout text is too large.")
        image = body.get("image")
        if image is not None and (isinstance(image, bool) or not isinstance(image, (str, int))):
            return _bad_request("image must be the id (or file name) of one entry.", "image",
                                "Send the entry's id as text, or leave image out.")
        warnings = []
        layout = _parse(text, body.get("width"), body.get("height"), image, warnings)
        return web.json_response({"layout": layout.to_dict(), "warnings": warnings})
    except LayoutError as error:
        return _bad_request(str(error), error.field, error.fix)
    except Exception as error:  # the last boundary: a bad request is never a 500
        logging.exception("InstanceAssemble: %s failed", ROUTE)
        return _bad_request(f"The layout could not be read ({type(error).__name__}).")


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
