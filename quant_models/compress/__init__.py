"""Compression of qdet detectors: structured pruning, low-rank factorization, and their iterative schedules."""

from quant_models.compress.common import CompressError, recalibrate_bn
from quant_models.compress.lowrank import factorize_model
from quant_models.compress.prune import prune_model
from quant_models.compress.schedule import FineTune, LowRankConfig, PruneConfig, hardware_ratios, lowrank, prune

__all__ = ["CompressError", "FineTune", "LowRankConfig", "PruneConfig", "factorize_model", "hardware_ratios",
           "lowrank", "prune", "prune_model", "recalibrate_bn"]
