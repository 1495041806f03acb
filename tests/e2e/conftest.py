"""End-to-end tier: a real ComfyUI server (subprocess, CPU) with this pack installed, driven over HTTP and through
the real frontend in headless Chromium.

Fixtures:
- ``comfy_server`` (session): the running server, a :class:`ComfyServer` (``base_url``, ``base_dir``, HTTP helpers).
  The pack is symlinked into ``<base>/custom_nodes/``; so is every folder under ``tests/e2e/custom_nodes/`` (put
  test-only nodes there, e.g. a tiny-model loader). Add model files under ``base_dir / "models"`` from a
  session fixture that runs before the server starts, or pass ``extra_model_paths`` through ``E2E_SERVER_ARGS``.
- ``browser`` (session) / ``page``: headless Chromium (Debian ``/usr/bin/chromium``) through Playwright, a fresh
  page on the ComfyUI UI with the graph empty. Missing Chromium or Playwright fails the tier; it never skips.

Artifacts (screenshots, the server log) go to ``.artifacts/e2e/`` (git-ignored).
"""
import json
import os
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
sys.path.insert(0, str(E2E_DIR))  # editor_page.py

from editor_page import ARTIFACTS, ROOT  # noqa: E402
PACK_FOLDER = "ComfyUI-InstanceAssemble"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PACK_NODES = ("InstanceAssembleLayoutEditor", "InstanceAssembleDrawLayout")
SERVER_START_TIMEOUT = 120
# Frontend settings for a clean, predictable UI: no template gallery on first start, classic node renderer.
UI_SETTINGS = {"Comfy.TutorialCompleted": True, "Comfy.VueNodes.Enabled": False, "Comfy.Minimap.Visible": False}


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


@pytest.fixture(scope="session")
def comfy_server(tmp_path_factory):
    comfy_root = require_comfyui()
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

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log_path = ARTIFACTS / "server.log"
    port = _free_port()
    cmd = [sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
           "--base-directory", str(base), "--database-url", "sqlite:///:memory:",
           "--disable-api-nodes", "--disable-auto-launch", *os.environ.get("E2E_SERVER_ARGS", "").split()]
    with open(log_path, "w") as log:
        process = subprocess.Popen(cmd, cwd=comfy_root, stdout=log, stderr=subprocess.STDOUT)
    server = ComfyServer(f"http://127.0.0.1:{port}", base, log_path, process)
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
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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

    def __init__(self, page, server: ComfyServer):
        self.page = page
        self.server = server
        self.dialogs = []
        self.page_errors = []
        page.on("dialog", self._on_dialog)
        page.on("pageerror", lambda err: self.page_errors.append(str(err)))

    def _on_dialog(self, dialog):
        if dialog.type == "beforeunload":  # "leave with unsaved changes?" on reload: leave
            dialog.accept()
            return
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def open(self):
        """Load (or reload) the UI and wait until the app and this pack's extension are ready."""
        self.page.goto(self.server.base_url + "/")
        self.page.wait_for_function(
            "() => window.app?.graph && window.app.canvas && window.LiteGraph && window.app.vueAppReady"
            " && window.app.extensions?.some((e) => e.name === 'InstanceAssemble.LayoutEditor')",
            timeout=60_000)
        return self

    def js(self, expression: str, arg=None):
        return self.page.evaluate(expression, arg)

    def screenshot(self, name: str, locator=None) -> Path:
        path = ARTIFACTS / name
        (locator or self.page).screenshot(path=str(path))
        return path


@pytest.fixture
def page(browser, comfy_server):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, device_scale_factor=1)
    try:
        yield Page(context.new_page(), comfy_server)
    finally:
        context.close()
