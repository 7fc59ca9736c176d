"""Tensor encoding (fp32 / fp16 / int8 / raw) and blosc2 compression for the wire.

Runs on the devices: numpy and blosc2 only. Encoding and compression are separate
steps so the client can time them apart and the benchmark can compare settings.
:func:`plan` decides each boundary tensor's encoding from its dtype alone, so the
controller can reject a tensor the codec cannot carry before any device starts.

Error bounds (what tests/test_split_codec.py checks):
  fp32  exact for float32 input;
  fp16  relative error <= 2**-11 for |x| in fp16's normal range (6.1e-5 .. 65504);
  int8  per-tensor affine quantisation, abs error <= scale / 2 (+ float rounding),
        scale = (max - min) / 255;
  raw   the array's own dtype, bit exact (the uint8 image of the full-offload baseline).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Union

import numpy as np

Buffer = Union[bytes, bytearray, memoryview]
ENCODINGS = ("fp32", "fp16", "int8", "raw")
# Defaults chosen from benchmarks/bench_split_codec.py (see docs/split_resnet.md).
DEFAULT_CODEC = "zstd"
DEFAULT_FILTER = "shuffle"
DEFAULT_LEVEL = 1


class CodecError(ValueError):
    """A tensor can not be encoded/decoded as asked; the message says why and what to do."""


@dataclass
class Encoded:
    """An encoded tensor: its bytes plus everything the receiver needs to decode them.

    ``data`` may be a view of the array that was encoded (when no conversion was needed):
    send it before that array changes, or copy it with ``bytes(data)``.
    """

    data: memoryview
    meta: dict[str, Any] = field(default_factory=dict)


def encode(arr: np.ndarray, encoding: str) -> Encoded:
    """Encode ``arr`` for the wire; ``meta`` carries shape, dtype and quantisation."""
    arr = np.asarray(arr)
    meta: dict[str, Any] = {"encoding": encoding, "shape": list(arr.shape), "dtype": arr.dtype.str}
    if encoding == "raw":
        out = np.ascontiguousarray(arr)
    elif encoding in ("fp32", "fp16"):
        _require_float(arr, encoding)
        out = np.ascontiguousarray(arr, dtype=np.float32 if encoding == "fp32" else np.float16)
    elif encoding == "int8":
        _require_float(arr, encoding)
        out, meta["scale"], meta["zero_point"] = _quantize(arr)
    else:
        raise CodecError(f"unknown encoding {encoding!r}; choose one of {', '.join(ENCODINGS)}")
    meta["wire_dtype"] = out.dtype.str
    # A byte view, not tobytes(): fp32 of a contiguous float32 array (the common split tensor)
    # then costs no copy at all; the message that carries it is the one copy made.
    return Encoded(memoryview(out.reshape(-1).view(np.uint8).data), meta)


def decode(data: Buffer, meta: dict[str, Any]) -> np.ndarray:
    """Inverse of :func:`encode`: floats come back as float32, raw as its own dtype."""
    return decoder(meta)(data)


@dataclass(frozen=True)
class Decoder:
    """One tensor meta, checked and parsed once: a stream repeats the same metas, and on a
    small tensor parsing them (dtype strings, the shape) was most of the decode. ``codec``
    is the blosc2 codec to :func:`decompress` with first; calling decodes."""

    shape: tuple[int, ...]
    wire: np.dtype
    nbytes: int
    encoding: str
    codec: str
    cast: np.dtype | None = None   # raw: the array's dtype when the wire's differs
    scale: float = 1.0
    zero_point: int = 0

    def __call__(self, data: Buffer) -> np.ndarray:
        if len(data) != self.nbytes:
            raise CodecError(
                f"payload has {len(data)} bytes but shape {list(self.shape)} of {self.wire} needs "
                f"{self.nbytes}: the message was truncated or the header is wrong")
        arr = np.ndarray(self.shape, self.wire, data)   # a view; a third of frombuffer + reshape
        if self.encoding == "int8":
            return ((arr.astype(np.float32) - np.float32(self.zero_point)) * np.float32(self.scale)).astype(np.float32)
        if self.cast is not None:
            return arr.astype(self.cast, copy=False)
        return arr


def decoder(meta: dict[str, Any]) -> Decoder:
    """The :class:`Decoder` of a tensor's meta; CodecError when the meta is unusable."""
    try:
        shape = tuple(map(int, meta["shape"]))
        wire = np.dtype(meta["wire_dtype"])
        encoding, compressed = meta["encoding"], str(meta.get("codec", "none"))
        if encoding == "raw":
            cast = np.dtype(meta["dtype"])
        elif encoding in ("fp32", "fp16"):
            cast = np.dtype(np.float32)
        elif encoding == "int8":
            return Decoder(shape, wire, math.prod(shape) * wire.itemsize, encoding, compressed,
                           scale=float(meta["scale"]), zero_point=int(meta["zero_point"]))
        else:
            raise CodecError(f"unknown encoding {encoding!r} in the tensor header")
    except CodecError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise CodecError(f"tensor header lacks or garbles shape/wire_dtype/encoding: {exc}") from exc
    # math.prod, not np.prod: a third of a small tensor's decode
    return Decoder(shape, wire, math.prod(shape) * wire.itemsize, encoding, compressed,
                   None if cast == wire else cast)


