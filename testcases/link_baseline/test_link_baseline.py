"""link_baseline: what the link between two devices can do, the yardstick of every transfer.

A server on one device, a client on another (started once the server is ready), for
payloads from 1 KiB to 16 MiB over a raw TCP socket and over gRPC.
"""
import pytest


@pytest.mark.devices(server=1, rpi=1)
@pytest.mark.parametrize("transport", ["tcp", "grpc"])
def test_link_baseline(collab, transport, collab_options):
    sizes = collab_options["link_sizes"]
    server = collab.start("server", "server.py", "--bind", "0.0.0.0", ready=r"READY tcp=(\d+) grpc=(\d+)")
    port = server.match[1] if transport == "tcp" else server.match[2]
    client = collab.start("rpi", "client.py", "--server", server.address, "--transport", transport,
                          "--port", port, "--sizes", sizes, after=server)
    client.wait(timeout=600)
    rows = client.results()
    assert [r["size_bytes"] for r in rows] == [int(s) * 1024 for s in sizes.split(",")]
    for row in rows:
        assert row["samples"] >= 5 and row["throughput_mbps"] > 0
        collab.record(**row)
