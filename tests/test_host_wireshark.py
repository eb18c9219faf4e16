"""The default dialect on the wire, read back by an independent decoder: Wireshark's ISO 8583
dissector (tshark). The terminal's traffic to the simulator passes a recording relay on
127.0.0.1; the recorded stream is written as a pcap and tshark must decode every message,
with no malformed field, and find field 55 intact. Skipped only where tshark is not installed
(.ci/run installs it)."""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import socket
import struct
import subprocess
import threading
from pathlib import Path

import pytest
from host_support import MC_PAN, LoopbackServer, TestCard, auth_request, write_keys

from firmware.config import load_config
from firmware.host import connect
from firmware.money import CURRENCIES, BatchTotals
from simulators.host.simulator import HostSimulator

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*TripleDES.*"),
    pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed"),
]


class RecordingRelay(LoopbackServer):
    """127.0.0.1:port -> target, recording (direction, bytes) in order."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.chunks: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        super().__init__(backlog=4)

    def serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.target_port))
        threading.Thread(target=self._pump, args=(client, upstream, "c2s"), daemon=True).start()
        self._pump(upstream, client, "s2c")

    def _pump(self, src: socket.socket, dst: socket.socket, direction: str) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                with contextlib.suppress(OSError):
                    dst.shutdown(socket.SHUT_WR)
                return
            with self.lock:
                self.chunks.append((direction, data))
            dst.sendall(data)


def _ip_tcp(src: int, dst: int, seq: int, ack: int, flags: int, payload: bytes) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", src, dst, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload
    total = 20 + len(tcp)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0, 64, 6, 0,
                     socket.inet_aton("127.0.0.1"), socket.inet_aton("127.0.0.1"))
    return ip + tcp


def write_pcap(path: Path, chunks: list[tuple[str, bytes]], cport: int, sport: int) -> None:
    """One TCP connection carrying `chunks`, as raw-IPv4 pcap records."""
    packets = []
    cseq, sseq = 1000, 5000
    packets.append(_ip_tcp(cport, sport, cseq, 0, 0x02, b""))
    packets.append(_ip_tcp(sport, cport, sseq, cseq + 1, 0x12, b""))
    cseq += 1
    sseq += 1
    packets.append(_ip_tcp(cport, sport, cseq, sseq, 0x10, b""))
    for direction, data in chunks:
        if direction == "c2s":
            packets.append(_ip_tcp(cport, sport, cseq, sseq, 0x18, data))
            cseq += len(data)
        else:
            packets.append(_ip_tcp(sport, cport, sseq, cseq, 0x18, data))
            sseq += len(data)
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101)]
    for i, pkt in enumerate(packets):
        out.append(struct.pack("<IIII", 1700000000 + i, 0, len(pkt), len(pkt)) + pkt)
    path.write_bytes(b"".join(out))


def dissected(relay: RecordingRelay, pcap: Path, *fields: str) -> list[list[str]]:
    """What the relay recorded, as a pcap read by tshark's ISO 8583 dissector: a row a message,
    its MTI, then each of `fields` (e.g. "bit25"), then tshark's expert messages ("" when it
    flagged nothing)."""
    with relay.lock:
        chunks = list(relay.chunks)
    write_pcap(pcap, chunks, 40000, 8583)
    wanted = [arg for name in ("mti", *fields) for arg in ("-e", f"iso8583.{name}")]
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-o", "iso8583.len_endian:bigendian",
         "-d", "tcp.port==8583,iso8583", "-T", "fields", "-E", "separator=|", *wanted,
         "-e", "_ws.expert.message"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    return [r.split("|") for r in out.splitlines() if r.split("|")[0]]  # the handshake: no MTI


def test_wireshark_decodes_the_default_dialect(tmp_path: Path) -> None:
    keys = write_keys(tmp_path)
    with HostSimulator(port=0, keys_file=keys) as sim:
        relay = RecordingRelay(sim.port)
        cfg = load_config()
        cfg = dataclasses.replace(cfg, host=dataclasses.replace(
            cfg.host, port=relay.port, response_timeout_s=10.0))
        acq = connect(cfg)
        visa, mc = TestCard(), TestCard(MC_PAN)
        assert acq.authorize(auth_request(visa, 1500, stan=11)).approved
        assert not acq.authorize(auth_request(mc, 2051, stan=12)).approved
        req = auth_request(visa, 700, stan=13)
        assert acq.reverse(req, "test")
        assert acq.reverse(req, "test", repeat=True)
        advice = dataclasses.replace(auth_request(visa, 800, stan=14), offline_approved=True,
                                     auth_code="Y1")
        assert acq.advise(advice)
        assert acq.echo()
        wrong = BatchTotals(7, CURRENCIES["EUR"], 1, 999, 0, 0)  # the host booked 1500 + 800: 95
        result = acq.settle(wrong, [dataclasses.replace(advice, amount=999)])
        assert result.agreed and result.extra["first_response"] == "95"
        acq.close()
    rows = out = dissected(relay, tmp_path / "pitap.pcap", "bit11", "bit39", "bit55")
    mtis = [r[0] for r in rows]
    assert mtis == ["0100", "0110", "0100", "0110", "0400", "0410", "0401", "0410", "0220",
                    "0230", "0800", "0810", "0500", "0510", "0320", "0330", "0500", "0510"], out
    assert all(r[4] == "" for r in rows), f"tshark flagged: {out}"
    assert [r[1] for r in rows[:4]] == ["000011", "000011", "000012", "000012"]
    assert rows[1][2] == "00" and rows[3][2] == "51"
    icc = bytes.fromhex(rows[0][3])  # field 55 as the dissector read it: our TLV, intact
    assert icc.startswith(bytes.fromhex("9F02")) and bytes.fromhex("9F2608") in icc
    assert rows[1][3].startswith("910A")  # the ARPC came back in tag 91
    assert [r[2] for r in rows[12:]] == ["", "95", "", "00", "", "00"]
