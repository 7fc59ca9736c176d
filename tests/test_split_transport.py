"""The wire's data plane (devicekit/dataplane.py, data_service.py, shm.py) against real tail
processes: every transport round-trips any shape and dtype, a connection without the session
token is rejected, a truncated or malformed frame gets an error and the server goes on,
and a side port that cannot be had falls back to gRPC (or fails clearly when forced)."""
from __future__ import annotations

import json
import socket
import subprocess
import sys

import numpy as np
import pytest
import split_helpers
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pytest_collab.devicekit import codec, dataplane, shm, wire

TRANSPORTS = ["grpc", "tcp", "shm"]
# A tail whose model is the identity: the reply's outputs are the request's tensors, so a
# round trip checks shape, dtype and bytes both ways. ``refuse`` makes Open offer a port
# nobody listens on (what a firewall's reject looks like to the client).
ECHO = r"""
import socket, sys
from pytest_collab.devicekit import data_service, tail_service
if sys.argv[1] == "refuse":
    s = socket.socket(); s.bind(("127.0.0.1", 0)); dead = s.getsockname()[1]; s.close()
    offer = data_service.DataServer.open
    async def refused(self, request, context):
        if self.listener is not None:
            self.listener.close(); self.listener = None
        body = (await offer(self, request, context)).replace(b'"port": null', b'"port": %d' % dead)
        return body
    data_service.DataServer.open = refused
tail_service.run_until_signalled(lambda arrays: arrays, "127.0.0.1", 0,
                                 lambda port: print(f"READY port={port}", flush=True))
"""


def start_echo(mode: str = "normal") -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-c", ECHO, mode], env=split_helpers.device_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("READY port="), line + proc.stdout.read()
    return proc, f"127.0.0.1:{int(line.split('=')[1])}"


@pytest.fixture(scope="module")
def echo():
    proc, address = start_echo()
    clients = {t: wire.TensorClient(address, transport=t) for t in TRANSPORTS}
    yield clients
    for c in clients.values():
        c.close()
    assert split_helpers.stop(proc) == 0


@pytest.fixture(scope="module")
def sink():
    proc, port = split_helpers.start_tail("--sink")
    yield f"127.0.0.1:{port}"
    assert split_helpers.stop(proc) == 0


shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=9)
dtypes = st.one_of(hnp.integer_dtypes(), hnp.unsigned_integer_dtypes(), hnp.floating_dtypes(),
                   hnp.complex_number_dtypes(), hnp.boolean_dtypes())


@settings(max_examples=60, deadline=None)
@given(arrays=st.lists(hnp.arrays(dtypes, shapes), min_size=1, max_size=3),
       comp=st.sampled_from([codec.Compression("none"), codec.Compression()]))
