"""Command line: official release folder → one combined, validated ``.safetensors`` file.

    python -m instanceassemble_core.convert OFFICIAL_FOLDER OUT.safetensors

The folder must hold ``pytorch_lora_weights.safetensors`` and ``layout.pth`` as released. The output keeps every
key unchanged and is read back by ``instanceassemble_core.weights.load_weights``.
"""
import argparse
import sys

from .weights import LAYOUT_FILE_NAME, LORA_FILE_NAME, WeightsError, load_weights, read_official_pair, save_combined


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m instanceassemble_core.convert",
        description=f"Validate an official InstanceAssemble release folder ({LORA_FILE_NAME} + {LAYOUT_FILE_NAME}) "
                    "and write both into one .safetensors file. layout.pth is read with torch.load(weights_only=True).")
    parser.add_argument("folder", help=f"folder holding {LORA_FILE_NAME} and {LAYOUT_FILE_NAME}")
    parser.add_argument("output", help="combined file to write (must end in .safetensors; overwritten if present)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.output.endswith(".safetensors"):
        parser.error(f"output must end in .safetensors: {args.output}")
    try:
        lora_sd, layout_sd = read_official_pair(args.folder)
        save_combined(lora_sd, layout_sd, args.output)
        weights = load_weights(args.output)
    except WeightsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {args.output}")
    print(f"family: {weights.family}")
    print(f"hidden dim D: {weights.hidden_dim}, pooled dim P: {weights.pooled_dim}")
    print(f"active LoRA modules: {len(weights.lora)} (ignored, never active: {len(weights.ignored_lora_modules)})")
    print(f"layout blocks: transformer_blocks {list(weights.double_layout_blocks)}, "
          f"single_transformer_blocks {list(weights.single_layout_blocks)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
