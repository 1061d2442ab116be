"""The container image, without a Docker engine: the Dockerfile's rules, and its exact
install steps (hack/image/*.sh) run here into a clean virtualenv."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for ins in instructions():
        if ins[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(ins)
    return result


def test_base_image_is_pinned_to_an_exact_python_release() -> None:
    (arg,) = [a for i, a in instructions() if i == "ARG" and a.startswith("PYTHON_IMAGE=")]
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11\.\d+-slim-bookworm(@sha256:[a-f0-9]{64})?", arg)
    assert [a.split()[0] for i, a in instructions() if i == "FROM"] == ["${PYTHON_IMAGE}"] * 2


def test_final_stage_is_small_non_root_and_has_no_build_tools() -> None:
    build, final = stages()
    assert build[0][1].endswith("AS build")
    runs = " ".join(a for i, a in final if i == "RUN")
    for tool in ("apt-get", "gcc", "build-essential", "pip install", "hack/image"):
        assert tool not in runs, f"final stage runs {tool}"
    assert "pip uninstall" in runs
    copies = [a for i, a in final if i == "COPY"]
    assert copies == ["--from=build /opt/modelreg /opt/modelreg"]
    users = [a for i, a in final if i == "USER"]
    assert users == ["65532:65532"]
    assert ("ENTRYPOINT", '["modelreg"]') in final
    assert ("CMD", '["run"]') in final


def test_build_stage_copies_only_what_exists_and_runs_the_tested_scripts() -> None:
    build, _ = stages()
    for _, args in (x for x in build if x[0] == "COPY"):
        *sources, _dest = shlex.split(args)
        for source in sources:
            assert (REPO / source).exists(), source
    runs = " ".join(a for i, a in build if i == "RUN")
    assert "hack/image/build-wheels.sh /dist ." in runs
    assert "hack/image/install.sh /dist /opt/modelreg" in runs


def test_dockerignore_keeps_the_build_context_small() -> None:
    ignored = (REPO / ".dockerignore").read_text().split()
    for path in (".git", ".venv", ".dev-*", "tests"):
        assert path in ignored


@pytest.mark.timeout(900)
def test_image_install_steps_work_in_a_clean_virtualenv(tmp_path: Path) -> None:
    """What the build stage runs: wheels for modelreg and every dependency, then an
    offline install into a new virtualenv without pip; then the image's entrypoints."""
    dist, prefix = tmp_path / "dist", tmp_path / "opt-modelreg"
    for script, args in (
        ("build-wheels.sh", [str(dist), str(REPO)]),
        ("install.sh", [str(dist), str(prefix)]),
    ):
        done = subprocess.run(
            ["bash", str(REPO / "hack" / "image" / script), *args],
            capture_output=True,
            text=True,
            check=False,
            cwd=tmp_path,
        )
        assert done.returncode == 0, f"{script}: {done.stdout}\n{done.stderr}"
    assert any(p.name.startswith("modelreg-") for p in dist.glob("*.whl"))
    modelreg = prefix / "bin" / "modelreg"
    for args in (["--help"], ["run", "--help"], ["fetch-artifact", "--help"]):
        out = subprocess.run([str(modelreg), *args], capture_output=True, text=True, check=True)
        assert "Usage:" in out.stdout
    no_pip = subprocess.run(
        [str(prefix / "bin" / "python"), "-m", "pip", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert no_pip.returncode != 0, "pip is still in the image's virtualenv"
    # the package's files only: nothing named like the standard library's operator module
    site = next(prefix.glob("lib/python3*/site-packages"))
    assert not (site / "operator").exists()
    assert not (site / "operator.py").exists()
