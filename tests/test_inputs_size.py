"""Input has a size bound, so ``bulk validate /dev/zero`` cannot grow without end: devices
are refused, files over ``--max-input-bytes`` and lines over ``MAX_LINE_BYTES`` too,
and a stream (a pipe) is read with the same hard bound, stopping at the first bad chunk."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from bulk._errors import InputError
from bulk.inputs import MAX_LINE_BYTES, load_rows
from bulk.inputs._read import read_table

#: 1.5 GB of address space: polars loads in it, an unbounded read of /dev/zero does not fit
MEMORY_LIMIT = 1_500_000_000


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _bulk(*args: str, shell: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "bulk", *args]
    if shell is not None:  # e.g. a pipe into bulk
        command = ["sh", "-c", shell.replace("BULK", f"{sys.executable} -m bulk")]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=60, preexec_fn=_limited
    )


@pytest.mark.parametrize(
    "args",
    [
        ["validate", "/dev/zero"],
        ["link", "/dev/zero", "--campaign", "CUOGHIN", "--base-url", "http://127.0.0.1:9",
         "--auth-id", "MASANDBOXAUTHID00001", "--yes", "--quiet"],
    ],
    ids=["validate", "link"],
)
def test_a_device_as_input_is_refused_at_once(args: list[str], tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bulk", *args],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=_limited,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PLIVO_AUTH_TOKEN": "t"},
    )
    assert done.returncode == 2, done.stderr
    assert "/dev/zero: is a device, not a CSV file" in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr


def test_an_endless_stream_of_zeros_through_a_pipe_stops_at_the_first_chunk() -> None:
    done = _bulk(shell="head -c 3000000000 /dev/zero | BULK validate /dev/stdin --no-report")
    assert done.returncode == 2, done.stderr
    assert "/dev/stdin, line 1: this is a binary file" in done.stderr


def test_an_endless_line_through_a_pipe_is_refused_naming_its_line() -> None:
    done = _bulk(
        shell="{ printf 'number\\n+14155550100\\n'; tr '\\0' x < /dev/zero | head -c 3000000000; }"
        " | BULK validate /dev/stdin --no-report"
    )
    assert done.returncode == 2, done.stderr
    assert f"/dev/stdin, line 3: this line is longer than {MAX_LINE_BYTES} bytes" in done.stderr


def test_a_pipe_larger_than_max_input_bytes_is_refused() -> None:
    done = _bulk(
        shell="{ echo number; yes +14155550100 | head -n 100000; } "
        "| BULK validate /dev/stdin --no-report --max-input-bytes 100000"
    )
    assert done.returncode == 2, done.stderr
    assert "/dev/stdin: the numbers file is more than 100000 bytes" in done.stderr
    assert "--max-input-bytes" in done.stderr


def test_a_file_larger_than_max_input_bytes_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text("number\n" + "+14155550100\n" * 1000)
    with pytest.raises(InputError, match="is 13007 bytes, more than the limit of 13000"):
        load_rows(path, max_input_bytes=13000)
    assert load_rows(path, max_input_bytes=13007).frame.height == 1000


def test_a_line_longer_than_the_limit_names_its_line_and_shorter_lines_pass(
    tmp_path: Path,
) -> None:
    path = tmp_path / "long.csv"
    ok = "x" * (MAX_LINE_BYTES - 20)
    path.write_text(f"number,note\n+14155550100,{ok}\n+14155550101,{ok}x{'y' * 40}\n")
    with pytest.raises(InputError, match=r"long\.csv, line 3: this line is longer than"):
        read_table(path)
    path.write_text(f"number,note\n+14155550100,{ok}\n+14155550101,{ok}\n")
    assert read_table(path).frame.height == 2


def test_a_stream_within_the_bounds_reads_as_a_file_does() -> None:
    done = _bulk(
        shell="printf 'number\\n+14155550100\\n(415) 555-0101\\n' "
        "| BULK validate /dev/stdin --no-report --campaign CUOGHIN"
    )
    assert done.returncode == 0, done.stderr
