"""Helpers of scripts/build-wheels: pack the Windows DLL into a wheel, and check wheels.

    python scripts/wheels.py repack TEMPLATE.whl fmnist.dll PLATFORM_TAG OUT_DIR
    python scripts/wheels.py fix-musl WHEEL...
    python scripts/wheels.py check WHEEL...

``repack`` makes the win_amd64 wheel from another platform's wheel of the same version (the
Python files and metadata are the same on every platform): the extension module is replaced by
``fmnist/_core.pyd``, the WHEEL file's tag is rewritten and RECORD is computed anew.

``fix-musl`` renames a musllinux extension module's dependency on ``libc.so`` (what zig links
against) to musl's runtime soname, ``libc.musl-<arch>.so.1``, as on Alpine.

``check`` opens each wheel and checks its extension module: an ELF one has no symbol table
(``.symtab``) and a Linux wheel passes ``auditwheel show`` for the tag in its name; a PE one has
no COFF symbol table, exports ``PyInit__core`` and links the stable-ABI ``python3.dll``; a
Mach-O one is fat (x86_64 + arm64) for a universal2 wheel. It prints each wheel's size.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

EXTENSION = re.compile(r"^fmnist/_core\.[^/]*(so|pyd)$")


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def rewrite(source: Path, target: Path, module: tuple[str, bytes], platform: str | None = None) -> None:
    """Writes ``target``: the wheel ``source`` with its extension module replaced by ``module``
    (name, bytes), the WHEEL file's tag set to ``platform`` when given, and RECORD made anew."""
    _, _, python, abi, _ = source.name[: -len(".whl")].split("-", 4)
    files: list[tuple[str, bytes]] = []
    record_name = ""
    with zipfile.ZipFile(source) as z:
        for info in z.infolist():
            data = z.read(info)
            if EXTENSION.match(info.filename):
                files.append(module)
            elif info.filename.endswith(".dist-info/RECORD"):
                record_name = info.filename
            elif info.filename.endswith(".dist-info/WHEEL") and platform is not None:
                text = re.sub(r"^Tag: .*$", f"Tag: {python}-{abi}-{platform}", data.decode(), flags=re.M)
                files.append((info.filename, text.encode()))
            else:
                files.append((info.filename, data))
    if not record_name or module not in files:
        raise SystemExit(f"{source}: no RECORD or no extension module to replace")
    record = "".join(f"{f},{_record_hash(d)},{len(d)}\n" for f, d in files) + f"{record_name},,\n"
    tmp = target.with_name(target.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for f, d in [*files, (record_name, record.encode())]:
            z.writestr(zipfile.ZipInfo(f, date_time=(1980, 1, 1, 0, 0, 0)), d, zipfile.ZIP_DEFLATED)
    tmp.replace(target)


def repack(template: Path, dll: Path, platform: str, out_dir: Path) -> Path:
    name, version, python, abi, _ = template.name[: -len(".whl")].split("-", 4)
    target = out_dir / f"{name}-{version}-{python}-{abi}-{platform}.whl"
    rewrite(template, target, ("fmnist/_core.pyd", dll.read_bytes()), platform)
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
        rewrite(wheel, wheel, (name, so.read_bytes()))
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


def main(argv: list[str]) -> int:
    if argv[:1] == ["repack"] and len(argv) == 5:
        repack(Path(argv[1]), Path(argv[2]), argv[3], Path(argv[4]))
        return 0
    if argv[:1] == ["fix-musl"] and len(argv) > 1:
        for w in argv[1:]:
            fix_musl(Path(w))
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
