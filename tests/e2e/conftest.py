"""End-to-end tier: a real ComfyUI server (subprocess, CPU) with this pack installed, driven over HTTP and through
the real frontend in headless Chromium.

Frontends and renderers: the UI tests run once per frontend in ``$INSTANCEASSEMBLE_FRONTENDS`` (comma-separated
versions, e.g. ``1.47.10,1.58.1``; default by backend: ComfyUI 0.3.x -> ``1.27.10``, newer -> ``1.47.10,1.58.1``),
each found at ``$INSTANCEASSEMBLE_FRONTENDS_DIR/<version>/comfyui_frontend_package/static`` (default
``~/comfy/frontends``; a missing one fails the run), and per node renderer: ``classic`` and ``vue`` (Nodes 2.0)
where the frontend shows DOM widgets inside Vue nodes (1.28+). A test limits the renderers with
``@pytest.mark.renderers("classic")``. Test ids read ``[1.58.1-vue]``. One server runs at a time: the tests are
ordered by frontend and the server is restarted only when the frontend changes.

Fixtures:
- ``comfy_server``: the running server, a :class:`ComfyServer` (``base_url``, ``base_dir``, HTTP helpers).
  The pack is symlinked into ``<base>/custom_nodes/``; so is every folder under ``tests/e2e/custom_nodes/`` (put
  test-only nodes there, e.g. a tiny-model loader). Add model files under ``base_dir / "models"`` from a
  session fixture that runs before the server starts, or pass ``extra_model_paths`` through ``E2E_SERVER_ARGS``.
- ``browser`` (session) / ``page``: headless Chromium (Debian ``/usr/bin/chromium``) through Playwright, a fresh
  page on the ComfyUI UI with the graph empty. Missing Chromium or Playwright fails the tier; it never skips.

Artifacts (screenshots, the server log) go to ``.artifacts/e2e/`` (git-ignored).
"""
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tools.comfyui_path import require_comfyui

E2E_DIR = Path(__file__).resolve().parent

from editor_page import ARTIFACTS, ROOT  # noqa: E402
PACK_FOLDER = "ComfyUI-InstanceAssemble"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PACK_NODES = ("InstanceAssembleLayoutEditor", "InstanceAssembleDrawLayout")
SERVER_START_TIMEOUT = 120
# Frontend settings for a clean, predictable UI: no template gallery on first start, classic node renderer.
UI_SETTINGS = {"Comfy.TutorialCompleted": True, "Comfy.VueNodes.Enabled": False, "Comfy.Minimap.Visible": False}
VUE_SETTING = "Comfy.VueNodes.Enabled"
RENDERERS = ("classic", "vue")
FRONTENDS_DIR = Path(os.environ.get("INSTANCEASSEMBLE_FRONTENDS_DIR", Path.home() / "comfy" / "frontends")).expanduser()
FRONTEND_PACKAGE_STATIC = Path("comfyui_frontend_package") / "static"


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def default_frontends(comfy_root: Path) -> list[str]:
    """The frontends a backend is tested with: the one 0.3.64 pins, or the one 0.29 pins and the newest."""
    text = (comfy_root / "comfyui_version.py").read_text()
    backend = _version(re.search(r"__version__\s*=\s*['\"]([^'\"]+)", text).group(1))
    return ["1.27.10"] if backend < (0, 4) else ["1.47.10", "1.58.1"]


def selected_frontends() -> list[str]:
    listed = os.environ.get("INSTANCEASSEMBLE_FRONTENDS", "").strip()
    if listed:
        return [v.strip() for v in listed.split(",") if v.strip()]
    return default_frontends(require_comfyui())


def frontend_root(version: str) -> Path:
    root = FRONTENDS_DIR / version / FRONTEND_PACKAGE_STATIC
    if not (root / "index.html").is_file():
        raise pytest.UsageError(
            f"frontend {version} not found at {root}: install it with `pip install --target "
            f"{FRONTENDS_DIR / version} comfyui-frontend-package=={version}` or set INSTANCEASSEMBLE_FRONTENDS.")
    return root


def renderers_of(version: str) -> tuple[str, ...]:
    """Nodes 2.0 shows DOM widgets inside Vue nodes from 1.28 on; 1.27's Vue mode has its own test."""
    return RENDERERS if _version(version) >= (1, 28) else ("classic",)


class UiTarget(tuple):
    """(frontend version, renderer) of a UI test."""

    @property
    def frontend(self) -> str:
        return self[0]

    @property
    def renderer(self) -> str:
        return self[1]

    @property
    def vue(self) -> bool:
        return self[1] == "vue"

    @property
    def slug(self) -> str:
        return f"{self[0]}-{self[1]}"


FRONTENDS = selected_frontends()
for _version_text in FRONTENDS:
    frontend_root(_version_text)


def pytest_configure(config):
    config.addinivalue_line("markers", "renderers(*names): the node renderers a UI test runs under")
    config.addinivalue_line("markers", "frontends(*versions): the frontends a UI test runs under (default: all)")


