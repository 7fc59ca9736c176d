"""wire over its gRPC stream (transport="grpc"; the data plane is test_split_transport.py): the real
tail server (a subprocess) takes any tensor size and survives bad input; the Assembler's rules
(chunking, views, truncation) checked without a network."""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import split_helpers

from pytest_collab.devicekit import codec, heap, tail_service, wire


@pytest.fixture(scope="module")
def sink():
    proc, port = split_helpers.start_tail("--sink")
    yield f"127.0.0.1:{port}"
    assert split_helpers.stop(proc) == 0


def test_tensor_bigger_than_grpc_default_limit_arrives_intact(sink):
    arr = np.random.default_rng(0).standard_normal((3, 1024, 1024)).astype(np.float32)  # 12 MiB
    assert arr.nbytes > 4 * 1024 * 1024
    with wire.TensorClient(sink, transport="grpc") as client:
        for comp in (codec.Compression("none"), codec.Compression()):
            data, meta = codec.pack(arr, "fp32", comp)
            reply = client.send([(data, meta)])
            assert reply.body["ok"] and reply.body["checksum"] == pytest.approx(float(arr.astype(np.float64).sum()))


@pytest.mark.parametrize("size", [0, 1, wire.CHUNK - 1, wire.CHUNK, wire.CHUNK + 1, 3 * wire.CHUNK])
def test_sizes_around_the_chunk_boundary_arrive_intact(sink, size):
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8)
    with wire.TensorClient(sink, transport="grpc") as client:
        reply = client.send([codec.pack(data, "raw", codec.Compression("none"))])
        assert reply.body["checksum"] == float(data.sum(dtype=np.int64))


def _meta(n: int) -> dict:
    return {"shape": [n], "wire_dtype": "|u1", "dtype": "|u1", "encoding": "raw", "codec": "none"}


@pytest.mark.parametrize("chunk", [1, 3, 4, 5, 100])
def test_assembler_rebuilds_any_chunking_and_keeps_one_message_tensors_as_views(chunk):
    data = bytes(range(10)) * 2
    asm = tail_service.Assembler()
    done = [o for m in wire.request_messages(1, [(data, _meta(20))], chunk=chunk) for o in asm.feed(m)]
    assert len(done) == 1 and isinstance(done[0], tail_service.Request) and bytes(done[0].data) == data
    # a read-only view of the one message (no copy), or its own writable buffer (copied once)
    assert isinstance(done[0].data, memoryview) and done[0].data.readonly == (chunk >= 20)


def _errors(messages: list[bytes]) -> list[str]:
    asm = tail_service.Assembler()
    outs = [o for m in messages for o in asm.feed(m)] + list(asm.end())
    return [wire.parse_reply(o)[0]["error"] for o in outs if isinstance(o, bytes)]


def test_request_of_two_tensors_round_trips_through_the_server(sink):
    """A cut inside a residual block sends two tensors: one request, both intact, in order,
    whatever their encodings and however the chunks split them."""
    x = np.random.default_rng(1).standard_normal((2, 8, 300, 300)).astype(np.float32)   # > 1 chunk
    skip = np.arange(2 * 4 * 5, dtype=np.int64).reshape(2, 4, 5)
    parts = codec.pack_all([x, skip], codec.plan([("x", x.dtype), ("skip", skip.dtype)], "fp16"), codec.Compression())
    assert [m["encoding"] for _, m in parts] == ["fp16", "raw"]
    with wire.TensorClient(sink, transport="grpc") as client:
        reply = client.send(parts)
    sums = reply.body["checksums"]
    assert sums[1] == float(skip.sum()) and sums[0] == pytest.approx(float(x.astype(np.float64).sum()), abs=5.0)
    assert reply.body["checksum"] == pytest.approx(sum(sums))


@pytest.mark.parametrize("chunk", [1, 5, 7, 12, 1000])
def test_assembler_splits_a_request_back_into_its_tensors(chunk):
    a, b = bytes(range(7)), bytes(range(100, 105))
    asm = tail_service.Assembler()
    done = [o for m in wire.request_messages(4, [(a, _meta(7)), (b, _meta(5))], chunk=chunk) for o in asm.feed(m)]
    assert len(done) == 1 and [bytes(v) for v, _ in done[0].tensors()] == [a, b]
    assert [codec.decode(v, m).tolist() for v, m in done[0].tensors()] == [list(a), list(b)]


