"""Detector models: typed configs, the shared detector module and the architecture zoo."""

from quant_models.models.config import ConvSpec, DetectorConfig
from quant_models.models.detector import Detector
from quant_models.models.zoo import ARCHITECTURES, build_model, default_config, num_conv_layers, validate_bits

__all__ = ["ARCHITECTURES", "ConvSpec", "Detector", "DetectorConfig", "build_model", "default_config", "num_conv_layers",
           "validate_bits"]
