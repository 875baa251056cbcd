#!/usr/bin/env python3
"""Section sizes of the firmware image and each crate's share of .text.

Usage: size-report.py FULL_ELF BASELINE_ELF

Two measures of what amps-core and amps-smoltcp cost:
  - symbol attribution: .text symbols summed per crate (the crate of the function's path; for
    `<T as Trait>::f` the crate of T). With LTO, code inlined into a caller counts for the
    caller's crate, so this is a lower bound for the inlined-into crates;
  - difference: .text of the full image minus a baseline image that has the same network,
    responder and console but no AMPS client. This is the code the client adds (the codec
    parts the responder also uses are in both images and not counted).
"""
import re
import subprocess
import sys
from collections import defaultdict
from shutil import which


def tool(name):
    for cand in (f"llvm-{name}", f"llvm-{name}-22", f"llvm-{name}-19", f"llvm-{name}-14"):
        if which(cand):
            return cand
    sys.exit(f"size-report: no llvm-{name} found")


def sections(elf):
    out = subprocess.run([tool("size"), "-A", elf], check=True, capture_output=True, text=True).stdout
    sizes = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            sizes[parts[0]] = int(parts[1])
    return sizes


def crate_of(name):
    name = name.strip()
    while name.startswith("<"):
        name = name[1:]
    if name.startswith("&"):
        name = name.lstrip("&").replace("mut ", "", 1)
    m = re.match(r"[A-Za-z_][A-Za-z0-9_]*", name)
    return m.group(0) if m else "?"


def text_by_crate(elf):
    out = subprocess.run([tool("nm"), "-S", "-C", "--radix=d", elf], check=True,
                         capture_output=True, text=True).stdout
    per = defaultdict(int)
    for line in out.splitlines():
        parts = line.split(None, 3)
        if len(parts) < 4 or parts[2] not in ("t", "T"):
            continue
        per[crate_of(parts[3])] += int(parts[1])
    return per


def kib(n):
    return f"{n / 1024:.1f} KiB"


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    full, base = sys.argv[1], sys.argv[2]
    fs, bs = sections(full), sections(base)
    print("| image | .text | .rodata | .data | .bss |")
    print("|---|---|---|---|---|")
    for label, s in (("self-test (full)", fs), ("baseline (no AMPS client)", bs)):
        print(f"| {label} | {s.get('.text', 0)} | {s.get('.rodata', 0)} | {s.get('.data', 0)} | {s.get('.bss', 0)} |")
    dt = fs.get(".text", 0) - bs.get(".text", 0)
    dr = fs.get(".rodata", 0) - bs.get(".rodata", 0)
    print()
    print(f"difference (what the AMPS client adds): .text {dt} B ({kib(dt)}), .rodata {dr} B ({kib(dr)})")
    per = text_by_crate(full)
    total = sum(per.values())
    print()
    print("| crate | .text by symbol attribution (full image) |")
    print("|---|---|")
    for crate, n in sorted(per.items(), key=lambda kv: -kv[1]):
        if n >= 256:
            print(f"| {crate} | {n} B ({kib(n)}) |")
    small = sum(n for n in per.values() if n < 256)
    print(f"| (crates under 256 B) | {small} B |")
    print(f"| all symbols | {total} B |")
    core_adapter = per.get("amps_core", 0) + per.get("amps_smoltcp", 0)
    print()
    print(f"amps_core + amps_smoltcp by attribution: {core_adapter} B ({kib(core_adapter)})")


if __name__ == "__main__":
    main()
