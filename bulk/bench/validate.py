"""Benchmark ``load_rows`` on a generated file (not a test).

    python -m bulk.bench.validate [--rows 1000000] [--seed 7] [--keep]

Generates a realistic numbers file (mostly clean digits in the common forms, a few percent messy
or invalid), validates it with :func:`bulk.inputs.load_rows`, and prints rows per second and the
peak resident memory of the process.
"""

from __future__ import annotations

import argparse
import importlib
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

AREA_CODES = ("415", "212", "312", "650", "206", "303", "617", "512", "305", "404", "702", "213")
CAMPAIGNS = ("marketing", "alerts")


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    if sys.platform == "darwin":  # pragma: no cover
        peak //= 1024
    return float(peak) / 1024.0


def _number(rng: random.Random) -> str:
    area = rng.choice(AREA_CODES)
    exchange = rng.randint(200, 999)
    line = rng.randint(0, 9999)
    digits = f"{area}{exchange}{line:04d}"
    roll = rng.random()
    if roll < 0.40:
        return digits
    if roll < 0.70:
        return "+1" + digits
    if roll < 0.85:
        return "1" + digits
    if roll < 0.90:
        return f"({area}) {exchange}-{line:04d}"
    if roll < 0.93:
        return f"{area}.{exchange}.{line:04d}"
    if roll < 0.95:
        return f"'{digits}"
    if roll < 0.96:
        return f"8005{rng.randint(100000, 999999)}"  # toll-free
    if roll < 0.97:
        return f"{area}1{rng.randint(0, 999999):06d}"  # exchange starting with 1: invalid
    if roll < 0.975:
        return f"1.{digits}E10"  # scientific notation, exact
    if roll < 0.98:
        return f"{digits[:3]}-FLOWERS"
    if roll < 0.985:
        return f"{area}-{exchange}-{line:04d} x{rng.randint(1, 999)}"
    if roll < 0.99:
        return ""
    return f"+44 20 7946 {rng.randint(0, 9999):04d}"


def generate(path: Path, rows: int, seed: int) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("number,campaign,store\r\n")
        chunk: list[str] = []
        for index in range(rows):
            chunk.append(f"{_number(rng)},{rng.choice(CAMPAIGNS)},store-{index % 500}\r\n")
            if len(chunk) >= 50_000:
                out.write("".join(chunk))
                chunk.clear()
        out.write("".join(chunk))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bulk.bench.validate", description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows to generate")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args(argv)

    from bulk.inputs import load_rows  # imported here so import time is not counted as load

    workdir = Path(tempfile.mkdtemp(prefix="bulk-bench-"))
    numbers = workdir / "numbers.csv"
    campaigns = workdir / "campaigns.csv"
    campaigns.write_text("campaign_id,alias\nCUOGHIN,marketing\nCRIGC80,alerts\n", "utf-8")
    started = time.perf_counter()
    generate(numbers, args.rows, args.seed)
    generated = time.perf_counter() - started
    size_mb = numbers.stat().st_size / 1e6
    psutil = importlib.import_module("psutil")  # no type stubs installed
    rss_before = psutil.Process(os.getpid()).memory_info().rss / 2**20

    started = time.perf_counter()
    loaded = load_rows(numbers, campaigns_path=campaigns)
    summary = loaded.summary()
    elapsed = time.perf_counter() - started

    print(f"generated {args.rows:,} rows ({size_mb:.1f} MB) in {generated:.1f}s: {numbers}")
    print(f"validated in {elapsed:.2f}s: {args.rows / elapsed:,.0f} rows/s")
    print(f"RSS before load: {rss_before:.0f} MiB; peak RSS: {_peak_rss_mb():.0f} MiB")
    print(f"valid {summary.valid:,}, rejected {summary.rejected_total:,}: {summary.rejected}")
    if not args.keep:
        numbers.unlink()
        campaigns.unlink()
        workdir.rmdir()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
