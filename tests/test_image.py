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


def _dockerfile_config() -> list[str]:
    done = subprocess.run(
        ["python3", str(REPO / "hack" / "image" / "dockerfile-config.py"), str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.splitlines()


def test_the_image_built_without_docker_has_the_dockerfiles_configuration() -> None:
    """hack/build-images.sh reads the image's configuration from the Dockerfile: every
    ENV, USER, ENTRYPOINT, CMD, EXPOSE and LABEL of the final stage, nothing else."""
    _, final = stages()
    flags = _dockerfile_config()
    for word, args in final:
        if word == "ENV":
            for pair in shlex.split(args):
                key, value = pair.split("=", 1)
                want = value.replace("$PATH", "")
                assert any(f.startswith(f"--env={key}=") and want in f for f in flags), pair
        elif word == "USER":
            assert f"--user={args}" in flags
        elif word == "ENTRYPOINT":
            assert "--entrypoint=modelreg" in flags
        elif word == "CMD":
            assert "--cmd=run" in flags
        elif word == "EXPOSE":
            assert all(f"--exposed-ports={p}" in flags for p in args.split())
    assert len([f for f in flags if f.startswith("--env=")]) == sum(
        len(shlex.split(a)) for w, a in final if w == "ENV"
    )


def test_the_image_built_without_docker_runs_the_dockerfiles_steps() -> None:
    """The same install scripts, and the same non-root user made the same way."""
    build_images = (REPO / "hack" / "build-images.sh").read_text()
    _, final = stages()
    assert 'build-wheels.sh" "$work/dist" "$root"' in build_images
    assert "install.sh /src/dist /opt/modelreg" in build_images
    (useradd,) = re.findall(
        r"useradd ([^&]+?)(?:\s*$|\s*&&)", " ".join(a for w, a in final if w == "RUN")
    )
    words = shlex.split(useradd)
    script_useradd = re.search(r"useradd (--uid.*?)\s*;", build_images.replace("\\\n", " "))
    assert script_useradd is not None
    assert shlex.split(script_useradd.group(1)) == words


def test_an_instruction_the_config_reader_does_not_know_is_an_error(tmp_path: Path) -> None:
    f = tmp_path / "Dockerfile"
    f.write_text("FROM x AS build\nFROM x\nHEALTHCHECK CMD true\nUSER 1\nENV PATH=/bin\n")
    done = subprocess.run(
        ["python3", str(REPO / "hack" / "image" / "dockerfile-config.py"), str(f)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert "HEALTHCHECK is not understood" in done.stderr
