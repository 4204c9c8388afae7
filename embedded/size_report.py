#!/usr/bin/env python3
"""The size report of the firmware images (called by scripts/embedded.sh).

For each image: flash (.text + .rodata), RAM (.data + .bss) and the stack high-water
mark measured in QEMU (from its transcript), then the WebSocket share of flash two ways:

- image - baseline: what the WebSocket library adds to the same network job without
  WebSocket (everything: the library, its dependencies, the library code of `core` and
  `compiler_builtins` that it pulls in, and the application's WebSocket calls);
- by source: the bytes of .text whose debug line information points into the library's
  own crates (Sockeye: sockeye-proto + sockeye-embedded-io; embedded-websocket and its
  heapless), then with their dependencies (httparse, sha1, base64, ...). Code of `core`
  inlined into a crate counts for that crate; functions of `core` and
  `compiler_builtins` that stay out of line (memcpy, memmove, 64-bit division,
  formatting, from_utf8) are shared and count for no one, so this is a lower bound.

Usage: size_report.py FIRMWARE_DIR TRANSCRIPT_DIR [--markdown]
"""

import collections
import re
import subprocess
import sys
from pathlib import Path

IMAGES = [("sockeye", "Sockeye"), ("ews", "embedded-websocket 0.9"), ("baseline", "no WebSocket")]

OWN = {
    "sockeye": {"sockeye-proto", "sockeye-embedded-io"},
    "ews": {"embedded-websocket", "heapless"},
}
DEPS = {
    "sockeye": {"httparse", "sha1", "base64", "rand_chacha", "ppv-lite86", "rand_core",
                "digest", "block-buffer", "simdutf8", "embedded-io-async"},
    "ews": {"httparse", "sha1", "base64", "digest", "block-buffer",
            "hash32", "rand_core"},
}


def sections(elf):
    out = subprocess.run(["arm-none-eabi-size", "-A", str(elf)], check=True,
                         capture_output=True, text=True).stdout
    sizes = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            sizes[parts[0]] = int(parts[1])
    return sizes


def crate_of(path):
    match = re.search(r"registry/src/[^/]+/([^/]+?)-\d[^/]*/", path)
    if match:
        return match.group(1)
    if "/adapters/embedded-io/" in path:
        return "sockeye-embedded-io"
    if "/embedded/firmware/" in path:
        return "firmware"
    if re.search(r"/core/src/", path) and "/rustc/" not in path and "rustlib" not in path:
        return "sockeye-proto"
    return "core"


def by_crate(elf):
    """Bytes of .text per crate, from the line table with inlining: code of `core`
    inlined into a crate counts for the innermost crate it was inlined into."""
    out = subprocess.run(["arm-none-eabi-objdump", "-d", "-l", "--inlines",
                          "--no-show-raw-insn", "-j", ".text", str(elf)], check=True,
                         capture_output=True, text=True).stdout
    instruction = re.compile(r"^\s+([0-9a-f]+):\s")
    chain, previous, sizes = ["core"], None, collections.Counter()

    def owner():
        return next((crate for crate in chain if crate != "core"), "core")

    for line in out.splitlines():
        match = instruction.match(line)
        if match:
            address = int(match.group(1), 16)
            if previous is not None and 0 < address - previous[0] <= 8:
                sizes[previous[1]] += address - previous[0]
            previous = (address, owner())
        elif line.startswith("inlined by /"):
            chain.append(crate_of(line[len("inlined by "):].split(":")[0]))
        elif line.startswith("/") and re.search(r":\d+", line):
            chain = [crate_of(line.split(":")[0])]
    return sizes


def transcript_number(text, pattern):
    match = re.search(pattern, text)
    return int(match.group(1)) if match else None


def kib(n):
    return f"{n} B ({n / 1024:.1f} KiB)" if n is not None else "-"


def main():
    firmware, transcripts = Path(sys.argv[1]), Path(sys.argv[2])
    elf_dir = firmware / "target" / "thumbv7em-none-eabihf" / "release"
    rows = {}
    for name, _ in IMAGES:
        s = sections(elf_dir / name)
        text = (transcripts / f"{name}.log").read_text()
        crates = by_crate(elf_dir / name)
        rows[name] = {
            "flash": s.get(".text", 0) + s.get(".rodata", 0),
            "ram": s.get(".data", 0) + s.get(".bss", 0),
            "stack": transcript_number(text, r"stack high-water (\d+) bytes"),
            "own": sum(crates[c] for c in OWN.get(name, set())),
            "deps": sum(crates[c] for c in OWN.get(name, set()) | DEPS.get(name, set())),
        }
    base = rows["baseline"]
    header = "| | " + " | ".join(label for _, label in IMAGES) + " |"
    lines = [header, "|" + " --- |" * (len(IMAGES) + 1)]

    def row(label, key, fmt=kib, minus_base=False, libs_only=False):
        cells = []
        for name, _ in IMAGES:
            if (minus_base or libs_only) and name == "baseline":
                cells.append("-")
                continue
            value = rows[name][key]
            if minus_base and value is not None:
                value -= base[key]
            cells.append(fmt(value))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    row("flash: .text + .rodata", "flash")
    row("RAM: .data + .bss", "ram")
    row("stack high-water (QEMU)", "stack")
    row("WebSocket flash: image - baseline", "flash", minus_base=True)
    row("WebSocket stack: image - baseline", "stack", minus_base=True)
    row("library's own crates, by source (.text)", "own", libs_only=True)
    row("... with their dependencies (.text)", "deps", libs_only=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
