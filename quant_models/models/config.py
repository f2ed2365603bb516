"""Typed detector configuration shared by every architecture."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from quant_models.quantizers import BitSpec, parse_bits

Anchor = tuple[float, float]  # (width, height) as fractions of the input image


@dataclass(frozen=True)
class ConvSpec:
    """One conv-BN-act(-pool) block of a backbone.

    ``stride`` and ``groups`` default to a plain convolution, so plans written before they existed (tinydet,
    UltraNet) build the very same modules. ``groups == in_ch == out_ch`` is a depthwise convolution (channel
    multiplier 1), the form FINN maps to a vector-vector unit (VVAU) instead of a matrix-vector unit (MVAU).
    """

    in_ch: int
    out_ch: int
    kernel: int
    pool: bool
    stride: int = 1
    groups: int = 1

    def __post_init__(self) -> None:
        if self.stride < 1 or self.groups < 1:
            raise ValueError(f"stride and groups must be >= 1, got {self.stride}, {self.groups}")
        if self.in_ch % self.groups or self.out_ch % self.groups:
            raise ValueError(f"groups {self.groups} must divide in_ch {self.in_ch} and out_ch {self.out_ch}")

    @property
    def depthwise(self) -> bool:
        """One filter per channel: groups == channels, channel multiplier 1."""
        return self.groups > 1 and self.groups == self.in_ch == self.out_ch

    @property
    def downsample(self) -> int:
        """How much this block shrinks each side: the conv's stride, times 2 for a 2x2 max pool."""
        return self.stride * (2 if self.pool else 1)


def plan_stride(plan: list[ConvSpec] | tuple[ConvSpec, ...]) -> int:
    """Output stride of a backbone plan: the product of its blocks' downsampling (8 for tinydet and mobiledet)."""
    stride = 1
    for conv in plan:
        stride *= conv.downsample
    return stride


@dataclass(frozen=True)
class DetectorConfig:
    """Everything needed to rebuild a detector; stored in every checkpoint.

    ``bits`` is a bit spec string (``w4a4``, ``w4a4,first=8,last=8``) or None for the float twin, which has the
    same graph without quantizers.
    """

    arch: str
    num_classes: int
    input_size: tuple[int, int]  # (H, W)
    anchors: tuple[Anchor, ...]
    bits: str | None = "w4a4"
    width: float = 1.0
    depth: int = 2
    class_names: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {self.num_classes}")
        if self.width <= 0:
            raise ValueError(f"--width (channel multiplier) must be > 0, got {self.width}")
        if self.depth < 0:
            raise ValueError(f"--depth must be >= 0, got {self.depth}")
        if not self.anchors:
            raise ValueError("a detector needs at least one anchor")
        if self.class_names and len(self.class_names) != self.num_classes:
            raise ValueError(f"{len(self.class_names)} class names given for {self.num_classes} classes")
        if self.bits is not None:
            canonical = parse_bits(self.bits)  # validates; keeps the stored form canonical
            object.__setattr__(self, "bits", None if canonical is None else str(canonical))

    @property
    def bit_spec(self) -> BitSpec | None:
        return None if self.bits is None else parse_bits(self.bits)

    @property
    def num_anchors(self) -> int:
        return len(self.anchors)

    @property
    def head_channels(self) -> int:
        """Anchors x (4 box + 1 objectness + classes), the layout the host-side decode expects."""
        return self.num_anchors * (5 + self.num_classes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DetectorConfig:
        data = dict(data)
        data["input_size"] = tuple(data["input_size"])
        data["anchors"] = tuple(tuple(a) for a in data["anchors"])
        data["class_names"] = tuple(data.get("class_names", ()))
        return cls(**data)

    def with_(self, **changes: Any) -> DetectorConfig:
        """A copy with some fields changed (validated again)."""
        return DetectorConfig.from_dict({**self.to_dict(), **changes})
