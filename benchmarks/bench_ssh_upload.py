"""SFTP upload of a 100 MB file: af-ssh vs Debian's OpenSSH sshd (see bench_ssh).

af-ssh's uploads go through the SFTP guard (temporary name, renamed when
complete); sshd's sftp-server writes the file in place.
"""

from __future__ import annotations

from ssh_parts import binary_file, parts, sftp

MB = 100

SPEC = {
    "what": f"SFTP upload of a {MB} MB file (MB/s, higher is better)",
    "anchor": "OpenSSH sshd on loopback (Debian), same sftp-server and client",
    "unit": "MB/s",
    "target": ">= 0.5",
}


def run(repeats: int) -> tuple[list[float], list[float]]:
    p = parts()
    local = p.root / "local"
    local.mkdir(exist_ok=True)
    source = binary_file(local, "up.bin", MB)
    ours, anchor = [], []
    for i in range(repeats):
        ours.append(MB / sftp("af-ssh", f"put {source} bench-up.bin\n"))
        anchor.append(MB / sftp("openssh", f"put {source} {p.anchor_dir}/bench-up.bin\n"))
        print(f"   run {i + 1}: af-ssh {ours[-1]:.0f}, OpenSSH {anchor[-1]:.0f} MB/s", flush=True)
    return ours, anchor
