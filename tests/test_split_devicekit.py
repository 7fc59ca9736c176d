"""The device kit as devices use it: imports without pytest, the sidecar format, and the
generic head/tail programs on any exported pair, here a cut inside a residual block
(two tensors cross it) that must reproduce the unsplit model exactly in fp32."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import split_helpers

from pytest_collab.devicekit import artifact, codec, wire

ROOT = Path(__file__).resolve().parents[1]
KIT = ROOT / "pytest_collab" / "devicekit"


def _run(code: str, *flags: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *flags, "-c", code], env=env or split_helpers.device_env(),
                          capture_output=True, text=True, timeout=120, cwd=ROOT / "docs")


def test_every_kit_module_imports_without_pytest_or_pytest_collab():
    code = """
import importlib, pkgutil, sys, collab_devicekit
names = [m.name for m in pkgutil.iter_modules(collab_devicekit.__path__)]
for n in names:
    importlib.import_module("collab_devicekit." + n)
bad = sorted(k for k in sys.modules if k.split(".")[0] in ("pytest", "_pytest", "pytest_collab"))
assert not bad, bad
print(" ".join(sorted(names)))
"""
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert {"codec", "wire", "tail_service", "loadgen", "stats", "emit", "heap", "artifact",
            "split_head", "split_tail"} <= set(out.stdout.split())


def test_light_modules_and_program_help_need_no_numpy():
    """Heavy modules are imported only where needed: the stdlib-only modules run on a bare
    Python (-S: no site-packages), and the programs' --help loads no numpy/torch/grpc."""
    bare = _run("import collab_devicekit.stats as s, collab_devicekit.emit, collab_devicekit.heap, "
                "collab_devicekit.artifact, collab_devicekit.needs; print(s.nearest_rank([3, 1, 2], 50))", "-S")
    assert bare.returncode == 0 and bare.stdout.strip() == "2.0", bare.stderr
    code = """
import sys
from collab_devicekit import split_head, split_tail
for prog in (split_head, split_tail):
    try:
        prog.main(["--help"])
    except SystemExit:
        pass
heavy = sorted(k for k in ("numpy", "torch", "grpc", "blosc2") if k in sys.modules)
assert not heavy, heavy
"""
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert "python -m collab_devicekit.split_head" in out.stdout and "--artifact" in out.stdout


def test_device_without_torch_fails_at_start_naming_device_and_package(tmp_path):
    code = ("import sys; sys.modules['torch'] = None\n"
            "from collab_devicekit.split_tail import main\n"
            f"sys.exit(main(['--artifact', {str(tmp_path / 'tail.pt2')!r}]))")
    out = _run(code, env={**split_helpers.device_env(), "COLLAB_DEVICE": "server-7"})
    assert out.returncode != 0
    assert "split_tail on device 'server-7': missing Python package(s) torch" in out.stderr
    assert "pip install torch" in out.stderr and "Traceback" not in out.stderr


def test_artifact_without_sidecar_stops_the_program_with_the_file_named(tmp_path):
    (tmp_path / "tail.pt2").write_bytes(b"not read")
    out = _run("from collab_devicekit.split_tail import main; main(['--artifact', "
               f"{str(tmp_path / 'tail.pt2')!r}])")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"split_tail: {tmp_path / 'tail.pt2.json'}: no sidecar beside the artifact" in out.stderr


def test_the_result_line_is_written_in_one_place():
    """Every device program of the kit, split_resnet and link_baseline emits through emit.py."""
    files = [*KIT.glob("*.py"), *(ROOT / "testcases" / "split_resnet").glob("*.py"),
             *(ROOT / "testcases" / "link_baseline").glob("*.py")]
    writers = sorted(p.name for p in files if '"COLLAB_RESULT ' in p.read_text())
    assert writers == ["emit.py"]
    from pytest_collab.devicekit.emit import result_line

    line = result_line({"x": np.float32(1.5), "v": np.arange(3), "n": float("nan")})
    assert line.startswith("COLLAB_RESULT ") and json.loads(line.split(" ", 1)[1])["v"] == [0, 1, 2]


