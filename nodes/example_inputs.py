"""The example workflows' input files (``example_workflows/inputs/``) copied into ComfyUI's input folder when the
pack loads, so the examples' LoadImage nodes find them without a manual copy. A file of the same name already in the
input folder is never overwritten; a folder that cannot be written logs one warning and the pack loads as usual.

ComfyUI's main.py applies ``--input-directory`` (``apply_custom_paths``: main.py:103 in 0.3.64, main.py:214 in
0.29.0) before it imports custom nodes (``init_extra_nodes``: main.py:318 / main.py:516), so the folder read here is
the one LoadImage lists.
"""
import logging
import shutil
from pathlib import Path

import folder_paths

EXAMPLE_INPUTS = Path(__file__).resolve().parent.parent / "example_workflows" / "inputs"


def _copy_if_absent(source: Path, target: Path) -> bool:
    """Copy ``source`` to ``target`` unless ``target`` exists (False); a partly written target is removed."""
    try:
        out = open(target, "xb")  # exclusive create: never replaces a file, even one written meanwhile
    except FileExistsError:
        return False
    try:
        with out, open(source, "rb") as data:
            shutil.copyfileobj(data, out)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return True


def copy_example_inputs() -> list[Path]:
    """Copy each file of ``example_workflows/inputs/`` that ComfyUI's input folder lacks; returns the files written."""
    if not EXAMPLE_INPUTS.is_dir():
        return []
    input_dir = Path(folder_paths.get_input_directory())
    written = []
    for source in sorted(path for path in EXAMPLE_INPUTS.iterdir() if path.is_file()):
        try:
            if _copy_if_absent(source, input_dir / source.name):
                written.append(input_dir / source.name)
        except OSError as error:
            logging.warning(f"InstanceAssemble: could not copy the example workflows' input {source.name} into "
                            f"ComfyUI's input folder {input_dir} ({error.strerror or error}). To run the examples "
                            f"that load it, copy the files of {EXAMPLE_INPUTS} there yourself.")
            break
    return written
