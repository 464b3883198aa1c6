"""The text-query explorer: type a description of a person, see the gallery images a CLIP ranks first for it,
with the cosine similarity of each (:func:`muva_lib.eval.zeroshot.top_images`)."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import ipywidgets as widgets

from ..config import DataCfg
from ..data.types import Item
from ..eval.zeroshot import encode_images, load_zeroshot_model, top_images
from ..utils import resolve_device
from ..viz import pretraining as vp
from .base import Explorer, View

__all__ = ["DEFAULT_QUERY", "text_query_explorer"]

DEFAULT_QUERY = "a person with a red top and black trousers"


def text_query_explorer(items: Sequence[Item], *, weights: str = "synth", query: str = DEFAULT_QUERY, k: int = 8,
                        image_hw: tuple[int, int] = (128, 64), device: str = "cpu") -> Explorer:
    """Explore text-to-image search over ``items`` (the gallery, encoded once) with the CLIP of ``weights``
    (``synth``: the shipped pretrained weights; ``random``; or a file): a text box (several descriptions
    separated by ``;``, one row each) and the number of images shown. ``state``: ``texts``, ``top`` (item
    indices per text, best first), ``scores``."""
    items = list(items)
    if not items:
        raise ValueError("text_query_explorer: no gallery items")
    model = load_zeroshot_model(weights, image_size=image_hw, device=resolve_device(device))
    feats, _ = encode_images(model, items, DataCfg(height=image_hw[0], width=image_hw[1]))  # [N, d]
    controls: dict[str, widgets.ValueWidget] = {
        "query": widgets.Text(value=query, description="describe", continuous_update=False,
                              layout=widgets.Layout(width="520px")),
        "k": widgets.IntSlider(value=min(k, len(items)), min=1, max=min(20, len(items)), description="images",
                               continuous_update=False),
    }

    def render(v: Mapping[str, Any]) -> View:
        texts = [t.strip() for t in v["query"].split(";") if t.strip()]
        if not texts:
            raise ValueError("type a description (several: separate them with ';')")
        hits = top_images(model, feats, texts, k=v["k"])
        fig = vp.text_retrieval(hits.texts, [[items[j].path for j in row] for row in hits.index], hits.scores)
        info = "\n".join(f"{t!r}: best {hits.scores[i, 0]:.3f}, "
                         + ", ".join(items[j].relpath for j in hits.index[i, :3]) for i, t in enumerate(hits.texts))
        return View(fig, {"texts": hits.texts, "top": hits.index.tolist(), "scores": hits.scores.tolist()},
                    f"{model.weights}\n{info}")

    return Explorer("text query", controls, render)