def pytest_generate_tests(metafunc):
    if "ui_target" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("renderers")
    wanted = marker.args if marker else RENDERERS
    only = metafunc.definition.get_closest_marker("frontends")
    targets = [UiTarget((version, renderer)) for version in FRONTENDS for renderer in renderers_of(version)
               if renderer in wanted and (not only or any(version.startswith(v) for v in only.args))]
    if not targets:  # none of the selected frontends fits: deselected below (never an empty-set skip)
        metafunc.parametrize("ui_target", [None], ids=["no-selected-frontend"])
        return
    metafunc.parametrize("ui_target", targets, ids=[t.slug for t in targets])


def _frontend_of(item) -> str:
    target = getattr(item, "callspec", None) and item.callspec.params.get("ui_target")
    return target.frontend if target else FRONTENDS[0]


def pytest_collection_modifyitems(config, items):
    unselected = [item for item in items if getattr(item, "callspec", None)
                  and "ui_target" in item.callspec.params and item.callspec.params["ui_target"] is None]
    if unselected:
        config.hook.pytest_deselected(items=unselected)
        items[:] = [item for item in items if item not in unselected]
    # one server per frontend: run each frontend's tests together (stable: file order is kept within)
    items.sort(key=lambda item: FRONTENDS.index(_frontend_of(item)))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComfyServer:
    """A running ComfyUI server and small HTTP helpers (JSON in, JSON out)."""

    def __init__(self, base_url: str, base_dir: Path, log_path: Path, process: subprocess.Popen):
        self.base_url = base_url
        self.base_dir = base_dir
        self.log_path = log_path
        self.process = process

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def request(self, path: str, data=None, method: str | None = None):
        """(status, parsed JSON body) for a request; errors come back as statuses, not exceptions."""
        body = None if data is None else json.dumps(data).encode()
        req = urllib.request.Request(self.base_url + path, data=body, method=method,
                                     headers={"Content-Type": "application/json"} if body else {})
        try:
            with urllib.request.urlopen(req, timeout=30) as res:
                return res.status, json.loads(res.read() or b"null")
        except urllib.error.HTTPError as err:
            text = err.read()
            try:
                return err.code, json.loads(text)
            except ValueError:
                return err.code, text.decode(errors="replace")

    def get_bytes(self, path: str) -> bytes:
        with urllib.request.urlopen(self.base_url + path, timeout=30) as res:
            return res.read()

    def queue(self, prompt: dict) -> str:
        """POST an API prompt; returns its prompt_id (fails the test with the node errors on a 400)."""
        status, body = self.request("/prompt", {"prompt": prompt, "client_id": "e2e-tests"})
        assert status == 200, f"/prompt refused the graph ({status}): {json.dumps(body, indent=1)[:3000]}"
        return body["prompt_id"]

    def wait_history(self, prompt_id: str, timeout: float = 120) -> dict:
        """The finished history entry of a prompt (success or error)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, body = self.request(f"/history/{prompt_id}")
            entry = body.get(prompt_id) if status == 200 and isinstance(body, dict) else None
            if entry and entry.get("status", {}).get("completed") is not None and (
                    entry["status"]["completed"] or entry["status"].get("status_str") == "error"):
                return entry
            time.sleep(0.2)
        raise AssertionError(f"prompt {prompt_id} did not finish in {timeout} s. Server log:\n{self.log_tail()}")

    def run(self, prompt: dict, timeout: float = 120) -> dict:
        """Queue a prompt and return its history entry, asserting it succeeded."""
        entry = self.wait_history(self.queue(prompt), timeout)
        assert entry["status"]["status_str"] == "success", (
            f"prompt failed: {json.dumps(entry['status'], indent=1)[:4000]}\nServer log:\n{self.log_tail()}")
        return entry


def _link(target: Path, link: Path):
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target, target_is_directory=True)


def _start_server(base: Path, frontend: str) -> ComfyServer:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log_path = ARTIFACTS / f"server-{frontend}.log"
    port = _free_port()
    cmd = [sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
           "--base-directory", str(base), "--database-url", "sqlite:///:memory:",
           "--front-end-root", str(frontend_root(frontend)),
           "--disable-api-nodes", "--disable-auto-launch", *os.environ.get("E2E_SERVER_ARGS", "").split()]
    with open(log_path, "w") as log:
        process = subprocess.Popen(cmd, cwd=require_comfyui(), stdout=log, stderr=subprocess.STDOUT)
    server = ComfyServer(f"http://127.0.0.1:{port}", base, log_path, process)
    server.frontend = frontend
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise AssertionError(f"ComfyUI exited with {process.returncode}:\n{server.log_tail()}")
            try:
                if server.request("/system_stats")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"ComfyUI did not answer in {SERVER_START_TIMEOUT} s:\n{server.log_tail()}")
            time.sleep(0.25)
        status, info = server.request("/object_info")
        missing = [name for name in PACK_NODES if name not in info]
        assert not missing, f"the pack's nodes did not load ({missing}):\n{server.log_tail(120)}"
    except BaseException:
        _stop(server)
        raise
    return server


def _stop(server: ComfyServer):
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


class ServerPool:
    """The one running server; asking for another frontend stops it and starts one with that frontend (same
    base directory, so models and inputs set up by session fixtures stay)."""

    def __init__(self, base: Path):
        self.base = base
        self.server = None

    def get(self, frontend: str) -> ComfyServer:
        if self.server is None or self.server.frontend != frontend:
            self.close()
            self.server = _start_server(self.base, frontend)
        return self.server

    def close(self):
        if self.server is not None:
            _stop(self.server)
            self.server = None


@pytest.fixture(scope="session")
def comfy_base(tmp_path_factory):
    """The server's base directory (custom_nodes with this pack, user settings); add models here before a
    server starts."""
    base = tmp_path_factory.mktemp("comfy_base")
    custom_nodes = base / "custom_nodes"
    custom_nodes.mkdir()
    _link(ROOT, custom_nodes / PACK_FOLDER)
    extra_nodes = E2E_DIR / "custom_nodes"
    if extra_nodes.is_dir():
        for folder in sorted(extra_nodes.iterdir()):
            if folder.is_dir() and not folder.name.startswith(("_", ".")):
                _link(folder, custom_nodes / folder.name)
    settings = base / "user" / "default" / "comfy.settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps(UI_SETTINGS))
    return base


@pytest.fixture(scope="session")
def server_pool(comfy_base):
    pool = ServerPool(comfy_base)
    yield pool
    pool.close()


@pytest.fixture
def comfy_server(request, server_pool):
    """The running server, with the frontend of the test's ``ui_target`` (the first frontend for HTTP tests)."""
    target = request.getfixturevalue("ui_target") if "ui_target" in request.fixturenames else None
    return server_pool.get(target.frontend if target else FRONTENDS[0])


