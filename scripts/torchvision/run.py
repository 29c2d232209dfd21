"""torchvision's own test cases for the MNIST family, run against fmnist.torch's classes.

torchvision's ``test/test_datasets.py`` (with its ``datasets_utils.py`` and ``common_utils.py``)
is fetched at run time from the source tarball Debian ships of torchvision, checked against its
SHA-256, and extracted under ``target/``: none of it is in this tree. Its MNIST, FashionMNIST,
KMNIST, EMNIST and QMNIST test cases run twice in subprocesses: with torchvision's own classes,
then with fmnist.torch's put in their place (``swap.py``, a pytest plugin: only the class under
test changes). The run fails unless every case that passes for torchvision's classes passes for
fmnist's.

    python scripts/torchvision/run.py [--work DIR]      # DIR defaults to target/torchvision-tests
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: Debian's source tarball of torchvision 0.21.0 (pytorch-vision 0.21.0-3, trixie), and its SHA-256.
SOURCE = "http://deb.debian.org/debian/pool/main/p/pytorch-vision/pytorch-vision_0.21.0.orig.tar.gz"
SHA256 = "0a4a967bbb7f9810f792cd0289a07fb98c8fb5d1303fae8b63e3a6b05d720058"
FILES = ("test/test_datasets.py", "test/datasets_utils.py", "test/common_utils.py")
#: The test cases of the MNIST family (the classes fmnist.torch replaces).
CASES = ("MNISTTestCase", "FashionMNISTTestCase", "KMNISTTestCase", "EMNISTTestCase", "QMNISTTestCase")


def fetch(work: Path) -> Path:
    """The three test files, extracted under ``work`` (downloaded once, checked every time)."""
    tarball = work / SOURCE.rsplit("/", 1)[1]
    if not tarball.is_file() or hashlib.sha256(tarball.read_bytes()).hexdigest() != SHA256:
        work.mkdir(parents=True, exist_ok=True)
        partial = tarball.with_suffix(".partial")
        with urllib.request.urlopen(SOURCE, timeout=60) as response, open(partial, "wb") as out:
            out.write(response.read())
        digest = hashlib.sha256(partial.read_bytes()).hexdigest()
        if digest != SHA256:
            partial.unlink()
            raise SystemExit(f"{SOURCE}: SHA-256 {digest}, not the expected {SHA256}")
        partial.replace(tarball)
    tests = work / "test"
    with tarfile.open(tarball) as tar:
        for member in tar.getmembers():
            name = member.name.split("/", 1)[-1]
            if name in FILES:
                member.name = Path(name).name
                tar.extract(member, tests, filter="data") if sys.version_info >= (3, 12) else tar.extract(member, tests)
    return tests


def passed(tests: Path, swap: bool, report: Path) -> dict[str, str]:
    """Each test case's outcome (passed, failed, skipped) in one run of the MNIST family's cases."""
    with tempfile.TemporaryDirectory() as home:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(HERE), str(tests), os.environ.get("PYTHONPATH", "")]),
            "FMNIST_SWAP": "1" if swap else "0",
            "FMNIST_HOME": str(Path(home) / "fmnist"),  # nothing of the user's cache read or written
            "FMNIST_SEARCH_PATH": str(Path(home) / "nothing"),
        }
        cmd = [sys.executable, "-m", "pytest", "-p", "swap", "-p", "no:cacheprovider", "-q", f"--junitxml={report}"]
        cmd += [f"test_datasets.py::{case}" for case in CASES]
        subprocess.run(cmd, cwd=tests, env=env, check=False)
    outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        kinds = {child.tag for child in case}
        outcomes[name] = "failed" if kinds & {"failure", "error"} else "skipped" if "skipped" in kinds else "passed"
    return outcomes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=HERE.parents[1] / "target" / "torchvision-tests")
    args = parser.parse_args()
    args.work = args.work.resolve()  # (the runs' working folder is the tests' own)
    tests = fetch(args.work)
    theirs = passed(tests, False, args.work / "torchvision.xml")
    ours = passed(tests, True, args.work / "fmnist.xml")
    if not theirs:
        print("no test case ran", file=sys.stderr)
        return 1
    lost = sorted(n for n, o in theirs.items() if o == "passed" and ours.get(n) != "passed")
    counts = {k: sum(o == "passed" for o in v.values()) for k, v in (("torchvision", theirs), ("fmnist", ours))}
    print(
        f"torchvision's MNIST-family test cases ({SOURCE.rsplit('/', 1)[1]}): {len(theirs)} run; "
        f"passed with torchvision's classes: {counts['torchvision']}, with fmnist.torch's: {counts['fmnist']}"
    )
    for name in lost:
        print(f"  passes for torchvision's class, not for fmnist's: {name}")
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
