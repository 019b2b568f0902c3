"""tmslicense installs on its own: a wheel built from the package alone, working outside the
checkout, as the library and as the `tmslicense` command."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(*args, **kwargs):
    result = subprocess.run(args, capture_output=True, text=True, timeout=300, **kwargs)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """A wheel built from pyproject.toml and the package alone: nothing of the portal."""
    built = tmp_path_factory.mktemp("wheel")
    source = built / "source"
    source.mkdir()
    shutil.copy(ROOT / "pyproject.toml", source)
    shutil.copytree(
        ROOT / "tmslicense", source / "tmslicense", ignore=shutil.ignore_patterns("__pycache__")
    )
    _run(*PIP, "wheel", "--no-deps", "--no-build-isolation", "-w", built / "dist", source)
    (wheel,) = (built / "dist").glob("tmslicense-*.whl")
    return wheel


def test_a_wheel_of_tmslicense_alone_installs_and_works_outside_the_checkout(wheel, tmp_path):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        assert "Requires-Dist: cryptography" in archive.read(metadata).decode()
    assert {name.split("/")[0] for name in names} == {"tmslicense", metadata.split("/")[0]}
    assert "tmslicense/cli.py" in names and not any("test" in name for name in names)

    site = tmp_path / "site"
    _run(*PIP, "install", "--no-deps", "--target", site, wheel)
    elsewhere = tmp_path / "plant"  # not the checkout: only the installed copy can be found
    elsewhere.mkdir()
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    found = _run(
        sys.executable,
        "-c",
        "import tmslicense; print(tmslicense.__file__)",
        cwd=elsewhere,
        env=env,
    )
    assert found.stdout.strip().startswith(str(site))
    made = _run(
        site / "bin" / "tmslicense", "--data-dir", elsewhere / "tms", "id", cwd=elsewhere, env=env
    )
    import tmslicense

    assert tmslicense.normalize_installation_id(made.stdout.strip()) == made.stdout.strip()
    # Its usage names the command as typed.
    usage = _run(site / "bin" / "tmslicense", "--help", cwd=elsewhere, env=env).stdout
    assert usage.startswith("usage: tmslicense [-h]")


def test_the_wheel_tells_type_checkers_the_library_has_type_hints(wheel):
    """PEP 561: without py.typed, a TMS's type checker ignores the library's hints."""
    with zipfile.ZipFile(wheel) as archive:
        assert "tmslicense/py.typed" in archive.namelist()