def test_reply_carries_several_outputs_in_their_own_dtypes():
    outs = [np.arange(6, dtype=np.float32).reshape(2, 3), np.array([[True], [False]]), np.zeros((0, 4), np.int16)]
    body, got = wire.parse_reply(wire.reply_message({"id": 1, "ok": True}, outs))
    assert [o.dtype for o in got] == [o.dtype for o in outs]
    assert all(np.array_equal(g, o) for g, o in zip(got, outs))
    assert wire.parse_reply(wire.reply_message({"id": 1}))[1] is None


def test_assembler_reports_stream_end_mid_tensor():
    assert "stream ended after 3 of 10" in _errors([wire.header_message(1, [(10, {})], first=b"abc")])[0]


def test_assembler_rejects_json_length_past_the_message():
    assert "runs past" in _errors([b"H" + struct.pack("<I", 999) + json.dumps({"id": 1}).encode()])[0]


@pytest.mark.parametrize("bad, expect", [
    ([b"C" + b"x" * 100], "without a header"),
    ([b"Hnot json"], "malformed header"),
    ([b"H" + struct.pack("<I", 9) + b'{"id": 1}'], "malformed header"),
    ([b"Zwhat"], "unknown message kind"),
    ([wire.header_message(7, [(10, {})]), b"C" + b"y" * 20], "header said 10"),
    ([wire.header_message(6, [(2, {})], first=b"abc")], "header said 2"),
    ([wire.header_message(5, [(1 << 50, {})])], "outside 0.."),
    ([wire.header_message(4, [(-1, {})])], "outside 0.."),
    ([wire.header_message(3, [(4, {}), (-4, {})], first=b"")], "outside 0.."),
    ([wire.header_message(2, [], first=b"")], "a request carries 1.."),
    ([b"H" + struct.pack("<I", 26) + b'{"id": 1, "tensors": [{}]}'], "malformed header"),
    ([wire.header_message(8, [(8, {"shape": [3], "wire_dtype": "<f4", "encoding": "fp32", "codec": "none"})]),
      b"C" + b"z" * 8], "truncated or the header is wrong"),
    ([wire.header_message(9, [(4, {"shape": [1], "wire_dtype": "<f4", "encoding": "fp32", "codec": "lz4"})],
                          first=b"1234")], "damaged or truncated"),
])
def test_malformed_message_gets_error_reply_and_server_keeps_serving(sink, bad, expect):
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    with wire.TensorClient(sink, transport="grpc") as client:
        reply = client.send_raw(bad)
        assert reply.body["ok"] is False and expect in reply.body["error"]
        good = client.send([codec.pack(arr, "int8", codec.Compression())])  # same stream goes on
        assert good.body["checksum"] == pytest.approx(66.0, abs=0.5)


def test_new_header_mid_tensor_reports_truncation_then_serves_the_new_tensor(sink):
    data, meta = codec.pack(np.full(6, 2.0, np.float32), "fp32", codec.Compression())
    with wire.TensorClient(sink, transport="grpc") as client:
        first = client.send_raw([wire.header_message(10, [(100, {})], first=b"a" * 10),
                                 *wire.request_messages(11, [(data, meta)])])
        assert first.body["id"] == 10 and "truncated" in first.body["error"]
        second = client.read()
        assert second.body["id"] == 11 and second.body["ok"] and second.body["checksum"] == 12.0


def test_stream_cut_mid_tensor_leaves_server_serving(sink):
    client = wire.TensorClient(sink, transport="grpc")
    client.write([wire.header_message(1, [(1 << 20, {})], first=b"0" * 1000)])
    client.close()  # ends the stream 1000 bytes into a 1 MiB tensor
    with wire.TensorClient(sink, transport="grpc") as again:
        assert again.send([codec.pack(np.ones(5, np.float32), "fp16", codec.Compression())]).body["checksum"] == 5.0


