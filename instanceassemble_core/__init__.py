"""InstanceAssemble core: pure PyTorch, no ComfyUI import.

Modules: ``families`` (one description per model family), ``layout`` (parse/validate), ``geometry`` (dense
samples, Fourier features, box → token indices), ``encoder`` (layout encoder), ``weights`` (official files → typed
bundle), ``lora`` (on-the-fly low-rank deltas), ``assemble`` (batched instance-assembling attention), ``schedule``
(grounding ratio → grounded steps).
"""