@pytest.fixture(scope="session")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as err:
        pytest.fail(f"Python playwright is required for the e2e tier (pip install playwright): {err}")
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install it (apt-get install -y chromium) or set CHROMIUM_PATH.")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


class Page:
    """A Playwright page on the ComfyUI frontend, with the console errors and JS dialogs it produced."""

    def __init__(self, page, server: ComfyServer, target: UiTarget):
        self.page = page
        self.server = server
        self.target = target
        self.dialogs = []
        self.page_errors = []
        self.console_warnings = []
        page.on("dialog", self._on_dialog)
        page.on("pageerror", lambda err: self.page_errors.append(str(err)))
        page.on("console", self._on_console)

    def _on_console(self, message):
        if message.type in ("warning", "error"):
            self.console_warnings.append(message.text)

    def _on_dialog(self, dialog):
        if dialog.type == "beforeunload":  # "leave with unsaved changes?" on reload: leave
            dialog.accept()
            return
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def open(self):
        """Load (or reload) the UI and wait until the app and this pack's extension are ready and no loading
        mask covers the page (1.47 shows one briefly after the app reports ready)."""
        self.page.goto(self.server.base_url + "/")
        self.page.wait_for_function(
            "() => window.app?.graph && window.app.canvas && window.LiteGraph && window.app.vueAppReady"
            " && window.app.extensions?.some((e) => e.name === 'InstanceAssemble.LayoutEditor')",
            timeout=60_000)
        self.page.wait_for_function("() => !document.querySelector('.p-blockui-mask')", timeout=30_000)
        if self.target.vue:
            self.page.wait_for_function("() => LiteGraph.vueNodesMode === true", timeout=30_000)
        return self

    def js(self, expression: str, arg=None):
        return self.page.evaluate(expression, arg)

    def screenshot(self, name: str, locator=None) -> Path:
        """Saves a screenshot under .artifacts/e2e/<frontend>-<renderer>/."""
        path = ARTIFACTS / self.target.slug / name
        path.parent.mkdir(parents=True, exist_ok=True)
        (locator or self.page).screenshot(path=str(path))
        return path


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if call.when == "call":
        item.call_failed = report.failed
    return report


@pytest.fixture
def page(request, browser, comfy_server, ui_target):
    """A fresh page on the UI of the test's frontend, with the test's node renderer switched on. A failing test
    leaves a screenshot of the page at .artifacts/e2e/<frontend>-<renderer>/failed-<test>.png."""
    status, body = comfy_server.request(f"/settings/{VUE_SETTING}", ui_target.vue, "POST")
    assert status == 200, body
    context = browser.new_context(viewport={"width": 1400, "height": 900}, device_scale_factor=1)
    ui = Page(context.new_page(), comfy_server, ui_target)
    try:
        yield ui
    finally:
        if getattr(request.node, "call_failed", False):
            ui.screenshot(f"failed-{request.node.originalname}.png")
        context.close()
