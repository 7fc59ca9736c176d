"""codec: every shape and dtype round-trips; fp16 and int8 stay inside their stated bounds."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pytest_collab.devicekit import codec

COMPRESSIONS = [codec.Compression("none"), codec.Compression(), codec.Compression("zstd", "bitshuffle", 9),
                codec.Compression("blosclz", "nofilter", 1)]
shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=7)
dtypes = st.one_of(hnp.integer_dtypes(), hnp.unsigned_integer_dtypes(), hnp.floating_dtypes(),
                   hnp.complex_number_dtypes(), hnp.boolean_dtypes())


@settings(max_examples=150, deadline=None)
@given(arr=hnp.arrays(dtypes, shapes), comp=st.sampled_from(COMPRESSIONS))
def test_raw_roundtrips_any_shape_and_dtype(arr, comp):
    data, meta = codec.pack(arr, "raw", comp)
    out = codec.unpack(data, meta)
    assert out.dtype == arr.dtype and out.shape == arr.shape
    assert out.tobytes() == np.ascontiguousarray(arr).tobytes()


finite32 = hnp.arrays(np.float32, shapes, elements=st.floats(-1e4, 1e4, width=32))


@settings(max_examples=150, deadline=None)
@given(arr=finite32, comp=st.sampled_from(COMPRESSIONS))
def test_fp32_exact_fp16_and_int8_within_bounds(arr, comp):
    assert np.array_equal(codec.unpack(*codec.pack(arr, "fp32", comp)), arr)
    half = codec.unpack(*codec.pack(arr, "fp16", comp))
    # fp16: relative 2**-11 in the normal range, absolute 2**-25 (half a subnormal step) below it
    assert np.all(np.abs(half - arr) <= np.maximum(np.abs(arr) * 2.0 ** -11, 2.0 ** -25))
    data, meta = codec.pack(arr, "int8", comp)
    q = codec.unpack(data, meta)
    assert q.shape == arr.shape
    assert np.all(np.abs(q - arr) <= meta["scale"] / 2 * (1 + 1e-5) + 1e-6 * np.abs(arr))


def test_int8_keeps_zero_exact_and_uses_one_byte():
    x = np.maximum(np.random.default_rng(1).normal(size=(1, 64, 56, 56)), 0).astype(np.float32)
    enc = codec.encode(x, "int8")
    assert len(enc.data) == x.size
    assert np.all(codec.decode(enc.data, enc.meta)[x == 0] == 0)


@pytest.mark.parametrize("encoding", ["fp32", "fp16", "int8"])
def test_float_encodings_reject_integer_tensors(encoding):
    with pytest.raises(codec.CodecError, match="raw"):
        codec.encode(np.arange(4), encoding)


def test_int8_rejects_non_finite():
    with pytest.raises(codec.CodecError, match="finite"):
        codec.encode(np.array([1.0, np.inf], np.float32), "int8")


def test_truncated_payload_and_damaged_frame_are_named():
    data, meta = codec.pack(np.ones((4, 4), np.float32), "fp32", codec.Compression("none"))
    with pytest.raises(codec.CodecError, match="truncated"):
        codec.unpack(data[:-3], meta)
    data, meta = codec.pack(np.ones((4, 4), np.float32), "fp32", codec.Compression())
    with pytest.raises(codec.CodecError, match="damaged or truncated"):
        codec.unpack(data[: len(data) // 2], meta)


def test_unknown_codec_lists_choices():
    with pytest.raises(codec.CodecError, match="zstd"):
        codec.compress(b"abcd", 4, codec.Compression("snappy"))


@pytest.mark.parametrize("comp", COMPRESSIONS[1:], ids=lambda c: f"{c.codec}-{c.filter}-{c.level}")
def test_every_truncation_of_a_frame_is_an_error_not_a_crash(comp):
    """blosc2 itself reads past a cut frame (it segfaulted the test run): the tail server
    must get a CodecError for every prefix, since the wire can deliver any of them."""
    arr = np.random.default_rng(2).standard_normal((8, 64, 16)).astype(np.float32)
    data, meta = codec.pack(arr, "fp32", comp)
    for cut in range(len(data)):
        with pytest.raises(codec.CodecError, match="damaged or truncated"):
            codec.unpack(data[:cut] if cut else data[:1], meta)


def test_int8_of_subnormal_range_stays_within_its_bound():
    """Found by hypothesis: (max - min) / 255 of subnormals is 0 in float32 (x / 0 = inf)."""
    x = np.array([8e-45, 0.0, 3e-44], np.float32)
    data, meta = codec.pack(x, "int8", codec.Compression("none"))
    assert np.all(np.abs(codec.unpack(data, meta) - x) <= meta["scale"] / 2)


def test_int8_scale_and_zero_point_map_the_range_onto_int8():
    x = np.array([-1.0, 0.0, 0.5, 3.0], np.float32)
    enc = codec.encode(x, "int8")
    scale, zp = enc.meta["scale"], enc.meta["zero_point"]
    assert scale == pytest.approx(4.0 / 255) and zp == -128 + round(1.0 / scale)
    q = np.frombuffer(enc.data, np.int8)
    assert q.min() == -128 and q.max() == 127 and q[1] == zp          # min, max and an exact zero
    out = codec.decode(enc.data, enc.meta)
    assert out.dtype == np.float32 and np.all(np.abs(out - x) <= scale / 2 + 1e-7) and out[1] == 0.0


@pytest.mark.parametrize("dtype, expect", [("float32", "int8"), ("float16", "int8"), ("torch.float64", "int8"),
                                           ("int64", "raw"), ("bool", "raw"), ("uint8", "raw")])
def test_plan_sends_floats_as_asked_and_integers_bit_exact(dtype, expect):
    assert codec.plan([("t", dtype)], "int8") == [expect]
    assert codec.plan([("t", dtype)], "raw") == ["raw"]


@pytest.mark.parametrize("dtype", ["bfloat16", "torch.float8_e4m3fn", "torch.qint8", "object", "<U3", "nonsense"])
def test_plan_rejects_what_the_codec_cannot_carry_naming_the_tensor(dtype):
    """The controller calls plan() on the head's sidecar before any device starts."""
    with pytest.raises(codec.CodecError, match=r"tensor 'skip' of dtype .*cast that boundary tensor"):
        codec.plan([("x", "float32"), ("skip", dtype)], "fp16")


def test_plan_rejects_an_unknown_encoding():
    with pytest.raises(codec.CodecError, match="fp32, fp16, int8, raw"):
        codec.plan([("x", "float32")], "fp8")