def test_no_server_error_names_the_address():
    with pytest.raises(wire.WireError, match="127.0.0.1:9"):
        wire.TensorClient("127.0.0.1:9", timeout=1.0)


def test_link_probe_counts_bytes(sink):
    with wire.TensorClient(sink, transport="grpc") as client:
        assert client.measure_link(4 << 20) > 0


def test_clients_in_parallel_threads_each_get_their_own_replies(sink):
    """head_client's server mode: one client (own loop, own stream) per query thread,
    all closed afterwards from the main thread."""
    import concurrent.futures
    import threading

    local, clients = threading.local(), []

    def query(i: int) -> float:
        if not hasattr(local, "client"):
            local.client = wire.TensorClient(sink, transport="grpc")
            clients.append(local.client)
        arr = np.full(1000 + i, float(i), np.float32)
        return local.client.send([codec.pack(arr, "fp32", codec.Compression())]).body["checksum"]

    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        sums = list(pool.map(query, range(24)))
    for c in clients:
        c.close()
    assert sums == [float(i * (1000 + i)) for i in range(24)] and len(clients) > 1


def test_pipelined_sends_get_one_reply_each_in_order(sink):
    arrays = [np.full(n, float(i), np.float32) for i, n in enumerate([3, wire.CHUNK, 5, 2 * wire.CHUNK // 4 + 7])]
    with wire.TensorClient(sink, transport="grpc") as client:
        replies = client.send_pipelined(([codec.pack(a, "fp32", codec.Compression())] for a in arrays), window=3)
        ids = [r.body["id"] for r in replies]
        assert [r.body["checksum"] for r in replies] == [float(a.sum(dtype=np.float64)) for a in arrays]
        assert ids == sorted(ids) and len(set(ids)) == 4 and all(r.rpc_s > 0 for r in replies)
        assert client.send([codec.pack(np.ones(2, np.float32), "fp32", codec.Compression())]).body["checksum"] == 2.0


def test_pipelined_error_reply_names_the_rejected_tensor(sink):
    good = codec.pack(np.ones(4, np.float32), "fp32", codec.Compression("none"))
    bad = (good[0], {**good[1], "shape": [5]})  # 16 bytes cannot hold 5 float32
    with wire.TensorClient(sink, transport="grpc") as client:
        with pytest.raises(wire.WireError, match=r"rejected request 2: .*truncated or the header is wrong"):
            client.send_pipelined([[good], [bad], [good]], window=2)
        with pytest.raises(ValueError, match="window must be at least 1"):
            client.send_pipelined([[good]], window=0)


def test_heap_pad_keeps_received_messages_resident():
    """The tail server's top pad (devicekit/heap.py): receiving 1 MiB messages stops faulting fresh
    pages in, measured as the server process's minor page faults with the pad and without."""
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("minor page faults are read from /proc (Linux)")
    arr = np.ones(1 << 18, np.float32)  # 1 MiB

    def faults_per_tensor(pad: str) -> float:
        proc, port = split_helpers.start_tail("--sink", "--no-checksum", "--heap-pad", pad)
        try:
            with wire.TensorClient(f"127.0.0.1:{port}", transport="grpc") as client:
                def run(count: int) -> None:
                    client.send_pipelined(([codec.pack(arr, "fp32", codec.Compression("none"))]
                                           for _ in range(count)), 2, outputs=False)
                run(20)  # warm: arenas and gRPC buffers exist before counting
                before = _minor_faults(proc.pid)
                run(150)
                return (_minor_faults(proc.pid) - before) / 150
        finally:
            split_helpers.stop(proc)

    padded, default = faults_per_tensor("64"), faults_per_tensor("0")
    assert padded * 3 < default, f"minor faults per 1 MiB tensor: {padded:.1f} padded, {default:.1f} default"


def _minor_faults(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[7])


def test_heap_pad_reports_what_it_did(monkeypatch):
    assert heap.keep_freed_heap(0) == "heap: glibc default (no top pad)"
    monkeypatch.setenv("MALLOC_TOP_PAD_", "1048576")
    assert "left to the environment" in heap.keep_freed_heap(64)
