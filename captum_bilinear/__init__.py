"""captum-bilinear: second-order attributions for dual encoders, as a Captum extension."""

from captum_bilinear._core.bilinear_integrated_interactions import BilinearIntegratedInteractions
from captum_bilinear._core.integrated_jacobians import IntegratedJacobians
from captum_bilinear._core.interaction_cam import InteractionCAM
from captum_bilinear._core.interaction_lime import InteractionLIME
from captum_bilinear._core.token_patch_similarity import TokenPatchSimilarity
from captum_bilinear._core.weighted_banzhaf import WeightedBanzhafInteractions
from captum_bilinear._core.base import SimilarityTerms
from captum_bilinear.encoders import DualEncoder, as_dual_encoder
from captum_bilinear.first_order import ConditionedSimilarity, first_order_projection
from captum_bilinear.terms import InteractionTerms

__version__ = "0.1.0"

__all__ = [
    "BilinearIntegratedInteractions",
    "ConditionedSimilarity",
    "DualEncoder",
    "IntegratedJacobians",
    "InteractionTerms",
    "InteractionCAM",
    "InteractionLIME",
    "SimilarityTerms",
    "TokenPatchSimilarity",
    "WeightedBanzhafInteractions",
    "as_dual_encoder",
    "first_order_projection",
]
