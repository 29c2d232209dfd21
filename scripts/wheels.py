"""Helpers of scripts/build-wheels: pack the Windows DLL into a wheel, and check wheels.

    python scripts/wheels.py repack TEMPLATE.whl fmnist.dll PLATFORM_TAG OUT_DIR
    python scripts/wheels.py fix-musl WHEEL...
    python scripts/wheels.py check WHEEL...
    python scripts/wheels.py sizes DOC.md WHEEL-OR-SDIST...

``repack`` makes the win_amd64 wheel from another platform's wheel of the same version (the
Python files and metadata are the same on every platform): PyPA's ``wheel`` tool unpacks it, the
extension module is replaced by ``fmnist/_core.pyd``, ``wheel pack`` writes RECORD anew and
``wheel tags`` sets the platform tag.

``fix-musl`` renames a musllinux extension module's dependency on ``libc.so`` (what zig links
against) to musl's runtime soname, ``libc.musl-<arch>.so.1``, as on Alpine.

``check`` opens each wheel and checks its extension module: an ELF one has no symbol table
(``.symtab``) and a Linux wheel passes ``auditwheel show`` for the tag in its name; a PE one has
no COFF symbol table, exports ``PyInit__core`` and links the stable-ABI ``python3.dll``; a
Mach-O one is fat (x86_64 + arm64) for a universal2 wheel. It prints each wheel's size.

``sizes`` rewrites the table of wheel sizes in DOC.md (between its markers) from the files named.
"""

from __future__ import annotations

import io
import re
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

EXTENSION = re.compile(r"^fmnist/_core\.[^/]*(so|pyd)$")


def _wheel(*args: str) -> str:
    """Runs the ``wheel`` tool (PyPA's, in target/tools) and returns what it printed."""
    done = subprocess.run([sys.executable, "-m", "wheel", *args], capture_output=True, text=True, check=True)
    return done.stdout


def _replace_module(wheel: Path, out_dir: Path, module: str, data: bytes) -> Path:
    """The wheel ``wheel`` with its extension module replaced by ``module`` (its path in the
    wheel) holding ``data``, packed into ``out_dir`` by ``wheel pack`` (which writes RECORD
    anew). Returns the new wheel's path."""
    with tempfile.TemporaryDirectory() as tmp:
        _wheel("unpack", str(wheel), "--dest", tmp)
        (root,) = Path(tmp).iterdir()
        (old,) = [p for p in root.rglob("_core.*") if EXTENSION.match(p.relative_to(root).as_posix())]
        old.unlink()
        (root / module).write_bytes(data)
        packed = Path(tmp) / "packed"
        packed.mkdir()
        _wheel("pack", str(root), "--dest-dir", str(packed))
        (built,) = packed.iterdir()
        target = out_dir / built.name
        built.replace(target)
    return target


def repack(template: Path, dll: Path, platform: str, out_dir: Path) -> Path:
    """The ``platform`` wheel of the Windows DLL: ``template`` (another platform's wheel of the
    same version: the Python files and metadata are the same everywhere) with ``fmnist/_core.pyd``
    for its extension module, retagged by ``wheel tags``."""
    with tempfile.TemporaryDirectory() as tmp:
        staged = _replace_module(template, Path(tmp), "fmnist/_core.pyd", dll.read_bytes())
        name = _wheel("tags", "--platform-tag", platform, "--remove", str(staged)).strip().splitlines()[-1]
        target = out_dir / name
        (Path(tmp) / name).replace(target)
    print(f"repacked {template.name} with {dll} as {target.name}")
    return target


def fix_musl(wheel: Path) -> None:
    """zig links a musl extension module against ``libc.so`` (the name of musl's development
    symlink, absent from a plain Alpine install) instead of musl's runtime soname
    ``libc.musl-<arch>.so.1``: patchelf renames the dependency, in place."""
    arch = re.search(r"musllinux_\d+_\d+_(\w+)\.whl$", wheel.name).group(1)  # type: ignore[union-attr]
    with zipfile.ZipFile(wheel) as z:
        (name,) = [n for n in z.namelist() if EXTENSION.match(n)]
        data = z.read(name)
    with tempfile.TemporaryDirectory() as tmp:
        so = Path(tmp) / "module.so"
        so.write_bytes(data)
        needed = subprocess.run(["patchelf", "--print-needed", str(so)], capture_output=True, text=True, check=True)
        if "libc.so" not in needed.stdout.split():
            return
        subprocess.run(["patchelf", "--replace-needed", "libc.so", f"libc.musl-{arch}.so.1", str(so)], check=True)
        out = Path(tmp) / "out"
        out.mkdir()
        _replace_module(wheel, out, name, so.read_bytes()).replace(wheel)
    print(f"{wheel.name}: libc.so -> libc.musl-{arch}.so.1")


