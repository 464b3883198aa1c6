"""pi-VL (pivl_notes.md): CLIP-ReID + part-informed prompt tuning (60 identity + 20 part epochs) + the
fusion alignment loss.

Its identity epochs run CLIP-ReID's stage-1 schedule over ``stage1.epochs`` (so a comparison with
CLIP-ReID compares methods, not schedules), its part epochs a cosine of their own
(``part_schedule=separate``).
"""
from __future__ import annotations

from typing import Any

from ..config import Ablation
from .clipreid import ClipReid

__all__ = ["Pivl", "pivl_enabled"]


def pivl_enabled(cfg: Any) -> bool:
    """The run needs parsing maps and the aux parts (part prompt epochs or a fusion loss), whatever its method."""
    return cfg.stage1.part_epochs > 0 or cfg.stage2.w_fusion > 0


class Pivl(ClipReid):
    name = "pivl"
    overrides = {"stage1.epochs": 60, "stage1.part_epochs": 20, "stage2.w_fusion": 1.0,
                 "stage1.part_schedule": "separate"}
    #: smoke: the same 4 identity epochs as CLIP-ReID at the same rates, then 2 part epochs on a cosine of
    #: their own (part_schedule=separate, from the recipe; at the tail of one 6-epoch cosine they would run
    #: at 1e-4 and 1e-6: no learning)
    preset_overrides = {"smoke": {**ClipReid.preset_overrides["smoke"], "stage1.epochs": 4,
                                  "stage1.part_epochs": 2}}
    ablations = {
        "no-id-tokens": Ablation("pivl", "part prompts without identity tokens", ("stage1.part_identity=false",)),
        "no-fusion": Ablation("pivl", "no fusion head", ("stage2.w_fusion=0",)),
        "fg-vote": Ablation("pivl", "foreground-favouring patch labels", ("parsing.vote=foreground",)),
    }

    @classmethod
    def training_extras(cls, cfg: Any) -> Any:
        """:class:`muva_lib.methods.pivl_training.PivlExtras` when the config asks for pi-VL's parts."""
        if not pivl_enabled(cfg):
            return None
        from .pivl_training import PivlExtras
        return PivlExtras()