def test_sidecar_round_trips_and_bad_ones_name_the_file(tmp_path):
    art = tmp_path / "head.pt2"
    specs = ([artifact.spec("x", [None, 3, 8, 8], "torch.float32")],
             [artifact.spec("y", [None, 4], "float32"), artifact.spec("skip", [None, 8, 8, 8], "float16")])
    path = artifact.write_sidecar(art, *specs)
    assert path == tmp_path / "head.pt2.json"
    side = artifact.read_sidecar(art)
    assert side.inputs == tuple(specs[0]) and side.outputs == tuple(specs[1])
    assert side.output_dtypes() == [("y", "float32"), ("skip", "float16")]
    assert side.inputs[0].concrete(5) == (5, 3, 8, 8)
    assert side.outputs[0].mismatch((2, 4)) is None and "expects ['*', 4]" in side.outputs[0].mismatch((2, 5))
    path.write_text('{"inputs": [{"name": "x"}], "outputs": []}')
    with pytest.raises(artifact.ArtifactError, match=r"head\.pt2\.json: KeyError"):
        artifact.read_sidecar(art)
    with pytest.raises(artifact.ArtifactError, match=r"other\.pt2\.json: no sidecar"):
        artifact.read_sidecar(tmp_path / "other.pt2")


# ---------------------------------------------------------------- generic programs

torch = pytest.importorskip("torch")
_Module: Any = torch.nn.Module


class Residual(_Module):
    """conv -> relu -> [conv] + skip -> relu -> pool -> fc; the cut sits inside the block."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.conv = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8, 10)

    def head(self, x):
        skip = torch.relu(self.stem(x))
        return self.conv(skip), skip

    def tail(self, y, skip):
        return self.fc(torch.relu(y + skip).mean((2, 3)))

    def forward(self, x):
        return self.tail(*self.head(x))


class _Head(_Module):
    def __init__(self, net: Residual) -> None:
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net.head(x)


class _Tail(_Head):
    def forward(self, y, skip):
        return self.net.tail(y, skip)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Head (x -> (y, skip)) and tail ((y, skip) -> logits) exported with a dynamic batch."""
    out = tmp_path_factory.mktemp("pair")
    net = Residual().eval()
    batch = torch.export.Dim("batch", min=1, max=1024)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        y, skip = net.head(x)
    head = torch.export.export(_Head(net), (x,), dynamic_shapes=({0: batch},))
    tail = torch.export.export(_Tail(net), (y, skip), dynamic_shapes=({0: batch}, {0: batch}))
    torch.export.save(head, str(out / "head.pt2"))
    torch.export.save(tail, str(out / "tail.pt2"))
    boundary = [artifact.spec("y", [None, 8, 16, 16], "float32"), artifact.spec("skip", [None, 8, 16, 16], "float32")]
    artifact.write_sidecar(out / "head.pt2", [artifact.spec("x", [None, 3, 16, 16], "float32")], boundary)
    artifact.write_sidecar(out / "tail.pt2", boundary, [artifact.spec("logits", [None, 10], "float32")])
    samples = np.random.default_rng(4).standard_normal((6, 3, 16, 16)).astype(np.float32)
    np.save(out / "x.npy", samples)
    with torch.no_grad():  # the unsplit model, at the programs' batch size of 2
        ref = np.concatenate([net(torch.from_numpy(samples[i:i + 2])).numpy() for i in range(0, 6, 2)])
    np.save(out / "ref.npy", ref)
    return out, net, samples


def test_loaded_head_and_tail_join_exactly_through_the_fp32_wire_encoding(pair):
    from pytest_collab.devicekit.exported import Exported

    out, net, samples = pair
    head, tail = Exported(out / "head.pt2", "test"), Exported(out / "tail.pt2", "test")
    acts = head([samples[:2]])
    assert len(acts) == 2
    parts = codec.pack_all(acts, codec.plan(head.sidecar.output_dtypes(), "fp32"), codec.Compression())
    joined = tail([codec.unpack(d, m) for d, m in parts])
    with torch.no_grad():
        assert np.array_equal(joined[0], net(torch.from_numpy(samples[:2])).numpy())
    with pytest.raises(ValueError, match=r"tensor 'skip' has shape \[2, 8, 16\], the artifact expects"):
        tail([acts[0], acts[1][:, :, 0]])


@pytest.fixture(scope="module")
def tail_server(pair):
    proc, port = split_helpers.start_tail("--artifact", str(pair[0] / "tail.pt2"), "--warmup", "1")
    yield f"127.0.0.1:{port}"
    assert split_helpers.stop(proc) == 0


