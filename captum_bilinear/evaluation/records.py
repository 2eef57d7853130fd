"""Records of an evaluation run: one JSON object per line under ``DIR/records/``.

Each process appends to a file of its own (``rank{R}-{run}.jsonl``, a new file per start,
so a resumed run never appends to a line a killed one left half written). The records
of one example are written as one block, in one write, whose last line says how many
records precede it (``{"kind": "done", "records": n}``); every line carries the block's
id. Reading keeps only complete blocks -- a partial last line, or an example killed half
written, is ignored -- and the first complete block of each example, so nothing is
counted twice and ``--resume`` redoes exactly the examples in flight.

Record kinds: ``"object"`` (per method and named object: PGA, PGE, CID, CII, CTD, CTI
and their curves), ``"example"`` (per method and example: p-faithfulness, seconds,
completeness error, object discrimination), ``"negative"`` (per interaction method and
hard negative: δS, δA), ``"pair"`` (per example: the similarity scores), ``"done"``.
"""

import glob
import json
import os
import time
import uuid
from typing import Any, Dict, Iterable, List, Optional, Tuple

RECORDS_DIR = "records"


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


class RecordWriter:
    """Appends complete example blocks to this process's own records file.

    Example:
        >>> import tempfile
        >>> out = tempfile.mkdtemp()
        >>> writer = RecordWriter(out, rank=0)
        >>> writer.write_example("e1", [{"kind": "object", "method": "BII", "object": 0, "PGA": 1.0}])
        >>> writer.close()
        >>> [r["PGA"] for r in read_records(out)]
        [1.0]
    """

    def __init__(self, out: str, rank: int = 0, settings: Optional[str] = None) -> None:
        self.settings = settings  # the run's settings fingerprint, on every block's "done" line
        directory = os.path.join(out, RECORDS_DIR)
        os.makedirs(directory, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        self.path = os.path.join(directory, f"rank{rank:03d}-{stamp}-{uuid.uuid4().hex[:8]}.jsonl")
        self._handle = open(self.path, "a", encoding="utf-8")

    def write_example(self, example_id: str, records: Iterable[Dict[str, Any]]) -> None:
        """Writes the records of one example as one block, flushed to disk."""
        block = uuid.uuid4().hex
        lines = [json.dumps({**record, "example_id": example_id, "block": block}, default=_json_default,
                            allow_nan=True) for record in records]
        done = {"kind": "done", "example_id": example_id, "block": block, "records": len(lines)}
        if self.settings is not None:
            done["settings"] = self.settings
        lines.append(json.dumps(done))
        self._handle.write("\n".join(lines) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()


def record_files(out: str) -> List[str]:
    """The records files of a run, in name order (rank, then start time)."""
    return sorted(glob.glob(os.path.join(out, RECORDS_DIR, "*.jsonl")))


def _blocks(path: str, settings: Optional[List[Optional[str]]] = None) -> Iterable[Tuple[str, List[Dict[str, Any]]]]:
    """``(example_id, records)`` of every complete block of one file (and, into
    ``settings`` when given, each block's settings fingerprint, None if it has none)."""
    pending: Dict[str, List[Dict[str, Any]]] = {}
    # undecodable bytes (a damaged line) make that line's JSON invalid: skipped like a
    # line a killed process left half written, the file's complete blocks still count
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a line a killed process left half written
                continue
            # lines of JSON that no writer of this package wrote (no block, an id that is
            # not a string) are skipped like damaged ones
            if not isinstance(record, dict) or not isinstance(record.get("block"), str):
                continue
            block = record.pop("block")
            if record.get("kind") == "done":
                records = pending.pop(block, [])
                if isinstance(record.get("example_id"), str) and len(records) == record.get("records"):
                    if settings is not None:
                        settings.append(record.get("settings"))
                    yield record["example_id"], records
            else:
                pending.setdefault(block, []).append(record)


def complete_blocks(out: str) -> Dict[str, List[Dict[str, Any]]]:
    """example_id -> its records, from the first complete block of each example."""
    examples: Dict[str, List[Dict[str, Any]]] = {}
    for path in record_files(out):
        for example_id, records in _blocks(path):
            examples.setdefault(example_id, records)
    return examples


def block_settings(out: str) -> set:
    """The settings fingerprints of a run's complete blocks (None for blocks written
    without one).

    Example:
        >>> import tempfile
        >>> out = tempfile.mkdtemp()
        >>> writer = RecordWriter(out, settings="abc"); writer.write_example("e1", []); writer.close()
        >>> block_settings(out)
        {'abc'}
    """
    found: List[Optional[str]] = []
    for path in record_files(out):
        for _ in _blocks(path, found):
            pass
    return set(found)


def read_records(out: str, kind: Optional[str] = None) -> List[Dict[str, Any]]:
    """Every record of the complete examples of a run (of one ``kind``, if given)."""
    return [record for records in complete_blocks(out).values() for record in records
            if kind is None or record.get("kind", "object") == kind]


def completed_examples(out: str) -> set:
    """The ids of the examples whose records are complete."""
    return set(complete_blocks(out))
