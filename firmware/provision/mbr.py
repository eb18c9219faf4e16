"""The MBR (DOS) partition table of a disk image: read the four primary entries, nothing more.

Raspberry Pi OS images carry an MBR with a FAT boot partition and an ext4 root partition; a GPT
(protective type 0xEE) or a missing boot signature is a bad base image. Pure: bytes in, data out.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from firmware.provision import ProvisionError

SECTOR = 512
FAT_TYPES = {0x01, 0x04, 0x06, 0x0B, 0x0C, 0x0E}
LINUX_TYPE = 0x83


class BadImage(ProvisionError):
    """The base image is not a Raspberry Pi OS style disk image."""


@dataclass(frozen=True)
class Partition:
    number: int  # 1..4
    type_id: int
    start_lba: int
    sectors: int

    @property
    def offset(self) -> int:
        return self.start_lba * SECTOR

    @property
    def size(self) -> int:
        return self.sectors * SECTOR


def read_partitions(sector0: bytes, image_size: int, name: str = "image") -> list[Partition]:
    """The used primary partitions of an MBR, checked to lie inside an image of `image_size`."""
    if len(sector0) < SECTOR or sector0[510:512] != b"\x55\xaa":
        raise BadImage(f"{name}: no MBR partition table (boot signature missing)")
    parts: list[Partition] = []
    for i in range(4):
        entry = sector0[446 + 16 * i : 446 + 16 * (i + 1)]
        type_id = entry[4]
        start, count = struct.unpack("<II", entry[8:16])
        if type_id == 0 or count == 0:
            continue
        if type_id == 0xEE:
            raise BadImage(f"{name}: GPT disk; a Raspberry Pi OS image with an MBR is needed")
        part = Partition(i + 1, type_id, start, count)
        if part.offset + part.size > image_size:
            raise BadImage(
                f"{name}: partition {part.number} ends past the end of the image "
                f"(truncated download?)"
            )
        parts.append(part)
    return parts


def boot_and_root(parts: list[Partition], name: str = "image") -> tuple[Partition, Partition]:
    """The FAT boot partition and the Linux root partition (first of each kind)."""
    boot = next((p for p in parts if p.type_id in FAT_TYPES), None)
    root = next((p for p in parts if p.type_id == LINUX_TYPE), None)
    if boot is None:
        raise BadImage(f"{name}: no FAT boot partition in the partition table")
    if root is None:
        raise BadImage(f"{name}: no Linux (ext4) root partition in the partition table")
    return boot, root
