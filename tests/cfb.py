"""A small writer of OLE compound files ([MS-CFB] version 3), to build Outlook ``.msg``
fixtures in the tests (nothing in Python writes them; olefile only reads).

Streams under 4,096 bytes go to the mini stream, as the specification requires; directory
siblings are chained through their right-sibling pointers (a valid, if unbalanced, tree that
every reader walks). ``msg_file`` lays out the MAPI property streams of [MS-OXMSG] that Outlook
writes for a mail: subject, body, sender, the recipient table (with PR_RECIPIENT_TYPE in the
fixed-size property stream) and the attachment table, embedded messages included.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

SECTOR = 512
MINI = 64
CUTOFF = 4096
FREE, END, FATSECT = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD
NOSTREAM = 0xFFFFFFFF


@dataclass
class Node:
    name: str
    data: bytes | None = None  # a stream when not None, else a storage
    children: list[Node] = field(default_factory=list)

    def add(self, node: Node) -> Node:
        self.children.append(node)
        return node


def _flatten(root: Node) -> list[Node]:
    out = [root]
    i = 0
    while i < len(out):
        out.extend(out[i].children)
        i += 1
    return out


def write_cfb(root: Node) -> bytes:
    nodes = _flatten(root)
    index = {id(n): i for i, n in enumerate(nodes)}
    mini = bytearray()
    mini_fat: list[int] = []
    big: list[tuple[Node, bytes]] = []
    start: dict[int, int] = {}
    for n in nodes[1:]:
        if n.data is None:
            continue
        if len(n.data) < CUTOFF:
            first = len(mini) // MINI
            count = max(1, -(-len(n.data) // MINI))
            start[id(n)] = first if n.data else END
            if n.data:
                mini_fat.extend(range(first + 1, first + count))
                mini_fat.append(END)
                mini += n.data + b"\0" * (count * MINI - len(n.data))
        else:
            big.append((n, n.data))
    sectors: list[bytes] = []
    fat: list[int] = []

    def chain(data: bytes) -> int:
        count = -(-len(data) // SECTOR)
        first = len(sectors)
        for k in range(count):
            sectors.append(data[k * SECTOR : (k + 1) * SECTOR].ljust(SECTOR, b"\0"))
            fat.append(first + k + 1 if k + 1 < count else END)
        return first

    for n, data in big:
        start[id(n)] = chain(data)
    mini_start = chain(bytes(mini)) if mini else END
    minifat_bytes = b"".join(struct.pack("<I", v) for v in mini_fat)
    minifat_start = chain(minifat_bytes) if mini_fat else END
    n_minifat = -(-len(minifat_bytes) // SECTOR)
    entries = bytearray()
    for i, n in enumerate(nodes):
        name = n.name.encode("utf-16-le") + b"\0\0"
        kind = 5 if i == 0 else (2 if n.data is not None else 1)
        child = index[id(n.children[0])] if n.children else NOSTREAM
        right = NOSTREAM
        parent = next((p for p in nodes if any(c is n for c in p.children)), None)
        if parent is not None:
            sib = parent.children
            k = next(j for j, c in enumerate(sib) if c is n)
            if k + 1 < len(sib):
                right = index[id(sib[k + 1])]
        if i == 0:
            first, size = mini_start, len(mini)
        elif n.data is None:
            first, size = 0, 0
        else:
            first, size = start[id(n)], len(n.data)
        entries += struct.pack(
            "<64sHBBIII16sIQQIII",
            name,
            len(name),
            kind,
            1,
            NOSTREAM,
            right,
            child,
            b"\0" * 16,
            0,
            0,
            0,
            first,
            size,
            0,
        )
    while len(entries) % SECTOR:
        entries += struct.pack(
            "<64sHBBIII16sIQQIII",
            b"",
            0,
            0,
            0,
            NOSTREAM,
            NOSTREAM,
            NOSTREAM,
            b"\0" * 16,
            0,
            0,
            0,
            0,
            0,
            0,
        )
    dir_start = chain(bytes(entries))
    # FAT sectors: enough to describe every sector including themselves
    n_fat = 1
    while (len(sectors) + n_fat) > n_fat * (SECTOR // 4):
        n_fat += 1
    fat_first = len(sectors)
    fat.extend([FATSECT] * n_fat)
    fat.extend([FREE] * (n_fat * (SECTOR // 4) - len(fat)))
    fat_bytes = b"".join(struct.pack("<I", v) for v in fat)
    for k in range(n_fat):
        sectors.append(fat_bytes[k * SECTOR : (k + 1) * SECTOR])
    assert n_fat <= 109
    difat = [fat_first + k for k in range(n_fat)] + [FREE] * (109 - n_fat)
    header = struct.pack(
        "<8s16sHHHHH6sIIIIIIIII",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        b"\0" * 16,
        0x3E,
        3,
        0xFFFE,
        9,
        6,
        b"\0" * 6,
        0,
        n_fat,
        dir_start,
        0,
        CUTOFF,
        minifat_start,
        n_minifat,
        END,
        0,
    ) + struct.pack("<109I", *difat)
    return header.ljust(SECTOR, b"\0") + b"".join(sectors)


# --------------------------------------------------------------------------- Outlook .msg


def _text(node: Node, prop: str, value: str) -> None:
    node.add(Node(f"__substg1.0_{prop}001F", value.encode("utf-16-le")))


def _props(recipient_type: int | None) -> bytes:
    head = b"\0" * 8
    if recipient_type is None:
        return head
    return head + struct.pack("<IIQ", 0x0C150003, 6, recipient_type)


def _message(
    node: Node,
    *,
    subject: str,
    body: str,
    sender: tuple[str, str],
    recipients: list[tuple[str, str, int]],
    attachments: list[tuple[str, bytes | dict[str, object]]],
    transport_headers: str = "",
) -> None:
    node.add(Node("__properties_version1.0", b"\0" * 32))
    _text(node, "0037", subject)
    _text(node, "1000", body)
    _text(node, "0C1A", sender[0])
    _text(node, "5D01", sender[1])
    if transport_headers:
        _text(node, "007D", transport_headers)
    for i, (name, addr, rtype) in enumerate(recipients):
        r = node.add(Node(f"__recip_version1.0_#{i:08X}"))
        r.add(Node("__properties_version1.0", _props(rtype)))
        _text(r, "3001", name)
        _text(r, "39FE", addr)
    for i, (fname, content) in enumerate(attachments):
        a = node.add(Node(f"__attach_version1.0_#{i:08X}"))
        a.add(Node("__properties_version1.0", _props(None)))
        _text(a, "3707", fname)
        if isinstance(content, bytes):
            a.add(Node("__substg1.0_37010102", content))
        else:
            inner = a.add(Node("__substg1.0_3701000D"))
            _message(inner, **content)  # type: ignore[arg-type]


def msg_file(**fields: object) -> bytes:
    """An Outlook .msg: ``subject``, ``body``, ``sender`` (name, address), ``recipients``
    [(name, address, 1=To/2=Cc)], ``attachments`` [(file name, bytes or an embedded
    message's fields)], optional ``transport_headers``."""
    root = Node("Root Entry")
    _message(root, **fields)  # type: ignore[arg-type]
    return write_cfb(root)
