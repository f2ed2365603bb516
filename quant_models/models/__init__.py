"""Detector models: typed configs, the shared detector module and the architecture zoo."""

from quant_models.models.config import ConvSpec, DetectorConfig
from quant_models.models.detector import Detector
from quant_models.models.tinyyolo import TinyYolo
from quant_models.models.zoo import ARCHITECTURES, Model, build_model, default_config, num_conv_layers, validate_bits

__all__ = ["ARCHITECTURES", "ConvSpec", "Detector", "DetectorConfig", "Model", "TinyYolo", "build_model",
           "default_config", "num_conv_layers", "validate_bits"]
