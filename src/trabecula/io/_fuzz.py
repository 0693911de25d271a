"""A seeded byte-mutation fuzzer for the readers (issue 20): ``tests/io/test_fuzz.py`` runs a few hundred mutants,
``bench/bench_fuzz.py`` tens of thousands.

Seed files (a small DICOM slice, NRRD, MetaImage, TIFF, NIfTI and HDF5 projections) are written by trabecula;
each mutant ``i`` is derived from one of them by a generator seeded with ``(seed, i)`` (bit flips, interesting
values, header digits changed, bytes inserted, deleted, duplicated, truncation), so any mutant can be rebuilt from
its index. Mutants are read, as ``trabecula info`` reads them (reader, then the summary), in worker processes
under an address-space limit (``RLIMIT_AS``) and a memory budget (``TRABECULA_MAX_MEMORY``); the parent kills a
worker that makes no progress within the timeout (a hang) and restarts it after the mutant at fault.

Outcomes per mutant: ``ok`` (read), ``input`` (a :class:`~trabecula.errors.TrabeculaError`: a clean refusal),
``internal`` (any other exception: a bug), ``memory`` (MemoryError), ``crash`` (the worker died), ``hang``.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

#: Seed file names, one per reader; the suffix picks the reader as ``trabecula info`` would.
SEEDS = ("seed.dcm", "seed.nrrd", "seed.mha", "seed.tif", "seed.nii", "seed.h5")

_INTERESTING = [b"\x00", b"\xff", b"\x7f", b"\x80", b"\x00\x00", b"\xff\xff", b"\xff\xff\xff\x7f", b"\x00\x00\x00\x80",
                b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x01\x00\x00\x00", b"\x00\x00\x01\x00", b"\x10\x27\x00\x00"]
_NUMBERS = [b"0", b"-1", b"1e308", b"nan", b"inf", b"100000", b"1500", b"65535", b"4294967296", b"2147483648", b"-0",
            b"0.000001", b"1e-300", b"99999999999999999999"]


def write_seeds(folder: Path) -> dict[str, Path]:
    """Write the small, valid seed files (one per reader) into ``folder``."""
    import SimpleITK as sitk

    from trabecula import Volume
    from trabecula.io import ProjectionData, write_projections, write_volume

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    a = (rng.integers(-1000, 1500, (4, 6, 5))).astype(np.int16)
    vol = Volume(a, (0.5, 0.25, 0.25), (1.0, 2.0, 3.0), "HU")
    out = {}
    dcm = write_volume(Volume(a[:1], (0.5, 0.25, 0.25), (1.0, 2.0, 3.0), "HU"), folder / "dcm", format="dicom", force=True)
    seed = folder / "seed.dcm"
    seed.write_bytes(next(iter(sorted(dcm.iterdir()))).read_bytes())
    out["seed.dcm"] = seed
    img = sitk.GetImageFromArray(a)
    img.SetSpacing((0.25, 0.25, 0.5))
    for name in ("seed.nrrd", "seed.mha"):
        sitk.WriteImage(img, str(folder / name), useCompression=False)
        out[name] = folder / name
    for name in ("seed.tif", "seed.nii"):
        out[name] = write_volume(vol, folder / name, force=True)
    proj = ProjectionData(rng.integers(100, 4000, (4, 3, 6)).astype(np.float32), np.linspace(0, np.pi, 4, endpoint=False),
                          np.full((2, 3, 6), 4000, np.float32), np.zeros((1, 3, 6), np.float32), (0.1, 0.1),
                          {"kind": "parallel"})
    out["seed.h5"] = write_projections(proj, folder / "seed.h5", force=True)
    return out


def _header_end(data: bytes) -> int:
    """Where a text header ends (NRRD's blank line, MetaImage's ElementDataFile line), else 512."""
    for marker in (b"\n\n", b"LOCAL\n"):
        k = data.find(marker)
        if 0 <= k < 4096:
            return k + len(marker)
    return min(len(data), 512)


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """One mutant of ``data``: 1–4 mutations, half of them aimed at the header."""
    b = bytearray(data)
    head = _header_end(data)
    for _ in range(int(rng.integers(1, 5))):
        if not b:
            b = bytearray(b"\0")
        region = head if rng.random() < 0.5 else len(b)
        region = max(1, min(region, len(b)))
        pos = int(rng.integers(0, region))
        kind = int(rng.integers(0, 9))
        if kind == 0:  # flip bits
            for _ in range(int(rng.integers(1, 9))):
                k = int(rng.integers(0, region))
                b[k] ^= 1 << int(rng.integers(0, 8))
        elif kind == 1:  # an interesting value
            v = _INTERESTING[int(rng.integers(0, len(_INTERESTING)))]
            b[pos:pos + len(v)] = v
        elif kind == 2:  # random bytes
            n = int(rng.integers(1, 17))
            b[pos:pos + n] = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        elif kind == 3:  # insert
            n = int(rng.integers(1, 65))
            b[pos:pos] = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        elif kind == 4:  # delete
            n = int(rng.integers(1, 65))
            del b[pos:pos + n]
        elif kind == 5:  # duplicate a block
            n = int(rng.integers(1, 257))
            b[pos:pos] = b[pos:pos + n]
        elif kind == 6:  # truncate
            del b[int(rng.integers(0, len(b))):]
        else:  # change a number in a text header (or anywhere, for binary ones)
            text = bytes(b[:head])
            starts = [i for i in range(len(text)) if chr(text[i]).isdigit() and (i == 0 or not chr(text[i - 1]).isdigit())]
            if starts:
                s = starts[int(rng.integers(0, len(starts)))]
                e = s
                while e < len(b) and chr(b[e]).isdigit():
                    e += 1
                b[s:e] = _NUMBERS[int(rng.integers(0, len(_NUMBERS)))]
            else:
                b[pos:pos + 1] = bytes([int(rng.integers(0, 256))])
    return bytes(b)


#: Leading bytes (magic numbers, DICOM's preamble) left intact in 9 mutants of 10, so most mutants reach the parser.
_MAGIC = {".dcm": 132, ".tif": 4, ".nrrd": 8, ".h5": 8}


def mutant(seeds: dict[str, bytes], seed: int, i: int) -> tuple[str, bytes]:
    """Mutant ``i`` of the run seeded ``seed``: ``(seed file name, bytes)``."""
    names = sorted(seeds)
    name = names[i % len(names)]
    rng = np.random.default_rng([seed, i])
    data = seeds[name]
    keep = _MAGIC.get(Path(name).suffix, 0) if rng.random() < 0.9 else 0
    return name, data[:keep] + mutate(data[keep:], rng)


def _peak_rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def read_like_info(path: Path) -> None:
    """What ``trabecula info`` does with a file: read it, then summarise it."""
    from trabecula.io import detect_format, read_projections, read_volume
    from trabecula.io.info import summarize, summarize_projections

    if detect_format(path) == "projections":
        summarize_projections(read_projections(path))
    else:
        summarize(read_volume(path))


def worker(seed_dir: str, seed: int, indices: list[int], scratch: str) -> None:
    """Read mutants ``indices``; print one JSON line per mutant (``i``, ``name``, ``outcome``, ``detail``, ``rss``)."""
    import warnings

    from trabecula.errors import TrabeculaError

    warnings.simplefilter("ignore")
    seeds = {n: (Path(seed_dir) / n).read_bytes() for n in SEEDS}
    print(json.dumps({"ready": True, "rss": _peak_rss()}), flush=True)
    for i in indices:
        name, data = mutant(seeds, seed, i)
        path = Path(scratch) / f"m{i}{Path(name).suffix}"
        path.write_bytes(data)
        t0 = time.perf_counter()
        try:
            read_like_info(path)
            outcome, detail = "ok", ""
        except TrabeculaError as exc:
            outcome, detail = "input", str(exc).replace(str(path), "<mutant>")[:300]
        except MemoryError as exc:
            outcome, detail = "memory", repr(exc)[:300]
        except Exception as exc:  # noqa: BLE001 — what the fuzzer is looking for
            import traceback

            tb = traceback.extract_tb(exc.__traceback__)
            where = f"{Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else ""
            outcome, detail = "internal", f"{type(exc).__name__}: {exc} @ {where}"[:400]
        finally:
            path.unlink(missing_ok=True)
        print(json.dumps({"i": i, "name": name, "outcome": outcome, "detail": detail,
                          "seconds": round(time.perf_counter() - t0, 4), "rss": _peak_rss()}), flush=True)


def _limit_address_space(nbytes: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (nbytes, nbytes))
    return apply


def run(n: int, seed: int = 0, *, workers: int = 1, timeout: float = 30.0, budget: str = "256M",
        address_space: int = 3 * 1024**3, start: int = 0, progress=None) -> dict[str, Any]:
    """Fuzz mutants ``start … start + n - 1``; returns counts per outcome and per seed, failures, peak RSS, time."""
    t0 = time.perf_counter()
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="trabecula-fuzz-") as tmp:
        seed_dir = Path(tmp) / "seeds"
        write_seeds(seed_dir)
        todo = [list(range(start + w, start + n, workers)) for w in range(workers)]
        env = {**os.environ, "TRABECULA_MAX_MEMORY": budget, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
               "MKL_NUM_THREADS": "1", "TRABECULA_NO_PROGRESS": "1"}
        procs: dict[int, dict] = {}

        def spawn(w: int) -> None:
            scratch = Path(tmp) / f"w{w}"
            scratch.mkdir(exist_ok=True)
            code = ("import json, sys; from trabecula.io._fuzz import worker; "
                    "worker(sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4])")
            p = subprocess.Popen([sys.executable, "-c", code, str(seed_dir), str(seed), json.dumps(todo[w]), str(scratch)],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
                                 preexec_fn=_limit_address_space(address_space))
            os.set_blocking(p.stdout.fileno(), False)
            procs[w] = {"p": p, "buf": "", "deadline": time.monotonic() + max(120.0, timeout), "ready": False}

        for w in range(workers):
            if todo[w]:
                spawn(w)
        while procs:
            time.sleep(0.01)
            for w in list(procs):
                st = procs[w]
                p = st["p"]
                try:
                    chunk = os.read(p.stdout.fileno(), 1 << 16).decode()
                except BlockingIOError:
                    chunk = None
                eof = chunk == ""
                st["buf"] += chunk or ""
                *lines, st["buf"] = st["buf"].split("\n")
                for line in lines:
                    rec = json.loads(line)
                    st["deadline"] = time.monotonic() + timeout
                    if rec.get("ready"):
                        continue
                    results.append(rec)
                    todo[w].remove(rec["i"])
                    if progress:
                        progress(len(results), n)
                dead = eof and p.poll() is not None
                if dead or time.monotonic() > st["deadline"]:
                    if not dead:
                        p.kill()
                    p.wait()
                    if todo[w]:  # the mutant at fault: the next one this worker had to do
                        i = todo[w].pop(0)
                        outcome = "crash" if dead else "hang"
                        results.append({"i": i, "name": sorted(SEEDS)[i % len(SEEDS)], "outcome": outcome,
                                        "detail": f"worker exit {p.returncode}" if dead else f"no result in {timeout:g} s",
                                        "seconds": None, "rss": None})
                    p.stdout.close()
                    del procs[w]
                    if todo[w]:
                        spawn(w)
    outcomes = Counter(r["outcome"] for r in results)
    per_seed: dict[str, Counter] = {}
    for r in results:
        per_seed.setdefault(r["name"], Counter())[r["outcome"]] += 1
    bad = [r for r in results if r["outcome"] in ("internal", "memory", "crash", "hang")]
    secs = [r["seconds"] for r in results if r["seconds"] is not None]
    return {
        "mutants": len(results), "seed": seed, "start": start, "workers": workers, "timeout_s": timeout,
        "memory_budget": budget, "address_space_limit_bytes": address_space,
        "outcomes": dict(outcomes), "per_seed": {k: dict(v) for k, v in sorted(per_seed.items())},
        "failures": sorted(bad, key=lambda r: r["i"]),
        "peak_rss_bytes": max((r["rss"] for r in results if r["rss"]), default=0),
        "slowest_s": max(secs, default=0.0), "mean_s": float(np.mean(secs)) if secs else 0.0,
        "wall_s": round(time.perf_counter() - t0, 1),
    }


__all__ = ["SEEDS", "mutant", "mutate", "read_like_info", "run", "worker", "write_seeds"]
