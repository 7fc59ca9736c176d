"""wire: the real tail server (a subprocess) takes any tensor size and survives bad input."""
from __future__ import annotations

import numpy as np
import pytest

import split_helpers
import codec
import wire


@pytest.fixture(scope="module")
def sink():
    proc, port = split_helpers.start_tail("--sink")
    yield f"127.0.0.1:{port}"
    assert split_helpers.stop(proc) == 0


def test_tensor_bigger_than_grpc_default_limit_arrives_intact(sink):
    arr = np.random.default_rng(0).standard_normal((3, 1024, 1024)).astype(np.float32)  # 12 MiB
    assert arr.nbytes > 4 * 1024 * 1024
    with wire.TensorClient(sink) as client:
        for comp in (codec.Compression("none"), codec.Compression()):
            data, meta = codec.pack(arr, "fp32", comp)
            reply = client.send(data, meta)
            assert reply.body["ok"] and reply.body["checksum"] == pytest.approx(float(arr.astype(np.float64).sum()))


@pytest.mark.parametrize("bad, expect", [
    ([b"C" + b"x" * 100], "without a header"),
    ([b"Hnot json"], "malformed header"),
    ([b"H" + b'{"id": 1}'], "malformed header"),
    ([b"Zwhat"], "unknown message kind"),
    ([wire.header_message(7, 10, {}), b"C" + b"y" * 20], "header said 10"),
    ([wire.header_message(8, 8, {"shape": [3], "wire_dtype": "<f4", "encoding": "fp32", "codec": "none"}),
      b"C" + b"z" * 8], "truncated or the header is wrong"),
    ([wire.header_message(9, 4, {"shape": [1], "wire_dtype": "<f4", "encoding": "fp32", "codec": "lz4"}),
      b"C1234"], "damaged or truncated"),
])
def test_malformed_message_gets_error_reply_and_server_keeps_serving(sink, bad, expect):
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    with wire.TensorClient(sink) as client:
        reply = client.send_raw(bad)
        assert reply.body["ok"] is False and expect in reply.body["error"]
        good = client.send(*codec.pack(arr, "int8", codec.Compression()))  # same stream goes on
        assert good.body["checksum"] == pytest.approx(66.0, abs=0.5)


def test_new_header_mid_tensor_reports_truncation_then_serves_the_new_tensor(sink):
    data, meta = codec.pack(np.full(6, 2.0, np.float32), "fp32", codec.Compression())
    with wire.TensorClient(sink) as client:
        first = client.send_raw([wire.header_message(10, 100, {}), b"C" + b"a" * 10,
                                 wire.header_message(11, len(data), meta), *wire.chunk_messages(data)])
        assert first.body["id"] == 10 and "truncated" in first.body["error"]
        second, _ = wire.parse_reply(next(client._replies))
        assert second["id"] == 11 and second["ok"] and second["checksum"] == 12.0


def test_stream_cut_mid_tensor_leaves_server_serving(sink):
    client = wire.TensorClient(sink)
    client._q.put(wire.header_message(1, 1 << 20, {}))
    client._q.put(b"C" + b"0" * 1000)
    client.close()  # ends the stream 1000 bytes into a 1 MiB tensor
    with wire.TensorClient(sink) as again:
        assert again.send(*codec.pack(np.ones(5, np.float32), "fp16", codec.Compression())).body["checksum"] == 5.0


def test_no_server_error_names_the_address():
    with pytest.raises(wire.WireError, match="127.0.0.1:9"):
        wire.TensorClient("127.0.0.1:9", timeout=1.0)


def test_link_probe_counts_bytes(sink):
    with wire.TensorClient(sink) as client:
        assert client.measure_link(4 << 20) > 0
