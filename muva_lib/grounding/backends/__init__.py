"""Grounding backends behind one interface, by name: ``prior``, ``synthetic``, ``mllm``, ``detector``,
``cascade`` (OpenCV Haar cascades) and ``pose`` (mediapipe keypoints)."""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .backend import STATUSES, Answer, Backend, failed_answers

if TYPE_CHECKING:
    from ...config import VgeCfg

__all__ = ["BACKENDS", "Answer", "Backend", "STATUSES", "failed_answers", "get_backend", "list_backends",
           "backend_from_cfg"]

#: backend name -> "module:Class" (imported on demand, so transformers loads only for mllm / detector)
BACKENDS: dict[str, str] = {
    "prior": "prior:PriorBackend",
    "synthetic": "noisy_truth:SyntheticBackend",
    "mllm": "mllm:MllmBackend",
    "detector": "detector:DetectorBackend",
    "cascade": "cascade:CascadeBackend",
    "pose": "pose:PoseBackend",
}


def list_backends() -> list[str]:
    return list(BACKENDS)


def get_backend(name: str, **opts: Any) -> Backend:
    """Build a backend by name; ``opts`` go to its constructor (see each class)."""
    if name not in BACKENDS:
        raise ValueError(f"unknown grounding backend {name!r}; known: {', '.join(BACKENDS)}")
    module, cls = BACKENDS[name].split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)(**opts)


def backend_from_cfg(vge: VgeCfg, device: Any = "auto", **extra: Any) -> Backend:
    """The backend the grounding slice ``vge`` describes (``extra`` overrides its options)."""
    if vge.backend in ("prior", "cascade", "pose"):
        opts: dict[str, Any] = {}
    elif vge.backend == "synthetic":
        from .noisy_truth import NOISE_RATES

        opts = {"noise": vge.noise, "seed": vge.noise_seed, "tolerance": vge.parse_tolerance,
                "rates": {name: getattr(vge, f"noise_{name}") for name in NOISE_RATES}}
    elif vge.backend == "mllm":
        opts = {"model": vge.model, "device": device, "trust_remote_code": vge.trust_remote_code,
                "template": vge.prompt_template, "answer_format": vge.answer_format,
                "max_new_tokens": vge.max_new_tokens, "batch_size": vge.batch_size,
                "tolerance": vge.parse_tolerance}
    elif vge.backend == "detector":
        opts = {"model": vge.model, "device": device, "trust_remote_code": vge.trust_remote_code,
                "min_score": vge.detector_min_score, "batch_size": vge.batch_size,
                "tolerance": vge.parse_tolerance}
    else:
        raise ValueError(f"unknown grounding backend {vge.backend!r}; known: {', '.join(BACKENDS)}")
    opts.update(extra)
    return get_backend(vge.backend, **opts)
