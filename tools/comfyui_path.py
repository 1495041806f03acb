"""Locate a ComfyUI checkout for the tests, the benchmarks and the headless runner.

Order: ``$COMFYUI_PATH``, then the ComfyUI that holds this pack in its ``custom_nodes/`` folder,
then comfy-cli's default workspace ``~/comfy/ComfyUI``.
"""
import os
import sys
from pathlib import Path

PACK_ROOT = Path(__file__).resolve().parent.parent


def _is_comfyui(path: Path) -> bool:
    return (path / "comfy" / "model_patcher.py").is_file() and (path / "nodes.py").is_file()


def find_comfyui() -> Path | None:
    """The ComfyUI root folder, or None when none of the three places holds one."""
    candidates = []
    if os.environ.get("COMFYUI_PATH"):
        candidates.append(Path(os.environ["COMFYUI_PATH"]).expanduser())
    if PACK_ROOT.parent.name == "custom_nodes":
        candidates.append(PACK_ROOT.parent.parent)
    candidates.append(Path.home() / "comfy" / "ComfyUI")
    return next((c.resolve() for c in candidates if _is_comfyui(c)), None)


def require_comfyui() -> Path:
    """Like :func:`find_comfyui`, but raise a clear error naming the three places searched."""
    root = find_comfyui()
    if root is None:
        raise RuntimeError(
            "ComfyUI was not found. Set COMFYUI_PATH to a ComfyUI checkout, install this pack under "
            "ComfyUI/custom_nodes/, or put ComfyUI at ~/comfy/ComfyUI (comfy-cli's default workspace).")
    return root


def import_comfyui(cpu: bool = True) -> Path:
    """Put ComfyUI first on ``sys.path`` (its ``nodes.py`` must win over this pack's ``nodes/``) and
    select the CPU before ``comfy.model_management`` is imported. Returns the ComfyUI root."""
    root = require_comfyui()
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from comfy.cli_args import args
    if cpu:
        args.cpu = True
    # As ComfyUI's main.py does: its `utils` package first, before nodes.py puts comfy/ (with comfy/utils.py) on
    # sys.path; otherwise `server` and the comfy_extras that import it fail.
    import utils.extra_config  # noqa: F401
    return root


def import_pack(name: str = "comfyui_instanceassemble"):
    """Import this repository as a package, the way ComfyUI imports a custom node folder."""
    import importlib.util
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, PACK_ROOT / "__init__.py",
                                                  submodule_search_locations=[str(PACK_ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
