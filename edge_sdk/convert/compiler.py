"""Run `edgetpu_compiler` when it is installed and parse its operation log.

The compiler writes `<name>_edgetpu.tflite` and `<name>_edgetpu.log` into its
output folder. With `-s` it also prints the summary to stdout. The log starts
with `Edge TPU Compiler version X`, then a table with the columns Operator,
Count and Status, one row per (op, status) pair, where the status is
`Mapped to Edge TPU` or the reason the op stays on the CPU.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edge_sdk.convert.errors import ConvertError

logger = logging.getLogger(__name__)

COMPILER_NAME = "edgetpu_compiler"
MAPPED_STATUS = "Mapped to Edge TPU"
COMPILE_TIMEOUT_S = 600.0
INSTALL_HINT = (
    "edgetpu_compiler is not on PATH, so the package holds the int8 model, not yet compiled for the Edge TPU. "
    "Install the compiler on an x86-64 Debian/Ubuntu machine (package edgetpu-compiler from Coral's apt repository), "
    "then run: edgetpu_compiler -s -o OUTDIR PACKAGE/model.tflite. Put the result into the package with: "
    "edge-sdk attach-edgetpu PACKAGE OUTDIR/model_edgetpu.tflite --log OUTDIR/model_edgetpu.log "
    "(it checks the file and updates the manifest's sha256; replacing model.tflite by hand fails that check)"
)

_VERSION = re.compile(r"Edge TPU Compiler version\s+(\S+)")
_ROW = re.compile(r"^([A-Z][A-Z0-9_]*(?::\S+)?)\s{2,}(\d+)\s{2,}(\S.*?)\s*$", re.MULTILINE)
_COUNT_LINES = {
    "edgetpu": re.compile(r"Number of operations that will run on Edge TPU:\s*(\d+)"),
    "cpu": re.compile(r"Number of operations that will run on CPU:\s*(\d+)"),
    "subgraphs": re.compile(r"Number of Edge TPU subgraphs:\s*(\d+)"),
}


class CompilerError(ConvertError, RuntimeError):
    """`edgetpu_compiler` failed, timed out, or wrote no model."""


@dataclass(frozen=True, slots=True)
class CompilerLogRow:
    """One row of the operation table: op name, how many, and the compiler's status text."""

    op: str
    count: int
    status: str

    @property
    def on_edgetpu(self) -> bool:
        return self.status == MAPPED_STATUS


@dataclass(frozen=True, slots=True)
class CompilerLog:
    """The parsed compiler log."""

    version: str | None
    rows: tuple[CompilerLogRow, ...]
    edgetpu_subgraphs: int | None

    @property
    def edgetpu_op_count(self) -> int:
        return sum(row.count for row in self.rows if row.on_edgetpu)

    @property
    def cpu_op_count(self) -> int:
        return sum(row.count for row in self.rows if not row.on_edgetpu)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "edgetpu_ops": self.edgetpu_op_count,
            "cpu_ops": self.cpu_op_count,
            "edgetpu_subgraphs": self.edgetpu_subgraphs,
            "rows": [asdict(row) for row in self.rows],
        }


@dataclass(frozen=True, slots=True)
class CompileResult:
    """The compiled model bytes and the parsed log."""

    model_bytes: bytes
    log: CompilerLog


def find_compiler() -> str | None:
    """Return the path of `edgetpu_compiler`, or None when it is not installed."""
    return shutil.which(COMPILER_NAME)


def parse_compiler_log(text: str) -> CompilerLog:
    """Parse the text of an `edgetpu_compiler` log or its `-s` summary output."""
    version_match = _VERSION.search(text)
    rows = []
    for line in text.splitlines():
        match = _ROW.match(line.strip())
        if match and match.group(1) != "Operator":
            rows.append(CompilerLogRow(match.group(1), int(match.group(2)), match.group(3)))
    subgraphs = _COUNT_LINES["subgraphs"].search(text)
    return CompilerLog(version_match.group(1) if version_match else None, tuple(rows), int(subgraphs.group(1)) if subgraphs else None)


def compile_for_edgetpu(model_bytes: bytes, compiler: str, timeout_s: float = COMPILE_TIMEOUT_S) -> CompileResult:
    """Compile an int8 model with `compiler` in a temporary folder and return the compiled bytes and log."""
    with tempfile.TemporaryDirectory(prefix="edge-sdk-edgetpu-") as temp:
        folder = Path(temp)
        source = folder / "model.tflite"
        source.write_bytes(model_bytes)
        command = [compiler, "-s", "-o", str(folder / "out"), str(source)]
        try:
            completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired as exc:
            raise CompilerError(f"{compiler} timed out after {timeout_s:.0f} s on the int8 model: compile it by hand to see why") from exc
        except OSError as exc:
            raise CompilerError(f"{compiler} could not be started ({exc}): check the installation") from exc
        output = folder / "out" / "model_edgetpu.tflite"
        if completed.returncode != 0 or not output.is_file():
            detail = (completed.stderr or completed.stdout).strip().splitlines()[-3:]
            raise CompilerError(f"{compiler} exited with status {completed.returncode} ({' | '.join(detail)}): see its log for the failing op")
        log_file = folder / "out" / "model_edgetpu.log"
        log_text = log_file.read_text(encoding="utf-8", errors="replace") if log_file.is_file() else ""
        # The table is in both the log file and the `-s` output: read it from one of them only.
        log = parse_compiler_log(log_text if _ROW.search(log_text) else completed.stdout)
        if log.version is None:
            log = CompilerLog(parse_compiler_log(completed.stdout).version, log.rows, log.edgetpu_subgraphs)
        logger.info("edgetpu_compiler %s mapped %d ops to the Edge TPU, %d to the CPU", log.version, log.edgetpu_op_count, log.cpu_op_count)
        return CompileResult(output.read_bytes(), log)
