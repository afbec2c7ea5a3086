"""Saved tapes: pickling, tape.save/tape.load, and files that are not what they claim."""
import io
import json
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import tape
from models import tutorial


@pytest.fixture(scope="module")
def f():
    x = tutorial.sample(4000, np.random.default_rng(5))
    return tape.record(tutorial.nll, tutorial.TRUTH, data={"x": x}, chunk_size=999)


P = tutorial.TRUTH * 1.03


def same_results(a, b):
    assert a(P) == b(P)
    assert np.array_equal(a.grad(P), b.grad(P))
    assert np.array_equal(a.hessian(P), b.hessian(P))


def test_pickle_round_trip_is_bit_for_bit(f):
    f.grad(P)  # derived tapes recorded before pickling are saved too
    same_results(pickle.loads(pickle.dumps(f)), f)


def test_save_load_round_trip(f, tmp_path):
    path = tmp_path / "nll.tape"
    tape.save(f, path)
    same_results(tape.load(path), f)


def test_load_in_a_fresh_process_without_the_recording_code(f, tmp_path):
    path = tmp_path / "nll.tape"
    tape.save(f, path)
    code = ("import sys, numpy as np, tape; g = tape.load(sys.argv[1]); "
            "p = np.array([float(v) for v in sys.argv[2:]]); "
            "print(repr(g(p))); print(' '.join(repr(float(v)) for v in g.grad(p)))")
    out = subprocess.run([sys.executable, "-c", code, str(path)] + [repr(float(v)) for v in P],
                         capture_output=True, text=True, check=True).stdout.split("\n")
    assert float(out[0]) == f(P)
    assert np.array_equal(np.array([float(v) for v in out[1].split()]), f.grad(P))


def test_saved_without_data(f, tmp_path):
    path = tmp_path / "model.tape"
    tape.save(f, path, include_data=False)
    g = tape.load(path)
    with pytest.raises(tape.DataError, match="with_data"):
        g(P)
    assert g.with_data(**f.data)(P) == f(P)


def test_truncated_corrupt_and_foreign_files(f, tmp_path):
    good = tape.persist.dumps(f)
    cases = {
        "truncated": good[: len(good) // 2],
        "foreign": b"\x89PNG not a tape at all",
        "empty": b"",
    }
    for name, blob in cases.items():
        path = tmp_path / name
        path.write_bytes(blob)
        with pytest.raises(tape.TapeFileError, match="not a"):
            tape.load(path)
    # a zip archive that is not a tape
    buf = io.BytesIO()
    np.savez(buf, something=np.zeros(3))
    (tmp_path / "npz").write_bytes(buf.getvalue())
    with pytest.raises(tape.TapeFileError, match="no header"):
        tape.load(tmp_path / "npz")
    # flipped bytes inside a member: caught by the zip checksum or by validation
    bad = bytearray(good)
    mid = len(bad) // 3
    bad[mid:mid + 64] = bytes(64)
    (tmp_path / "corrupt").write_bytes(bytes(bad))
    with pytest.raises(tape.TapeFileError):
        tape.load(tmp_path / "corrupt")


def _rewrite_header(blob, change):
    z = np.load(io.BytesIO(blob), allow_pickle=False)
    arrays = {k: z[k] for k in z.files}
    header = json.loads(arrays["header"].tobytes().decode())
    change(header)
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def test_newer_format_version_is_refused(f):
    blob = _rewrite_header(tape.persist.dumps(f), lambda h: h.update(version=99))
    with pytest.raises(tape.TapeFileError, match="version 99.*upgrade"):
        tape.persist.loads(blob)


def test_invalid_graph_is_refused(f):
    def break_it(h):
        h["nodes"][-1][1] = [10**9]
    with pytest.raises(tape.TapeFileError, match="invalid tape"):
        tape.persist.loads(_rewrite_header(tape.persist.dumps(f), break_it))

    def unknown(h):
        h["nodes"][-1][0] = "fft"
    with pytest.raises(tape.TapeFileError, match="unknown op 'fft'"):
        tape.persist.loads(_rewrite_header(tape.persist.dumps(f), unknown))

    def bad_index(h):                         # a gather reaching past its operand
        for node in h["nodes"]:
            if node[0] == "gather":
                node[4][0][0] = 10**6
                return
        raise AssertionError("no gather in the tape")
    with pytest.raises(tape.TapeFileError, match="does not fit"):
        tape.persist.loads(_rewrite_header(tape.persist.dumps(f), bad_index))
