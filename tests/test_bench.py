"""The benchmarks run end to end (a few rounds; their figures are not judged here)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("script", "args", "expected"),
    [
        ("verify.py", ["--rounds", "2", "--batch", "5", "--import-runs", "1"], "ratio"),
        ("activation.py", ["--rounds", "3"], "HTTP, gunicorn"),
    ],
)
def test_benchmark_runs(script, args, expected):
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert expected in run.stdout
