"""Serve an exported classifier (``.pt2`` + JSON sidecar) on a device, and its client.

The server (``python -m collab_devicekit.classify --model M.pt2``) loads the program with
``torch.export.load``, prints ``READY port=N`` and answers newline-delimited JSON over TCP:
``{"seed": k}`` -> the top-1 class of a synthetic input drawn from seed ``k`` (inputs are
made on the device: no dataset, and the experiments measure serving, not the wire) and the
time the model took; ``{"stats": true}`` -> predictions, busy seconds, load seconds. The
:class:`Client` is stdlib only, so the controller imports it without torch.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import time
from typing import Any


class Client:
    """One connection to a classifier server; ``predict`` is one round trip."""

    def __init__(self, host: str, port: int, timeout: float = 120) -> None:
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.file = self.sock.makefile("rwb")

    def call(self, request: dict[str, Any]) -> dict[str, Any]:
        self.file.write(json.dumps(request).encode() + b"\n")
        self.file.flush()
        line = self.file.readline()
        if not line:
            raise ConnectionError("the classifier closed the connection")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"classifier: {answer['error']}")
        return answer

    def predict(self, seed: int) -> dict[str, Any]:
        """``top1``, ``infer_ms`` (on the device) and ``rtt_ms`` (seen from here)."""
        start = time.perf_counter()
        answer = self.call({"seed": seed})
        answer["rtt_ms"] = (time.perf_counter() - start) * 1e3
        return answer

    def stats(self) -> dict[str, Any]:
        return self.call({"stats": True})

    def close(self) -> None:
        for part in (self.file, self.sock):
            try:
                part.close()
            except OSError:
                pass


def _shape(model: str) -> list[int]:
    """The first input's shape from the sidecar (``m.pt2.json`` as pytest_collab.split writes
    it, or ``m.json``); a dynamic batch (-1) becomes 1."""
    for sidecar in (model + ".json", os.path.splitext(model)[0] + ".json"):
        if os.path.isfile(sidecar):
            with open(sidecar) as f:
                return [1 if d == -1 else int(d) for d in json.load(f)["inputs"][0]["shape"]]
    raise SystemExit(f"{model}: no JSON sidecar ({model}.json) next to it to read the input shape from")


def serve(model: str, bind: str, port: int, threads: int) -> None:
    try:
        import torch
    except ImportError:
        raise SystemExit(f"{socket.gethostname()}: torch is not installed, so {model} can not be served; "
                         "install a torch CPU wheel on the device (emulated lab: emulation.torch_wheel "
                         "or $PYTEST_COLLAB_TORCH_WHEEL)") from None

    torch.set_num_threads(threads)
    start = time.perf_counter()
    shape = _shape(model)
    net = torch.export.load(model).module()
    load_s = time.perf_counter() - start
    predictions, busy = 0, 0.0
    srv = socket.create_server((bind, port))
    print(f"READY port={srv.getsockname()[1]} load_s={load_s:.3f}", flush=True)
    while True:
        conn, _ = srv.accept()
        with conn, conn.makefile("rwb") as f:
            for line in f:
                req = json.loads(line)
                if req.get("stats"):
                    answer: dict[str, Any] = {"predictions": predictions, "busy_s": busy, "load_s": load_s}
                else:
                    x = torch.randn(shape, generator=torch.Generator().manual_seed(int(req["seed"])))
                    t0 = time.perf_counter()
                    with torch.no_grad():
                        top1 = int(net(x).argmax(dim=1)[0])
                    took = time.perf_counter() - t0
                    predictions, busy = predictions + 1, busy + took
                    answer = {"top1": top1, "infer_ms": took * 1e3}
                f.write(json.dumps(answer).encode() + b"\n")
                f.flush()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="collab_devicekit.classify", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="the .pt2 file (its sidecar .json next to it)")
    p.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port (default 0: any free one, printed)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    args = p.parse_args(argv)
    serve(args.model, args.bind, args.port, args.threads)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