def encoding_for(dtype: Any, encoding: str, name: str = "tensor") -> str:
    """The encoding a tensor of ``dtype`` travels in when ``encoding`` was asked for.

    Floating tensors take ``encoding``; bool and integer tensors (masks, indices) always go
    ``raw``, bit exact, since rounding them would change their meaning; complex ones too.
    Anything numpy cannot hold as a plain array (bfloat16, float8, quantized, strings,
    objects) is a :class:`CodecError` naming ``name``.
    """
    if encoding not in ENCODINGS:
        raise CodecError(f"unknown encoding {encoding!r}; choose one of {', '.join(ENCODINGS)}")
    text = str(dtype).removeprefix("torch.")
    try:
        dt = np.dtype(text)
    except TypeError:
        dt = None
    if dt is None or dt.kind not in "biufc" or dt.hasobject:
        raise CodecError(
            f"the codec cannot encode tensor {name!r} of dtype {text!r} (it sends bool, integer, "
            "float16/32/64 and complex arrays): cast that boundary tensor to float32 in the model, "
            "or cut at another point")
    if encoding == "raw" or dt.kind != "f":
        return "raw"
    return encoding


def plan(tensors: Iterable[tuple[str, Any]], encoding: str) -> list[str]:
    """Per ``(name, dtype)`` the encoding it travels in (see :func:`encoding_for`); the
    controller calls this on the artifact's sidecar before starting any device."""
    return [encoding_for(dtype, encoding, name) for name, dtype in tensors]


def _require_float(arr: np.ndarray, encoding: str) -> None:
    if arr.dtype.kind != "f":
        raise CodecError(f"encoding {encoding!r} needs a floating tensor, got {arr.dtype}; use 'raw'")


def _quantize(arr: np.ndarray) -> tuple[np.ndarray, float, int]:
    """Per-tensor affine int8: q = round(x / scale) + zp, mapping [min, max] onto [-128, 127]."""
    x = arr.astype(np.float32, copy=False)
    if x.size == 0:
        return np.zeros(x.shape, np.int8), 1.0, 0
    lo, hi = float(x.min()), float(x.max())
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise CodecError("int8 needs finite values (the tensor holds inf or nan); use fp16 or fp32")
    lo, hi = min(lo, 0.0), max(hi, 0.0)      # keep 0 exact: ReLU outputs are mostly zeros
    # A range of subnormals would give a scale that is 0 in float32 (x / 0 = inf): floor it at
    # float32's smallest normal, which still keeps |error| <= scale / 2.
    scale = max((hi - lo) / 255.0, float(np.finfo(np.float32).tiny)) if hi > lo else 1.0
    zp = int(np.clip(-128 - round(lo / scale), -128, 127))
    q = np.clip(np.rint(x / np.float32(scale)) + zp, -128, 127).astype(np.int8)
    return q, scale, zp


@dataclass(frozen=True)
class Compression:
    """blosc2 settings; ``codec='none'`` sends the encoded bytes as they are."""

    codec: str = DEFAULT_CODEC
    filter: str = DEFAULT_FILTER
    level: int = DEFAULT_LEVEL

    def describe(self) -> dict[str, Any]:
        return {"codec": self.codec, "filter": self.filter, "level": self.level}


def compress(data: Buffer, typesize: int, comp: Compression) -> Buffer:
    """Compress with blosc2; ``typesize`` is the element size the shuffle filters need.
    ``codec='none'`` hands ``data`` back as it is (no copy)."""
    if comp.codec == "none" or not len(data):
        return data
    import blosc2

    try:
        codec = blosc2.Codec[comp.codec.upper()]
        filt = blosc2.Filter[comp.filter.upper()]
    except KeyError as exc:
        raise CodecError(
            f"unknown blosc2 codec/filter {comp.codec!r}/{comp.filter!r}; codecs: "
            f"{', '.join(c.name.lower() for c in blosc2.Codec)}, filters: "
            f"{', '.join(f.name.lower() for f in blosc2.Filter)}") from exc
    return blosc2.compress(data, typesize=typesize, clevel=int(comp.level), filter=filt, codec=codec)


def decompress(data: Buffer, codec: str) -> Buffer:
    """Inverse of :func:`compress`; the blosc2 frame carries its own settings. Takes any
    buffer without copying it (the wire hands over views of received messages). Returns a
    bytearray when it decompresses, so the decoded array is writable (torch warns on
    read-only); ``codec='none'`` returns ``data`` itself."""
    if codec == "none" or not len(data):
        return data
    import blosc2

    try:
        # blosc2 reads past the end of a truncated chunk (it can segfault the tail server):
        # check the chunk's own compressed size against what arrived before decompressing.
        _, cbytes, _ = blosc2.get_cbuffer_sizes(data)
        if cbytes != len(data):
            raise ValueError(f"its header says {cbytes} compressed bytes")
        return blosc2.decompress(data, as_bytearray=True)
    except Exception as exc:  # blosc2 raises RuntimeError/ValueError on a damaged frame
        raise CodecError(f"blosc2 could not decompress {len(data)} bytes ({exc}): damaged or truncated") from exc


def pack(arr: np.ndarray, encoding: str, comp: Compression) -> tuple[Buffer, dict[str, Any]]:
    """encode + compress in one call (for callers that do not time the two apart)."""
    enc = encode(arr, encoding)
    wire = compress(enc.data, np.dtype(enc.meta["wire_dtype"]).itemsize, comp)
    return wire, {**enc.meta, **comp.describe()}


def unpack(data: Buffer, meta: dict[str, Any]) -> np.ndarray:
    """decompress + decode in one call."""
    return decode(decompress(data, meta.get("codec", "none")), meta)


def pack_all(arrays: Iterable[np.ndarray], encodings: Iterable[str],
             comp: Compression) -> list[tuple[Buffer, dict[str, Any]]]:
    """:func:`pack` for each boundary tensor with its own encoding (see :func:`plan`)."""
    return [pack(a, e, comp) for a, e in zip(arrays, encodings, strict=True)]
