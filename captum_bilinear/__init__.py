"""captum-bilinear: second-order attributions for dual encoders, as a Captum extension."""

import importlib
from typing import TYPE_CHECKING, Any, List

__version__ = "0.1.0"

# The public names are imported on first use (PEP 562), so that ``captum-bilinear --help``
# and other light entry points start without loading torch, Captum and transformers.
_WHERE = {
    "BilinearIntegratedInteractions": "captum_bilinear._core.bilinear_integrated_interactions",
    "ConditionedSimilarity": "captum_bilinear.first_order",
    "DualEncoder": "captum_bilinear.encoders",
    "IntegratedJacobians": "captum_bilinear._core.integrated_jacobians",
    "InteractionCAM": "captum_bilinear._core.interaction_cam",
    "InteractionLIME": "captum_bilinear._core.interaction_lime",
    "InteractionTerms": "captum_bilinear.terms",
    "SimilarityTerms": "captum_bilinear._core.base",
    "TokenPatchSimilarity": "captum_bilinear._core.token_patch_similarity",
    "WeightedBanzhafInteractions": "captum_bilinear._core.weighted_banzhaf",
    "as_dual_encoder": "captum_bilinear.adapters",
    "first_order_projection": "captum_bilinear.first_order",
}

__all__ = sorted(_WHERE)

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs; `X as X` marks a re-export
    from captum_bilinear._core.base import SimilarityTerms as SimilarityTerms
    from captum_bilinear._core.bilinear_integrated_interactions import (
        BilinearIntegratedInteractions as BilinearIntegratedInteractions,
    )
    from captum_bilinear._core.integrated_jacobians import IntegratedJacobians as IntegratedJacobians
    from captum_bilinear._core.interaction_cam import InteractionCAM as InteractionCAM
    from captum_bilinear._core.interaction_lime import InteractionLIME as InteractionLIME
    from captum_bilinear._core.token_patch_similarity import TokenPatchSimilarity as TokenPatchSimilarity
    from captum_bilinear._core.weighted_banzhaf import WeightedBanzhafInteractions as WeightedBanzhafInteractions
    from captum_bilinear.adapters import as_dual_encoder as as_dual_encoder
    from captum_bilinear.encoders import DualEncoder as DualEncoder
    from captum_bilinear.first_order import ConditionedSimilarity as ConditionedSimilarity
    from captum_bilinear.first_order import first_order_projection as first_order_projection
    from captum_bilinear.terms import InteractionTerms as InteractionTerms


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'captum_bilinear' has no attribute {name!r}")


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(_WHERE))
