"""Typed detector configuration shared by every architecture."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from quant_models.quantizers import BitSpec, parse_bits

Anchor = tuple[float, float]  # (width, height) as fractions of the input image
CHANNEL_MULTIPLE = 8  # channel counts stay multiples of 8 so PE/SIMD folding has divisors to choose from


def scale_channels(channels: int, width: float) -> int:
    """Apply a width multiplier, rounding to a multiple of 8 (at least 8).

    >>> scale_channels(64, 0.5), scale_channels(16, 0.25), scale_channels(64, 1.3)
    (32, 8, 80)
    """
    return max(CHANNEL_MULTIPLE, int(round(channels * width / CHANNEL_MULTIPLE)) * CHANNEL_MULTIPLE)


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
class Factor:
    """A low-rank factorization of backbone layer ``layer`` (bit-spec index ``l<layer>``).

    One rank: the kxk conv becomes kxk (in -> r, the layer's stride) then 1x1 (r -> out), a truncated SVD of its
    weight matrix. Two ranks: Tucker-2, 1x1 (in -> r1), kxk (r1 -> r2, the layer's stride), 1x1 (r2 -> out). The
    factors are linear: between them sits a *signed* activation quantizer of ``bits`` bits (None: the layer's own
    activation bits), so every factor is a quantized conv the hardware maps to its own matrix-vector unit; BN
    and the layer's activation follow the last factor, as they followed the original conv.
    """

    layer: int
    ranks: tuple[int, ...]
    bits: int | None = None

    def __post_init__(self) -> None:
        if self.layer < 0:
            raise ValueError(f"a factorized layer index must be >= 0, got {self.layer}")
        if len(self.ranks) not in (1, 2) or any(r < 1 for r in self.ranks):
            raise ValueError(f"layer l{self.layer}: ranks must be one rank (SVD pair) or two (Tucker-2), each "
                             f">= 1, got {self.ranks}")
        if self.bits is not None and not 2 <= self.bits <= 8:
            raise ValueError(f"layer l{self.layer}: the factors' signed activations need 2..8 bits, got {self.bits}")

    @property
    def kind(self) -> str:
        return "svd" if len(self.ranks) == 1 else "tucker2"

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "ranks": list(self.ranks), "bits": self.bits}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Factor:
        return cls(int(data["layer"]), tuple(int(r) for r in data["ranks"]), data.get("bits"))


def check_factor(factor: Factor, conv: ConvSpec) -> None:
    """Refuse a factorization ``conv`` cannot take: a grouped conv, or a rank above the full rank of its
    unfolding (SVD: min(out, in * k * k); Tucker-2: r1 <= in and r2 <= out)."""
    name = f"layer l{factor.layer} ({conv.in_ch}->{conv.out_ch}, {conv.kernel}x{conv.kernel})"
    if conv.groups != 1:
        raise ValueError(f"{name} is a grouped/depthwise conv: only full convs can be factorized")
    if factor.kind == "svd":
        full = min(conv.out_ch, conv.in_ch * conv.kernel ** 2)
        if factor.ranks[0] > full:
            raise ValueError(f"{name}: rank {factor.ranks[0]} is larger than the layer allows (its full rank is "
                             f"{full} = min(out {conv.out_ch}, in x k x k {conv.in_ch * conv.kernel ** 2}))")
    else:
        r1, r2 = factor.ranks
        if r1 > conv.in_ch or r2 > conv.out_ch:
            raise ValueError(f"{name}: Tucker-2 ranks ({r1}, {r2}) are larger than the layer allows (at most "
                             f"({conv.in_ch}, {conv.out_ch}): its input and output channels)")


def apply_channels(plan: list[ConvSpec], channels: tuple[int, ...]) -> list[ConvSpec]:
    """A chain ``plan`` with explicit output channels (a pruned model's): layer ``i`` outputs ``channels[i]`` and
    takes the previous layer's output; a depthwise layer keeps one filter per (new) input channel.

    >>> [(c.in_ch, c.out_ch, c.groups) for c in apply_channels([ConvSpec(3, 16, 3, False),
    ...  ConvSpec(16, 16, 3, False, groups=16), ConvSpec(16, 32, 1, False)], (8, 8, 24))]
    [(3, 8, 1), (8, 8, 8), (8, 24, 1)]
    """
    if not channels:
        return list(plan)
    if len(channels) != len(plan):
        raise ValueError(f"the channel plan has {len(channels)} entries for {len(plan)} backbone layers")
    out, in_ch = [], plan[0].in_ch
    for i, (conv, ch) in enumerate(zip(plan, channels)):
        if conv.depthwise:
            if ch != in_ch:
                raise ValueError(f"layer l{i} is depthwise: its channels ({ch}) must equal its input's ({in_ch})")
            out.append(ConvSpec(in_ch, in_ch, conv.kernel, conv.pool, conv.stride, groups=in_ch))
        else:
            out.append(ConvSpec(in_ch, ch, conv.kernel, conv.pool, conv.stride, conv.groups))
        in_ch = ch
    return out


@dataclass(frozen=True)
class DetectorConfig:
    """Everything needed to rebuild a detector; stored in every checkpoint.

    ``bits`` is a bit spec string (``w4a4``, ``w4a4,first=8,last=8``) or None for the float twin, which has the
    same graph without quantizers.

    ``head_strides`` is empty for a single-output detector (one head at the backbone's stride, every anchor on
    it). A multi-scale detector (tinyyolo) lists its outputs' strides in output order, and ``anchors`` holds the
    anchor sets of its outputs one after the other, the same number per output: :attr:`anchor_sets`.
    """

    arch: str
    num_classes: int
    input_size: tuple[int, int]  # (H, W)
    anchors: tuple[Anchor, ...]
    bits: str | None = "w4a4"
    width: float = 1.0
    depth: int = 2
    class_names: tuple[str, ...] = field(default=())
    head_strides: tuple[int, ...] = ()
    # A compressed model's explicit plan. ``channels``: every backbone layer's output channels in bit-spec order
    # (heads excluded), as pruning left them; empty: the architecture's at ``width``. ``factors``: the layers
    # replaced by low-rank factors. Both are stored in every checkpoint, so ``load_model`` rebuilds the very model.
    channels: tuple[int, ...] = ()
    factors: tuple[Factor, ...] = ()

    def __post_init__(self) -> None:
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {self.num_classes}")
        if self.width <= 0:
            raise ValueError(f"--width (channel multiplier) must be > 0, got {self.width}")
        if self.depth < 0:
            raise ValueError(f"--depth must be >= 0, got {self.depth}")
        if not self.anchors:
            raise ValueError("a detector needs at least one anchor")
        if any(s < 1 for s in self.head_strides):
            raise ValueError(f"head strides must be >= 1, got {self.head_strides}")
        if len(self.anchors) % self.num_heads:
            raise ValueError(f"{len(self.anchors)} anchors cannot be split evenly over {self.num_heads} outputs "
                             f"(strides {self.head_strides})")
        if self.class_names and len(self.class_names) != self.num_classes:
            raise ValueError(f"{len(self.class_names)} class names given for {self.num_classes} classes")
        if any(c < 1 for c in self.channels):
            raise ValueError(f"every layer needs at least one channel, the channel plan says {self.channels}")
        layers = [f.layer for f in self.factors]
        if len(set(layers)) != len(layers):
            raise ValueError(f"a layer is factorized twice: {sorted(layers)}")
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
    def num_heads(self) -> int:
        """Outputs (heads) of the detector: 1 unless ``head_strides`` lists several."""
        return max(1, len(self.head_strides))

    @property
    def anchors_per_head(self) -> int:
        return self.num_anchors // self.num_heads

    @property
    def anchor_sets(self) -> tuple[tuple[Anchor, ...], ...]:
        """The anchors of each output, in output order (one set, every anchor, for a single-output detector).

        >>> DetectorConfig("x", 1, (64, 64), ((.1, .1), (.2, .2), (.4, .4), (.8, .8)), head_strides=(16, 8)).anchor_sets
        (((0.1, 0.1), (0.2, 0.2)), ((0.4, 0.4), (0.8, 0.8)))
        """
        k = self.anchors_per_head
        return tuple(self.anchors[i * k:(i + 1) * k] for i in range(self.num_heads))

    @property
    def head_channels(self) -> int:
        """Channels of each head output: its anchors x (4 box + 1 objectness + classes), the layout the host-side
        decode expects."""
        return self.anchors_per_head * (5 + self.num_classes)

    def output_heads(self) -> list[dict[str, Any]]:
        """The decode parameters of every output, in output order: ``output`` (its index), ``stride``, ``grid``
        (rows, cols) and ``anchors`` ((w, h) fractions of the input). Empty for a single-output detector, whose
        decode parameters are the config's ``anchors`` and ``input_size`` themselves."""
        h, w = self.input_size
        return [{"output": i, "stride": s, "grid": [h // s, w // s], "anchors": [list(a) for a in anchors]}
                for i, (s, anchors) in enumerate(zip(self.head_strides, self.anchor_sets))]

    def to_dict(self) -> dict[str, Any]:
        """As JSON-able data. A single-output config serialises exactly as before ``head_strides`` existed
        (checkpoints and exported metadata of those models are unchanged); a multi-scale one also carries
        ``heads`` (:meth:`output_heads`), derived, for readers that decode without this class."""
        data = asdict(self)
        data["factors"] = [f.to_dict() for f in self.factors]
        for key in ("head_strides", "channels", "factors"):  # absent when unused: older files stay byte-identical
            if not data[key]:
                del data[key]
        if self.head_strides:
            data["heads"] = self.output_heads()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DetectorConfig:
        data = dict(data)
        data.pop("heads", None)  # derived from head_strides and anchors
        data["input_size"] = tuple(data["input_size"])
        data["anchors"] = tuple(tuple(a) for a in data["anchors"])
        data["class_names"] = tuple(data.get("class_names", ()))
        data["head_strides"] = tuple(data.get("head_strides", ()))
        data["channels"] = tuple(data.get("channels", ()))
        data["factors"] = tuple(f if isinstance(f, Factor) else Factor.from_dict(f) for f in data.get("factors", ()))
        return cls(**data)

    def with_(self, **changes: Any) -> DetectorConfig:
        """A copy with some fields changed (validated again)."""
        return DetectorConfig.from_dict({**self.to_dict(), **changes})

    def factor_of(self, layer: int) -> Factor | None:
        """The factorization of backbone layer ``layer``, if it has one."""
        return next((f for f in self.factors if f.layer == layer), None)

    @property
    def compressed(self) -> bool:
        """Whether the model carries an explicit (pruned / factorized) plan rather than its architecture's."""
        return bool(self.channels or self.factors)


def order_anchors(anchors: tuple[Anchor, ...], head_strides: tuple[int, ...]) -> tuple[Anchor, ...]:
    """Anchors sorted by area (as k-means gives them) -> anchor sets in output order: the smallest anchors go to
    the finest output (smallest stride), the largest to the coarsest. A single output keeps them as they are.

    >>> order_anchors(((.1, .1), (.2, .2), (.4, .4), (.8, .8)), (16, 8))
    ((0.4, 0.4), (0.8, 0.8), (0.1, 0.1), (0.2, 0.2))
    """
    if len(head_strides) <= 1:
        return anchors
    k = len(anchors) // len(head_strides)
    by_size = sorted(range(len(head_strides)), key=lambda i: head_strides[i])  # output indices, finest first
    sets: dict[int, tuple[Anchor, ...]] = {out: anchors[rank * k:(rank + 1) * k] for rank, out in enumerate(by_size)}
    return tuple(a for out in range(len(head_strides)) for a in sets[out])
