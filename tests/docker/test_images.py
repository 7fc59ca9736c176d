"""Layer caching against the real engine: tags are content hashes, unchanged layers are kept."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from pytest_collab.containers.images import ImageError, build_testcase, runtime_spec, layer_specs


def make_wheel(dest: Path, name: str, version: str, source: str) -> Path:
    """A minimal pure-python wheel, written by hand so no index or build backend is needed."""
    dest.mkdir(parents=True, exist_ok=True)
    wheel = dest / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(f"{name}.py", source)
        zf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/RECORD", "")
    return wheel


def run_lines(client, image: str, *argv: str) -> list[dict]:
    """Run the image (the wrapper is its entrypoint) and parse its JSON Lines."""
    out = client.containers.run(image, list(argv), remove=True, network_mode="none")
    return [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]


def build(testcase: Path, base_image: str, client, log: list[str]):
    return build_testcase(testcase, "amd64", client=client, base_from=base_image, progress=log.append)


def test_second_build_rebuilds_nothing(testcase, base_image, docker_client):
    first_log: list[str] = []
    first = build(testcase, base_image, docker_client, first_log)
    assert first[-1].built and any("step 3/" in line for line in first_log)
    log: list[str] = []
    second = build(testcase, base_image, docker_client, log)
    assert [r.built for r in second] == [False, False, False]
    assert [r.image_id for r in second] == [r.image_id for r in first]
    assert not any("step" in line for line in log)
    assert sum("cache hit" in line for line in log) == 3


def test_code_change_rebuilds_only_runtime(testcase, base_image, docker_client):
    first = build(testcase, base_image, docker_client, [])
    (testcase / "main.py").write_text("print('changed code')\n")
    second = build(testcase, base_image, docker_client, [])
    assert [r.built for r in second] == [False, False, True]
    assert second[1].tag == first[1].tag and second[2].tag != first[2].tag
    lines = run_lines(docker_client, second[2].tag, "python3", "main.py")
    outs = [line for line in lines if line["k"] == "out"]   # notes (e.g. no power sensor) may come first
    assert outs and outs[0]["line"] == "changed code"
    assert lines[0]["k"] == "start" and lines[-1]["k"] == "exit" and lines[-1]["code"] == 0


def test_requirements_from_shipped_wheels(testcase, base_image, docker_client):
    """Offline deps: a wheel in wheels/ is installed with --no-index; a change rebuilds deps."""
    make_wheel(testcase / "wheels", "tinydep", "1.0", "VALUE = 41\n")
    (testcase / "requirements.txt").write_text("tinydep==1.0\n")
    (testcase / "main.py").write_text("import tinydep\nprint('value', tinydep.VALUE + 1)\n")
    first = build(testcase, base_image, docker_client, [])
    outs = [l["line"] for l in run_lines(docker_client, first[2].tag, "python3", "main.py") if l["k"] == "out"]
    assert outs == ["value 42"]
    (testcase / "requirements.txt").write_text("# pinned\ntinydep==1.0\n")
    second = build(testcase, base_image, docker_client, [])
    assert [r.built for r in second] == [False, True, True]


def test_bootstrap_base_runs_python(base_image, docker_client):
    out = docker_client.containers.run(base_image, ["python3", "-c", "print(1)"], remove=True,
                                       network_mode="none")
    assert out == b"1\n"


def test_build_error_names_layer_and_step(testcase, base_image, docker_client, tmp_path):
    (tmp_path / "base" / "amd64").mkdir(parents=True)
    (tmp_path / "base" / "amd64" / "Dockerfile").write_text(
        f"FROM {base_image}\nRUN echo about to fail && false\n")
    from pytest_collab.containers.images import base_spec, build_layer

    spec = base_spec("amd64", dockerfiles=tmp_path)
    with pytest.raises(ImageError, match=r"(?s)\[base\] build of .* failed at step 2/3: .*about to fail"):
        build_layer(docker_client, spec, progress=lambda line: None)


def test_tag_hashes_inputs_not_certs(testcase):
    specs = layer_specs(testcase, "amd64", base_from="x")
    again = layer_specs(testcase, "amd64", base_from="x")
    assert [s.tag for s in specs] == [s.tag for s in again]
    deps = specs[1]
    other = type(deps)(deps.layer, deps.arch, deps.repository, {**deps.files, "certs/ca.crt": b"x"},
                       deps.buildargs)
    assert other.tag == deps.tag  # TLS roots help the build, they do not change its result
    assert layer_specs(testcase, "amd64", base_from="y")[2].tag != specs[2].tag
    (testcase / "main.py").chmod(0o755)
    assert runtime_spec(testcase, specs[1].tag, "amd64").tag != specs[2].tag


def test_unknown_arch_and_missing_folder(tmp_path):
    with pytest.raises(ImageError, match="unknown arch 'riscv'"):
        layer_specs(tmp_path, "riscv")
    with pytest.raises(ImageError, match="no such test case folder"):
        runtime_spec(tmp_path / "nope", "parent", "amd64")


def test_cli_build_then_nothing_rebuilt(testcase, base_image, docker_client, capsys):
    import argparse

    from pytest_collab.cli import images as cli_images

    parser = argparse.ArgumentParser(prog="collab")
    cli_images.register(parser.add_subparsers(dest="command"))
    argv = ["images", "build", str(testcase), "--arch", "amd64", "--base-from", base_image]
    for _ in range(2):
        args = parser.parse_args(argv)
        assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "[runtime] step" in out and "[runtime] cache hit" in out
    assert out.strip().splitlines()[-1].endswith("(rebuilt: nothing)")