def test_programs_reproduce_the_unsplit_model_exactly_in_fp32(pair, tail_server):
    out = pair[0]
    done = split_helpers.run_head("--artifact", str(out / "head.pt2"), "--server", tail_server,
                                  "--inputs", str(out / "x.npy"), "--reference", str(out / "ref.npy"),
                                  "--batch", "2", "--warmup", "1", "--link-mbps", "100", "--model", "residual",
                                  "--split", "block")
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [json.loads(line.split(" ", 1)[1]) for line in done.stdout.splitlines() if line.startswith("COLLAB_RESULT ")]
    assert len(rows) == 1
    row = rows[0]
    assert row["boundary_tensors"] == 2 and row["tensor_encodings"] == "fp32,fp32" and row["queries"] == 3
    assert row["raw_bytes"] == 2 * 2 * 8 * 16 * 16 * 4
    assert row["top1_agreement"] == 1.0 and row["max_abs_logit_error"] == 0.0
    assert len(row["t_start"]) == len(row["tail_t_start"]) == 3
    # the tail ran inside each query's window (one machine, one clock here)
    assert all(s <= ts <= te <= e for s, ts, te, e in
               zip(row["t_start"], row["tail_t_start"], row["tail_t_end"], row["t_end"]))


def test_server_mode_with_int8_sends_both_tensors_from_parallel_streams(pair, tail_server):
    out = pair[0]
    done = split_helpers.run_head("--artifact", str(out / "head.pt2"), "--server", tail_server,
                                  "--inputs", str(out / "x.npy"), "--reference", str(out / "ref.npy"),
                                  "--batch", "2", "--warmup", "0", "--link-mbps", "100", "--encoding", "int8",
                                  "--mode", "server", "--rate", "40", "--workers", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    row = json.loads(done.stdout.split("COLLAB_RESULT ", 1)[1])
    assert row["mode"] == "server" and row["rate_qps"] == 40 and row["tensor_encodings"] == "int8,int8"
    assert row["wire_bytes"] < row["raw_bytes"] / 3 and 0 < row["max_abs_logit_error"] < 0.1
    assert len(row["latency_ms"]) == len(row["t_start"]) == 3


def test_tail_answers_a_wrong_request_with_an_error_and_keeps_serving(pair, tail_server):
    samples = pair[2]
    from pytest_collab.devicekit.exported import Exported

    acts = Exported(pair[0] / "head.pt2", "test")([samples[:1]])
    with wire.TensorClient(tail_server) as client:
        with pytest.raises(wire.WireError, match=r"tail\.pt2 takes 2 tensors \(y, skip\), got 1"):
            client.send([codec.pack(acts[0], "fp32", codec.Compression())])
    with wire.TensorClient(tail_server) as client:
        reply = client.send(codec.pack_all(acts, ["int8", "fp16"], codec.Compression()))
        assert reply.logits is not None and reply.logits.shape == (1, 10) and len(reply.body["topk"][0]) == 5


def test_full_offload_and_on_device_baselines_with_random_inputs(pair, tail_server, tmp_path):
    """No head: the inputs go raw to a tail that takes them (here the head artifact itself
    stands in as a 'tail' taking x); no server: the artifact runs alone, nothing is sent."""
    out = pair[0]
    alone = split_helpers.run_head("--artifact", str(out / "head.pt2"), "--samples", "4", "--warmup", "0")
    assert alone.returncode == 0, alone.stderr
    row = json.loads(alone.stdout.split("COLLAB_RESULT ", 1)[1])
    assert row["encoding"] == "none" and row["wire_bytes"] == 0 and row["queries"] == 4 and "tail_t_start" not in row
    no_inputs = split_helpers.run_head("--server", tail_server)
    assert no_inputs.returncode == 2 and "--inputs is required without --artifact" in no_inputs.stderr


def test_wire_probe_holds_and_thinks_outside_the_transfer(tmp_path):
    """split_plan's round-trip probe: a sink that holds each request (timed as its tail) and
    a head that idles before each query (in its latency, in none of its stages)."""
    tiny = tmp_path / "tiny.npy"
    np.save(tiny, np.zeros((6, 1), np.uint8))
    proc, port = split_helpers.start_tail("--sink", "--sink-hold-ms", "20")
    try:
        done = split_helpers.run_head("--server", f"127.0.0.1:{port}", "--inputs", str(tiny), "--warmup", "0",
                                      "--think-ms", "30", "--split-transport", "tcp")
    finally:
        assert split_helpers.stop(proc) == 0
    assert done.returncode == 0, done.stdout + done.stderr
    row = json.loads(done.stdout.split("COLLAB_RESULT ", 1)[1])
    assert row["queries"] == 6 and row["tail_ms_p50"] >= 20.0
    assert row["transfer_ms_p50"] < 20.0 and row["head_ms_p50"] < 1.0     # neither hold nor think in a stage
    assert row["p50_ms"] >= 50.0                                             # both in the query's latency
    bad = subprocess.run(split_helpers.kit_program("split_tail", "--artifact", "x.pt2", "--sink-hold-ms", "1"),
                         env=split_helpers.device_env(), capture_output=True, text=True)
    assert bad.returncode == 2 and "--sink-hold-ms goes with --sink" in bad.stderr