def test_every_transport_round_trips_any_shape_and_dtype(echo, arrays, comp):
    parts = [codec.pack(a, "raw", comp) for a in arrays]
    for transport, client in echo.items():
        assert client.transport == transport
        reply = client.send(parts)
        assert len(reply.outputs) == len(arrays), transport
        for got, arr in zip(reply.outputs, arrays):
            assert got.dtype == arr.dtype and got.shape == arr.shape, transport
            assert got.tobytes() == np.ascontiguousarray(arr).tobytes(), transport


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_large_and_pipelined_requests_arrive_intact(sink, transport):
    """Past gRPC's 4 MiB message limit, a segment that has to grow, several in flight."""
    sizes = [3, 1 << 20, 5, (9 << 20) // 4 + 7, 2]
    with wire.TensorClient(sink, transport=transport) as client:
        assert client.transport == transport
        requests = ([codec.pack(np.full(n, float(i), np.float32), "fp32", codec.Compression("none"))]
                    for i, n in enumerate(sizes))
        replies = client.send_pipelined(requests, window=2)
        assert [r.body["checksum"] for r in replies] == [float(i * n) for i, n in enumerate(sizes)]
        ids = [r.body["id"] for r in replies]
        assert ids == sorted(ids) and len(set(ids)) == len(sizes)


def test_auto_picks_shared_memory_on_one_host(sink):
    with wire.TensorClient(sink) as client:
        assert client.transport == ("shm" if shm.available() else "tcp")


def _offer(address: str, want: str = "tcp") -> dict:
    import grpc

    with grpc.insecure_channel(address) as channel:
        return json.loads(channel.unary_unary(dataplane.OPEN)(json.dumps({"want": want}).encode(), timeout=10))


def _session(address: str) -> socket.socket:
    offer = _offer(address)
    sock = socket.create_connection(("127.0.0.1", offer["port"]), timeout=10)
    sock.sendall(bytes.fromhex(offer["token"]))
    return sock


def _reply(sock: socket.socket) -> dict:
    return dataplane.parse_frame(dataplane.read_frame(sock, "test"))[0]


def _raw_meta(n: int) -> dict:
    return {"shape": [n], "wire_dtype": "|u1", "dtype": "|u1", "encoding": "raw", "codec": "none"}


def test_connection_without_the_session_token_is_rejected(sink):
    offer = _offer(sink)
    frame = wire.header_message(1, [(4, _raw_meta(4))], first=b"abcd")
    for opening in (frame, bytes.fromhex(offer["token"])[:8] + frame):  # no token, a wrong one
        with socket.create_connection(("127.0.0.1", offer["port"]), timeout=10) as sock:
            sock.sendall(opening)
            body = _reply(sock)
            assert body["ok"] is False and "session token" in body["error"]
            assert sock.recv(1) == b""  # and closed (after the client's bytes were drained, no reset)
    with _session(sink) as sock:  # a token works once: a second connection with it is refused
        sock.sendall(frame)
        assert _reply(sock)["ok"] is True


def test_token_is_single_use(sink):
    offer = _offer(sink)
    first = socket.create_connection(("127.0.0.1", offer["port"]), timeout=10)
    first.sendall(bytes.fromhex(offer["token"]) + wire.header_message(1, [(1, _raw_meta(1))], first=b"\x05"))
    assert _reply(first)["checksum"] == 5.0  # the session is established before the second try
    with first, socket.create_connection(("127.0.0.1", offer["port"]), timeout=10) as second:
        second.sendall(bytes.fromhex(offer["token"]) + wire.header_message(2, [(1, _raw_meta(1))], first=b"x"))
        assert "session token" in _reply(second)["error"]
        first.sendall(wire.header_message(3, [(1, _raw_meta(1))], first=b"\x07"))
        assert _reply(first)["checksum"] == 7.0


@pytest.mark.parametrize("frame, expect", [
    (wire.header_message(3, [(1000, _raw_meta(1000))], first=b"z" * 10), "after 10 of 1000 bytes of request 3"),
    (b"H\x40\x00", "ended 3 bytes into a frame"),
    (b"H" + (500).to_bytes(4, "little") + b"{", "inside a 500-byte header"),
    (b"Xjunk", "malformed: frame of kind b'X'"),
    (b"H" + (9).to_bytes(4, "little") + b"not json!", "malformed header"),
    (b"H" + (1 << 24).to_bytes(4, "little"), "at most"),
])
def test_truncated_or_malformed_frame_gets_an_error_and_the_server_goes_on(sink, frame, expect):
    with _session(sink) as sock:
        sock.sendall(frame)
        sock.shutdown(socket.SHUT_WR)  # the client is cut off mid-frame
        body = _reply(sock)
        assert body["ok"] is False and expect in body["error"]
    with wire.TensorClient(sink, transport="tcp") as client:
        assert client.send([codec.pack(np.ones(3, np.float32), "fp32", codec.Compression())]).body["checksum"] == 3.0


def _binary(req_id: int, n: int, data: bytes = b"", count: int = 1, meta: bytes | None = None) -> bytes:
    """A binary request header claiming ``n`` bytes (and ``count`` tensors), then ``data``."""
    meta = json.dumps([_raw_meta(n)]).encode() if meta is None else meta
    return (dataplane.REQUEST.pack(b"B", 0, 5, req_id, count, 0, len(meta)) + dataplane.sizes_struct(count).pack(
        *[n] * count) + meta + data)


@pytest.mark.parametrize("frame, expect", [
    (_binary(3, 1000, b"z" * 10), "after 10 of 1000 bytes of request 3"),
    (_binary(3, 4)[:7], "ended inside a 20-byte header"),
    (_binary(3, 4)[:30], "ended inside a 97-byte tensor list"),  # 8 bytes of size, 89 of meta
    (_binary(3, 4, count=0), "a request carries 1..256"),
    (_binary(3, 4, meta=b"nope"), "malformed header: meta JSON"),
    (_binary(3, 4, meta=b"[]"), "not a list of 1 objects"),
])
def test_truncated_or_malformed_binary_frame_gets_an_error_and_the_server_goes_on(sink, frame, expect):
    with _session(sink) as sock:
        sock.sendall(frame)
        sock.shutdown(socket.SHUT_WR)
        body = _reply(sock)
        assert body["ok"] is False and expect in body["error"]
    with _session(sink) as sock:  # the binary reply carries the same fields as the JSON one
        sock.sendall(_binary(4, 2, b"\x01\x02"))
        body = _reply(sock)
        assert (body["id"], body["ok"], body["checksum"]) == (4, True, 3.0)
        server = body["server"]
        assert set(server) == set(dataplane.SERVER_KEYS) and server["t_end"] >= server["t_start"]


def test_shm_header_naming_another_sessions_segment_is_rejected_and_the_connection_goes_on(sink):
    with _session(sink) as sock:  # a TCP session: shm was never negotiated
        sock.sendall(wire.header_message(1, [(4, _raw_meta(4))], extra={"shm": "collab-wire-probe-00"}))
        assert "is not this session's" in _reply(sock)["error"]
        sock.sendall(wire.header_message(2, [(2, _raw_meta(2))], first=b"\x01\x02"))
        assert _reply(sock)["checksum"] == 3.0


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_timings_are_left_out_only_when_not_asked_for(sink, transport):
    part = codec.pack(np.full(5, 2.0, np.float32), "fp32", codec.Compression("none"))
    with wire.TensorClient(sink, transport=transport) as client:
        lean = client.send([part], outputs=False, timings=False)
        timed = client.send([part], outputs=False)
        both = client.send_pipelined([[part], [part]], outputs=False, timings=False)
    assert lean.body["checksum"] == timed.body["checksum"] == 10.0 and "server" not in lean.body
    assert set(timed.body["server"]) == set(dataplane.SERVER_KEYS)
    assert [r.body["checksum"] for r in both] == [10.0, 10.0] and not any("server" in r.body for r in both)


def test_bad_payload_over_the_data_plane_names_the_request(sink):
    good = codec.pack(np.ones(4, np.float32), "fp32", codec.Compression("none"))
    bad = (good[0], {**good[1], "shape": [5]})
    for transport in ("tcp", "shm"):
        with wire.TensorClient(sink, transport=transport) as client:
            with pytest.raises(wire.WireError, match=r"rejected request 1: .*truncated or the header is wrong"):
                client.send([bad])
            assert client.send([good]).body["checksum"] == 4.0


def test_refused_side_port_falls_back_to_grpc():
    proc, address = start_echo("refuse")
    try:
        with wire.TensorClient(address, transport="auto") as client:
            assert client.transport == "grpc"
            arr = np.arange(6, dtype=np.int16).reshape(2, 3)
            assert np.array_equal(client.send([codec.pack(arr, "raw", codec.Compression())]).outputs[0], arr)
        with pytest.raises(wire.WireError, match="refused"):
            wire.TensorClient(address, transport="tcp")
    finally:
        split_helpers.stop(proc)


def test_side_port_that_cannot_be_bound_falls_back_to_grpc():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        proc, port = split_helpers.start_tail("--sink", "--data-port", str(taken.getsockname()[1]))
        try:
            address = f"127.0.0.1:{port}"
            with wire.TensorClient(address) as client:
                assert client.transport == "grpc"
                assert client.send([codec.pack(np.ones(2, np.float32), "fp32", codec.Compression())]).body["ok"]
            with pytest.raises(wire.WireError, match="could not open a data port"):
                wire.TensorClient(address, transport="shm")
        finally:
            split_helpers.stop(proc)


def test_unknown_transport_is_a_clear_error(sink):
    with pytest.raises(wire.WireError, match="unknown transport 'udp'"):
        wire.TensorClient(sink, transport="udp")
