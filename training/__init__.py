"""Training scripts and losses (Accelerate)."""

from .gradcache import CachedContextMatchInfoNCE, CachedInfoNCE, CachedJobBERTInfoNCE
from .losses import ContextMatchInfoNCE, InfoNCELoss, JobBERTInfoNCE, duplicate_mask, hash_keys, info_nce

__all__ = [
    "CachedContextMatchInfoNCE",
    "CachedInfoNCE",
    "CachedJobBERTInfoNCE",
    "ContextMatchInfoNCE",
    "InfoNCELoss",
    "JobBERTInfoNCE",
    "duplicate_mask",
    "hash_keys",
    "info_nce",
]