def _check_elf(data: bytes) -> str:
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.elffile import ELFFile

    elf = ELFFile(io.BytesIO(data))
    if elf.get_section_by_name(".symtab") is not None:
        raise ValueError("not stripped: has a .symtab section")
    dynamic = next(s for s in elf.iter_sections() if isinstance(s, DynamicSection))
    needed = sorted(t.needed for t in dynamic.iter_tags() if t.entry.d_tag == "DT_NEEDED")
    if "libc.so" in needed:
        raise ValueError("needs libc.so (a development symlink), not musl's runtime libc.musl-<arch>.so.1")
    return f"ELF {elf.get_machine_arch()}, stripped, needs {', '.join(needed)}"


def _check_pe(data: bytes) -> str:
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    if data[pe : pe + 4] != b"PE\0\0":
        raise ValueError("not a PE file")
    machine, _, _, symtab, nsyms = struct.unpack_from("<HHIII", data, pe + 4)
    if symtab or nsyms:
        raise ValueError(f"not stripped: {nsyms} COFF symbols")
    if b"PyInit__core\0" not in data:
        raise ValueError("does not export PyInit__core")
    if b"python3.dll" not in data.lower():
        raise ValueError("does not link the stable-ABI python3.dll")
    return f"PE machine 0x{machine:04x}, stripped, exports PyInit__core, links python3.dll"


def _check_macho(data: bytes, universal: bool) -> str:
    magic = struct.unpack_from(">I", data)[0]
    if magic == 0xCAFEBABE:  # fat binary: big-endian header, one entry per architecture
        count = struct.unpack_from(">I", data, 4)[0]
        cpus = {struct.unpack_from(">I", data, 8 + 20 * i)[0] for i in range(count)}
        arches = sorted({0x01000007: "x86_64", 0x0100000C: "arm64"}.get(c, hex(c)) for c in cpus)
        if universal and arches != ["arm64", "x86_64"]:
            raise ValueError(f"universal2 wheel holds {arches}")
        return "Mach-O fat: " + " + ".join(arches)
    if universal:
        raise ValueError("universal2 wheel holds a thin Mach-O")
    return "Mach-O thin"


def _auditwheel(wheel: Path) -> str:
    shown = subprocess.run(["auditwheel", "show", str(wheel)], capture_output=True, text=True, check=True).stdout
    found = re.search(r'consistent with the following platform tag:\s*"([^"]+)"', " ".join(shown.split()))
    tags = wheel.name[: -len(".whl")].split("-")[-1].split(".")
    if found is None or found.group(1) not in tags:
        raise ValueError(f"auditwheel show says {found.group(1) if found else shown!r}, the name says {tags}")
    return f"auditwheel: {found.group(1)}"


def check(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as z:
        modules = [n for n in z.namelist() if EXTENSION.match(n)]
        if len(modules) != 1:
            raise ValueError(f"expected one extension module, found {modules}")
        data = z.read(modules[0])
    if data[:4] == b"\x7fELF":
        what = _check_elf(data)
    elif data[:2] == b"MZ":
        what = _check_pe(data)
    else:
        what = _check_macho(data, "universal2" in wheel.name)
    if "linux" in wheel.name:
        what += "; " + _auditwheel(wheel)
    return f"{wheel.name}: {wheel.stat().st_size / 1e6:.2f} MB; {modules[0]}: {what}"


def sizes_table(wheels: list[Path]) -> str:
    """A markdown table of each wheel's platform tag and size, as docs/building.md shows it."""
    rows = [
        f"| {w.name[: -len('.whl')].split('-')[-1].split('.')[0]} | {w.stat().st_size / 1e6:.2f} MB |"
        for w in sorted(wheels, key=lambda w: w.name)
        if w.suffix == ".whl"
    ]
    sdists = [w for w in wheels if w.name.endswith(".tar.gz")]
    rows += [f"| sdist | {w.stat().st_size / 1e6:.2f} MB |" for w in sdists]
    return "| wheel (platform tag) | size |\n|---|---|\n" + "\n".join(rows) + "\n"


def update_sizes(doc: Path, wheels: list[Path]) -> None:
    """Rewrites the table between doc's ``<!-- wheel sizes -->`` markers from the wheels built."""
    begin, end = "<!-- wheel sizes: scripts/build-wheels all writes this table -->\n", "<!-- end of wheel sizes -->"
    text = doc.read_text()
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    doc.write_text(head + begin + sizes_table(wheels) + end + tail)
    print(f"{doc}: wheel sizes updated")


def main(argv: list[str]) -> int:
    if argv[:1] == ["repack"] and len(argv) == 5:
        repack(Path(argv[1]), Path(argv[2]), argv[3], Path(argv[4]))
        return 0
    if argv[:1] == ["fix-musl"] and len(argv) > 1:
        for w in argv[1:]:
            fix_musl(Path(w))
        return 0
    if argv[:1] == ["sizes"] and len(argv) > 2:
        update_sizes(Path(argv[1]), [Path(w) for w in argv[2:]])
        return 0
    if argv[:1] == ["check"] and len(argv) > 1:
        failed = 0
        for w in argv[1:]:
            try:
                print(check(Path(w)))
            except (ValueError, OSError, subprocess.CalledProcessError) as e:
                print(f"{Path(w).name}: FAILED: {e}", file=sys.stderr)
                failed += 1
        return 1 if failed else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
