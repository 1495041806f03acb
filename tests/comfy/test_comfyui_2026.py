"""Behaviour that only 2026 ComfyUI has (collected on those backends, see conftest.py): Flux.2 / Klein in the Flux
class, and the core multi-GPU nodes (comfy/multigpu.py, "MultiGPU CFG Split", "Select Model Device")."""
import pytest
import torch

import comfy.model_management
import comfy.model_patcher
import comfy.supported_models
from comfy_extras.nodes_multigpu import MultiGPUCFGSplitNode, SelectModelDeviceNode
from tools import tiny_models
from tools.pack_nodes import apply, encode, latent_for
from tools.sampling import flux_conditioning, sample

# Flux.2's detected config (comfy/model_detection.py) at the tiny Flux's width: 4 RoPE axes, global modulation.
FLUX2_TINY = dict(tiny_models.FLUX_TINY, image_model="flux2", axes_dim=[8, 8, 8, 8], out_channels=16,
                  global_modulation=True, mlp_silu_act=True, qkv_bias=False, ops_bias=False, vec_in_dim=None,
                  default_ref_method="index", ref_index_scale=10.0, txt_ids_dims=[3])


def tiny_flux2_patcher():
    """A ComfyUI Flux.2 (the config class Flux.2 dev and Klein load as) at the tiny size; its weights stay as built."""
    model_config = comfy.supported_models.Flux2(dict(FLUX2_TINY))
    model_config.set_inference_dtype(torch.float32, None)
    return comfy.model_patcher.ModelPatcher(model_config.get_model({}), load_device=torch.device("cpu"),
                                            offload_device=torch.device("cpu"))


def test_flux2_and_klein_are_refused_at_apply_by_name(pack, flux_weights, flux_clip, layout):
    model = tiny_flux2_patcher()
    assert type(model.get_model_object("diffusion_model")).__name__ == "Flux"  # the class Flux.1 uses too
    with pytest.raises(pack.nodes.hosts.FamilyError,
                       match=r"InstanceAssembleApply: model: the model is a Flux\.2 / Flux\.2 Klein .*weights are for "
                             r"Flux\.1 \(dev, schnell\) only"):
        apply(pack, model, flux_weights, encode(pack, flux_clip, layout))


@pytest.fixture
def patched_flux(pack, flux_weights, flux_clip, layout):
    return apply(pack, tiny_models.tiny_flux_patcher(), flux_weights, encode(pack, flux_clip, layout),
                 grounding_ratio=1.0)


def test_multigpu_nodes_with_one_device_pass_the_patched_model_on(patched_flux, flux_clip, layout):
    assert len(comfy.model_management.get_all_torch_devices()) == 1  # this machine: nothing to split onto
    positive = flux_conditioning(flux_clip, "a cat and a dog")
    expected = sample(patched_flux, positive, positive, latent_for(layout), steps=2)
    split = MultiGPUCFGSplitNode.execute(patched_flux, 2).result[0]
    selected = SelectModelDeviceNode.execute(patched_flux, "cpu").result[0]
    for model in (split, selected):
        torch.testing.assert_close(sample(model, positive, positive, latent_for(layout), steps=2), expected)


def test_copying_the_patched_model_to_another_device_fails_at_once_with_the_way_out(patched_flux):
    """What both nodes do for each other device (create_multigpu_deepclones, Select Model Device's retarget)."""
    with pytest.raises(ValueError, match=r"InstanceAssembleApply: .*MultiGPU CFG Split.*put Select Model Device "
                                         r"before InstanceAssembleApply"):
        patched_flux.deepclone_multigpu(new_load_device=torch.device("cpu"))


def test_a_model_split_before_apply_fails_when_sampling_starts(pack, flux_weights, flux_clip, layout):
    """MultiGPU CFG Split before Apply: the split model's device copies are matched to the patched model when
    sampling starts (``match_multigpu_clones``), which copies the branch, and is refused before any step."""
    base = tiny_models.tiny_flux_patcher()
    copy = base.deepclone_multigpu(new_load_device=torch.device("cpu"))  # what the node makes per extra device
    copy.is_multigpu_base_clone = True
    split = base.clone()
    split.set_additional_models("multigpu", [copy])
    patched = apply(pack, split, flux_weights, encode(pack, flux_clip, layout))
    positive = flux_conditioning(flux_clip, "a cat")
    with pytest.raises(ValueError, match=r"cannot be copied to another device"):
        sample(patched, positive, positive, latent_for(layout), steps=2)
