"""Hostile layout.pth files: code in torch's zip format is refused as code, cut files of any format as cut files."""
import os
import pickle

import pytest
import torch

from instanceassemble_core.weights import WeightsError, load_weights
from tools.official_weights import make_official_weights, write_official_folder

FLUX = dict(family="flux", hidden_dim=64, pooled_dim=64, num_double_blocks=7, num_single_blocks=2)


class _RunsAShellCommand:
    """Unpickling this object runs ``touch marker`` through ``os.system``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_zip_format_layout_pth_with_code_is_refused_as_code(tmp_path):
    lora_sd, layout_sd = make_official_weights(**FLUX)
    marker = tmp_path / "payload_ran"
    layout_sd["layout_net.linears.linear_1.weight"] = _RunsAShellCommand(marker)
    folder = write_official_folder(tmp_path / "official", lora_sd, {})
    torch.save(layout_sd, folder / "layout.pth")  # torch's zip format
    with pytest.raises(WeightsError, match=r"Refused to load .*layout\.pth: it contains a Python object "
                                           r"\((posix|nt)\.system\) that is not a tensor, and unpickling it could run "
                                           r"code") as caught:
        load_weights(folder)
    assert "truncated" not in str(caught.value) and not marker.exists()


@pytest.mark.parametrize("cut", [1, 2, 6])  # IndexError, EOFError, struct.error from the unpickler
def test_cut_raw_pickle_layout_pth_is_reported_as_cut(tmp_path, cut):
    lora_sd, layout_sd = make_official_weights(**FLUX)
    folder = write_official_folder(tmp_path / "official", lora_sd, {})
    data = pickle.dumps({"layout_net.linears.linear_1.bias": [1.0, 2.0, 3.0]}, protocol=2)
    (folder / "layout.pth").write_bytes(data[:cut])
    with pytest.raises(WeightsError, match=r"layout\.pth: it is truncated, corrupt"):
        load_weights(folder)
