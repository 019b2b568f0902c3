"""verify_license on a typical two-server file against the floor: a raw Ed25519 verify of the
same payload with cryptography. Measured side by side, in interleaved rounds, in one run.
Also the import time of tmslicense against cryptography's Ed25519 module alone.

    python bench/verify.py [--rounds 30] [--batch 200]
"""

from __future__ import annotations

import argparse
import base64
import statistics
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

import tmslicense  # noqa: E402


def per_call(fn, batch: int) -> float:
    start = time.perf_counter()
    for _ in range(batch):
        fn()
    return (time.perf_counter() - start) / batch


def import_time(module: str, runs: int) -> float:
    """Median seconds to import ``module`` in a fresh interpreter, minus a bare start."""

    def run(code):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
        return time.perf_counter() - start

    bare, loaded = [], []
    for _ in range(runs):
        bare.append(run("pass"))
        loaded.append(run(f"import {module}"))
    return statistics.median(loaded) - statistics.median(bare)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--import-runs", type=int, default=15)
    args = parser.parse_args()

    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    keyring = tmslicense.Keyring([public])
    ids = [tmslicense.new_installation_id(), tmslicense.new_installation_id()]
    lic = tmslicense.License.create(
        serial="9F3C0A61D2E4B7A8",
        license_number=tmslicense.new_license_number(),
        kind="mirrored",
        installation_ids=ids,
        product="ThinManager",
        edition="Premium",
        seats=25,
        features=["relevance", "multimonitor", "mobile"],
        customer="Acme Packaging Inc.",
        issued_at=datetime.now(UTC),
        maintenance_end=date(2027, 12, 31),
    )
    text = tmslicense.sign_license(lic, key, tmslicense.key_id(key))
    envelope = tmslicense.read_envelope(text)
    payload = base64.b64decode(envelope["payload"])
    signature = base64.b64decode(envelope["sig"])

    def ours():
        tmslicense.verify_license(text, keyring, ids[1])

    def floor():
        public.verify(signature, payload)

    for fn in (ours, floor):  # warm-up
        per_call(fn, args.batch)
    ours_t, floor_t = [], []
    for _ in range(args.rounds):
        ours_t.append(per_call(ours, args.batch))
        floor_t.append(per_call(floor, args.batch))
    o, f = statistics.median(ours_t) * 1e6, statistics.median(floor_t) * 1e6

    imp_ours = import_time("tmslicense", args.import_runs) * 1e3
    imp_floor = (
        import_time("cryptography.hazmat.primitives.asymmetric.ed25519", args.import_runs) * 1e3
    )

    print(f"file: {len(text)} bytes, mirrored, two servers; rounds {args.rounds} x {args.batch}")
    print(f"verify_license                 median {o:8.1f} us")
    print(f"raw Ed25519 verify (floor)     median {f:8.1f} us")
    print(f"ratio verify/floor             {o / f:.2f}x (goal <= 1.3x)")
    print(f"import tmslicense              median {imp_ours:8.1f} ms")
    print(f"import cryptography ed25519    median {imp_floor:8.1f} ms")
    print(f"ratio import                   {imp_ours / imp_floor:.2f}x")


if __name__ == "__main__":
    main()
