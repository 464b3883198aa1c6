"""Zero-shot checks of a CLIP on a synthetic domain's test identities (never seen in training or pretraining).

Text-to-image retrieval with the test captions (R@1/5/10, mAP; any image of the identity matches), attribute
recognition by prompting (mA), colour binding (caption vs the upper and lower colours swapped; chance 0.5),
part pointing (the best patch of "head" / "upper body" / "legs" inside that part's box) and re-ID with the
frozen image encoder. Weights: ``random`` (the floor), a PATH to an open_clip state dict, or ``synth``
(the workbench's pretrained weights shipped in the package). All numbers are fractions.
"""
from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="synth-b", help="a synthetic domain: synth-a | synth-b | synth-c "
                                                             "(default synth-b)")
    parser.add_argument("--root", default="", help="the domain folder (default: $MUVA_SYNTH/<dataset>)")
    parser.add_argument("--weights", default="synth",
                        help="synth (the shipped pretrained weights, the default) | random (seeded init: the floor) | "
                             "PATH of an open_clip state dict")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random init (default 0)")
    parser.add_argument("--limit", type=int, default=0, help="at most N test identities (default: all)")
    parser.add_argument("--context-length", type=int, default=0,
                        help="text context (default: the weights file's, else the architecture's)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--progress", action="store_true", help="progress bar")


def run(args: argparse.Namespace) -> int:
    from ..eval.zeroshot import SUMMARY_KEYS, ZeroShotCfg, run_zeroshot
    from ..tables import format_table

    if args.limit < 0:
        raise ValueError(f"--limit {args.limit}: expected 0 (all) or a positive number of identities")
    cfg = ZeroShotCfg(dataset=args.dataset, root=args.root, weights=args.weights, seed=args.seed, limit=args.limit,
                      context_length=args.context_length, device=args.device)
    result = run_zeroshot(cfg, progress=args.progress)
    if args.json:
        print(json.dumps(result, sort_keys=True))
        return 0
    sizes = result["sizes"]
    print(f"{result['dataset']}: {sizes['identities']} test identities, {sizes['images']} images, "
          f"{sizes['t2i_texts']} captions; weights: {result['weights']}")
    rows = [{"check": k, "value": "-" if result[k] is None else f"{result[k]:.4f}"} for k in SUMMARY_KEYS]
    rows += [{"check": f"attr {k}", "value": f"{v:.4f}"} for k, v in result["per_attribute"].items()]
    print(format_table(rows))
    if sizes["texts_cut"]:
        print(f"note: {sizes['texts_cut']} of {sizes['texts']} texts are longer than the text context "
              f"({sizes['context_length']} tokens, longest {sizes['longest_text']}) and were cut")
    return 0
