"""Scale and restarts: two processes under torchrun (gloo, CPU) give the one-process
records; a run killed with SIGKILL mid-run and resumed has every example exactly once
(on disk, not only through the package's reader), with the values of an uninterrupted run."""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from captum_bilinear.evaluation.records import complete_blocks, record_files

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARGS = ["evaluate", "--scenes", "4", "--seed", "3", "--methods", "icam", "itsm-o", "--completeness-examples", "0",
        "--no-progress"]
VALUES = ("PGA", "PGE", "CID", "CII", "CTD", "CTI", "p_faithfulness", "delta_S", "delta_A", "score")


def _environment():
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    return env


def _run(arguments, out, prefix=()):
    launcher = [*prefix, "-m", "captum_bilinear"] if prefix else [sys.executable, "-m", "captum_bilinear"]
    command = [*launcher, *arguments, "--out", str(out)]
    completed = subprocess.run(command, env=_environment(), capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]


def _values(out):
    """example -> sorted (kind, method, object, negative, values) of its records."""
    result = {}
    for example_id, records in complete_blocks(str(out)).items():
        rows = []
        for record in records:
            values = tuple(float(record.get(key, "nan")) for key in VALUES)
            rows.append((record["kind"], record.get("method", ""), record.get("object", -1),
                         record.get("negative", -1), values))
        result[example_id] = sorted(rows, key=lambda row: row[:4])
    return result


def _blocks_on_disk(out):
    """Every complete block of every records file, read here with json alone (not through
    captum_bilinear's reader, which keeps the first block of an example and drops the
    others): (file, example_id, the methods of its "example" records)."""
    found = []
    for path in sorted(glob.glob(os.path.join(str(out), "records", "*.jsonl"))):
        lines, done = {}, {}
        with open(path) as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if record.get("kind") == "done":
                    done[record["block"]] = record
                else:
                    lines.setdefault(record["block"], []).append(record)
        for block, end in done.items():
            records = lines.get(block, [])
            if len(records) == end["records"] and all(r["example_id"] == end["example_id"] for r in records):
                found.append((os.path.basename(path), end["example_id"],
                              sorted(r["method"] for r in records if r["kind"] == "example")))
    return found


def _assert_same(first, second):
    assert sorted(first) == sorted(second)
    for example_id in first:
        for a, b in zip(first[example_id], second[example_id]):
            assert a[:4] == b[:4]
            assert a[4] == pytest.approx(b[4], rel=1e-6, abs=1e-7, nan_ok=True), (example_id, a[:4])


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    out = tmp_path_factory.mktemp("one")
    _run(ARGS, out)
    return out


def test_two_processes_under_torchrun_equal_one(one_process, tmp_path):
    out = tmp_path / "two"
    _run(ARGS, out, prefix=(sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"))
    files = record_files(str(out))
    assert sorted(os.path.basename(f)[:7] for f in files) == ["rank000", "rank001"]  # each rank its own file
    _assert_same(_values(one_process), _values(out))
    with open(one_process / "results.json") as a, open(out / "results.json") as b:
        first, second = json.load(a), json.load(b)
    assert second["settings"]["processes"] == 2
    for method, values in first["methods"].items():
        for key in ("PGA", "mPGE", "CID", "CTD", "p_faithfulness", "hard_negative_delta_A"):
            assert values[key] == pytest.approx(second["methods"][method][key], rel=1e-6, nan_ok=True)


def test_killed_run_resumes_with_every_example_once(one_process, tmp_path):
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "captum_bilinear", *ARGS, "--out", str(out)]
    process = subprocess.Popen(command, env=_environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and process.poll() is None:
            if os.path.isdir(out / "records") and len(complete_blocks(str(out))) >= 2:
                break
            time.sleep(0.1)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    done = complete_blocks(str(out))
    assert 1 <= len(done) < 4, "the run was to be killed mid-way"
    # a line a killed write leaves half written, and an example whose block was cut
    (path,) = record_files(str(out))
    with open(path, "a") as handle:
        handle.write('{"kind": "object", "method": "InteractionCAM", "example_id": "scene-00003", "block": "x", "PGA"')
    before = {example_id for _, example_id, _ in _blocks_on_disk(out)}
    _run([*ARGS, "--resume"], out)
    resumed = _values(out)
    assert len(record_files(str(out))) == 2  # the resumed run wrote a file of its own
    # on disk: each example has exactly one complete block, with each method once; the
    # resumed run's file has exactly the examples the killed run had not completed
    blocks = _blocks_on_disk(out)
    examples = [f"scene-{k:05d}" for k in range(4)]
    assert sorted(example_id for _, example_id, _ in blocks) == examples
    assert all(methods == ["ITSM-O", "InteractionCAM"] for _, _, methods in blocks)
    new_file = os.path.basename(next(f for f in record_files(str(out)) if f != path))
    assert {example_id for name, example_id, _ in blocks if name == new_file} == set(examples) - before
    assert "scene-00003" not in before  # the example cut mid-write was evaluated once, after the resume
    _assert_same(_values(one_process), resumed)
    with open(out / "results.json") as handle:
        assert json.load(handle)["dataset"]["examples"] == 4


@pytest.mark.parametrize("device", ["bogus", "gpu0", ""])
def test_an_unknown_device_is_one_error_naming_device(device):
    """``--device bogus`` ended in torch's RuntimeError (a traceback on the command line)."""
    from captum_bilinear.evaluation.distributed import current_process

    with pytest.raises(ValueError, match=f"device: {device!r} is not a device"):
        current_process(device)
