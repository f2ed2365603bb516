"""Detection data: loaders (COCO, YOLO, VOC), a synthetic generator, tensor conversion and augmentation."""

from quant_models.data.augment import AugmentConfig, augment_batch
from quant_models.data.coco import load_coco
from quant_models.data.layout import detect_layout, load_dataset
from quant_models.data.synth import SynthSummary, generate_synthetic
from quant_models.data.synth_render import CLASS_NAMES as SYNTH_CLASS_NAMES
from quant_models.data.synth_render import SceneConfig
from quant_models.data.tensors import DetectionTensors, iterate_batches, to_tensors
from quant_models.data.types import DatasetError, DetectionSet, Sample
from quant_models.data.voc import load_voc
from quant_models.data.yolo import load_yolo, read_class_names

__all__ = [
    "SYNTH_CLASS_NAMES",
    "AugmentConfig",
    "DatasetError",
    "DetectionSet",
    "DetectionTensors",
    "Sample",
    "SceneConfig",
    "SynthSummary",
    "augment_batch",
    "detect_layout",
    "generate_synthetic",
    "iterate_batches",
    "load_coco",
    "load_dataset",
    "load_voc",
    "load_yolo",
    "read_class_names",
    "to_tensors",
]
