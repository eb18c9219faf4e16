"""The emulated PN532's firmware: one host command in, the response data out.

Holds the command set nfcpy's pn532 driver (and other PN532 host software) uses, with the chip's
state: SAM mode, SetParameters flags, RF configuration items, CIU registers, the serial speed,
power-down, the listed target and the chip-side ISO-DEP used by InDataExchange. The RF side is
`simulators.pn532.field.RfField`; the serial line and its frames are `simulators.pn532.emulator`.
No I/O and no sleeping here: a reply says how long the chip would take, the line waits.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from simulators.pn532.field import FSDI_TO_FSD, PhoneInField, RfField
from simulators.wallet.isodep import frame_waiting_time

log = logging.getLogger(__name__)

FIRMWARE_VERSION = bytes([0x32, 0x01, 0x06, 0x07])  # PN532, v1.6, ISO 14443A/B + ISO 18092
BAUD_RATES = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600, 1288000)

# Status byte error codes (PN532 user manual, table "Error code list").
TIMEOUT = 0x01
INVALID_PARAMETER = 0x10
NOT_ACCEPTABLE = 0x27  # command not acceptable in the current context
CARD_DISAPPEARED = 0x2B

# SetParameters flags.
F_AUTOMATIC_RATS = 0x10

# CIU register addresses used by the chip logic.
CIU_TX_CONTROL = 0x6304
CIU_FIFO_DATA = 0x6339
CIU_FIFO_LEVEL = 0x633A
CIU_VERSION = 0x6327

COMMAND_NAMES = {
    0x00: "Diagnose",
    0x02: "GetFirmwareVersion",
    0x04: "GetGeneralStatus",
    0x06: "ReadRegister",
    0x08: "WriteRegister",
    0x0C: "ReadGPIO",
    0x0E: "WriteGPIO",
    0x10: "SetSerialBaudRate",
    0x12: "SetParameters",
    0x14: "SAMConfiguration",
    0x16: "PowerDown",
    0x32: "RFConfiguration",
    0x4A: "InListPassiveTarget",
    0x40: "InDataExchange",
    0x42: "InCommunicateThru",
    0x44: "InDeselect",
    0x52: "InRelease",
    0x54: "InSelect",
}

# The RF timeout InCommunicateThru waits for a silent target (RFConfiguration item 2, third
# byte): 100 us * 2**(n-1); n = 0 means "no timeout", which the emulator caps.
NO_TIMEOUT_CAP = 2.0
# ISO/IEC 14443-2: a PCD waits 5 ms after switching its carrier on before the first command; one
# REQA/WUPA attempt that nobody answers costs about a millisecond.
FIELD_GUARD_TIME = 0.005
POLL_ATTEMPT = 0.001


class CommandSyntaxError(Exception):
    """The chip answers this command with the application-level error frame."""


@dataclass
class Reply:
    """What the chip sends back for one command, and how long the chip took on the air."""

    data: bytes | None  # response data after D5 <code+1>; None = error frame
    busy_for: float = 0.0  # seconds the chip takes before answering (timeouts, WTX, air time)
    new_baud: int | None = None  # SetSerialBaudRate: applies once the host ACKs the response
    power_down: bool = False
    wait_for_phone: bool = False  # InListPassiveTarget with endless retries and no phone yet


@dataclass
class ListedTarget:
    """A target InListPassiveTarget listed (up to two; the emulator exchanges data with Tg 1)."""

    phone: PhoneInField
    iso_dep: bool  # the chip itself sent RATS (fAutomaticRATS) and speaks ISO-DEP to it
    fsc: int = 256
    fwt: float = 0.0773
    pni: int = 0
    deselected: bool = False
    pending_to_host: bytes = b""  # InDataExchange response still to be fetched (MI set)


def air_time(*frames: bytes) -> float:
    """106 kbit/s: about 10 bit-times a byte plus CRC and a frame delay per frame."""
    return sum((len(f) + 2) * 10 / 106_000 + 0.0001 for f in frames)


@dataclass
class Pn532Chip:
    """The PN532 seen from its host interface."""

    field: RfField
    registers: dict[int, int] = dataclasses.field(default_factory=dict)
    sam_mode: int = 1
    parameters: int = F_AUTOMATIC_RATS  # after reset the chip does RATS itself
    baud: int = 115200
    rf_timeout_index: int = 11  # RFConfiguration item 2 default: ~102 ms
    max_retries_passive: int = 0xFF  # RFConfiguration item 5: MxRtyPassiveActivation
    analog: dict[int, bytes] = dataclasses.field(default_factory=dict)
    gpio: dict[str, int] = dataclasses.field(
        default_factory=lambda: {"P3": 0xFF, "P7": 0x07, "I0I1": 0x00})
    target: ListedTarget | None = None  # Tg 1, the one the chip talks to
    second_target: ListedTarget | None = None  # Tg 2 of an InListPassiveTarget with MaxTg 2
    last_error: int = 0
    commands_seen: dict[str, int] = dataclasses.field(default_factory=dict)
    air_timing: bool = False  # frames take their air time (else only timeouts and waits do)

    def __post_init__(self) -> None:
        self.registers.setdefault(CIU_VERSION, 0x80)

    def _air_time(self, *frames: bytes) -> float:
        return air_time(*frames) if self.air_timing else 0.0

    # --- dispatch ----------------------------------------------------------------------------

    def execute(self, code: int, params: bytes) -> Reply:
        """Run one host command (TFI D4 already checked)."""
        name = COMMAND_NAMES.get(code, f"0x{code:02X}")
        self.commands_seen[name] = self.commands_seen.get(name, 0) + 1
        handler = getattr(self, f"_cmd_{code:02x}", None)
        if handler is None:
            log.info("PN532 emulator: command %s not emulated: error frame", name)
            return Reply(None)
        try:
            return handler(params)
        except (CommandSyntaxError, IndexError) as exc:
            log.info("PN532 emulator: %s with bad parameters %s: %s", name, params.hex(), exc)
            return Reply(None)

    @staticmethod
    def _need(params: bytes, low: int, high: int | None = None) -> None:
        if len(params) < low or (high is not None and len(params) > high):
            raise CommandSyntaxError(f"{len(params)} parameter bytes")

    # --- miscellaneous -----------------------------------------------------------------------

    def _cmd_00(self, params: bytes) -> Reply:  # Diagnose
        self._need(params, 1)
        test = params[0]
        if test == 0x00:  # communication line test: echo NumTst + InParam
            return Reply(bytes(params))
        if test in (0x01, 0x02, 0x07):  # ROM, RAM, self antenna: all fine
            return Reply(b"\x00")
        if test == 0x06:  # attention request: is the 14443-4 target still there?
            ok = self._present(self.target)
            return Reply(b"\x00" if ok else bytes([TIMEOUT]))
        raise CommandSyntaxError(f"diagnose test {test}")

    def _cmd_02(self, params: bytes) -> Reply:  # GetFirmwareVersion
        self._need(params, 0, 0)
        return Reply(FIRMWARE_VERSION)

    def _cmd_04(self, params: bytes) -> Reply:  # GetGeneralStatus
        self._need(params, 0, 0)
        out = bytes([self.last_error, 0x00])
        if self.target is not None and not self.target.deselected:
            out += bytes([1, 1, 0, 0, 0x00])  # Tg 1, 106 kbit/s both ways, Type A modulation
        else:
            out += b"\x00"
        return Reply(out + b"\x00")  # SAM status

    def _cmd_06(self, params: bytes) -> Reply:  # ReadRegister
        self._need(params, 2)
        if len(params) % 2:
            raise CommandSyntaxError("odd register address list")
        addrs = [int.from_bytes(params[i : i + 2], "big") for i in range(0, len(params), 2)]
        return Reply(bytes(self.registers.get(a, 0) for a in addrs))

    def _cmd_08(self, params: bytes) -> Reply:  # WriteRegister
        self._need(params, 3)
        if len(params) % 3:
            raise CommandSyntaxError("register writes come in threes")
        for i in range(0, len(params), 3):
            self.registers[int.from_bytes(params[i : i + 2], "big")] = params[i + 2]
        return Reply(b"")

    def _cmd_0c(self, params: bytes) -> Reply:  # ReadGPIO
        self._need(params, 0, 0)
        return Reply(bytes([self.gpio["P3"], self.gpio["P7"], self.gpio["I0I1"]]))

    def _cmd_0e(self, params: bytes) -> Reply:  # WriteGPIO
        self._need(params, 2, 2)
        if params[0] & 0x80:
            self.gpio["P3"] = params[0] & 0x3F
        if params[1] & 0x80:
            self.gpio["P7"] = params[1] & 0x06
        return Reply(b"")

    def _cmd_10(self, params: bytes) -> Reply:  # SetSerialBaudRate
        self._need(params, 1, 1)
        if params[0] >= len(BAUD_RATES):
            raise CommandSyntaxError(f"baud rate index {params[0]}")
        return Reply(b"", new_baud=BAUD_RATES[params[0]])

    def _cmd_12(self, params: bytes) -> Reply:  # SetParameters
        self._need(params, 1, 1)
        self.parameters = params[0]
        return Reply(b"")

    def _cmd_14(self, params: bytes) -> Reply:  # SAMConfiguration
        self._need(params, 1, 3)
        if not 1 <= params[0] <= 4:
            raise CommandSyntaxError(f"SAM mode {params[0]}")
        if params[0] == 2 and len(params) < 2:
            raise CommandSyntaxError("virtual card mode needs a timeout")
        self.sam_mode = params[0]
        return Reply(b"")

    def _cmd_16(self, params: bytes) -> Reply:  # PowerDown
        self._need(params, 1, 2)
        self._release_all(deselect=False)
        self.field.set_carrier(False)
        self._tx_control(False)
        return Reply(b"\x00", power_down=True)

    def _cmd_32(self, params: bytes) -> Reply:  # RFConfiguration
        self._need(params, 1)
        item, data = params[0], params[1:]
        expected = {0x01: 1, 0x02: 3, 0x04: 1, 0x05: 3, 0x0A: 11, 0x0B: 8, 0x0C: 3, 0x0D: 9}
        if item not in expected or len(data) != expected[item]:
            raise CommandSyntaxError(f"RF configuration item {item:#04x} with {len(data)} bytes")
        if item == 0x01:
            on = bool(data[0] & 0x01)
            if not on:
                self._release_all(deselect=False)
            self.field.set_carrier(on)
            self._tx_control(on)
        elif item == 0x02:
            self.rf_timeout_index = data[2]
        elif item == 0x05:
            self.max_retries_passive = data[2]
        else:
            self.analog[item] = bytes(data)
        return Reply(b"")

    # --- initiator ---------------------------------------------------------------------------

    def _cmd_4a(self, params: bytes) -> Reply:  # InListPassiveTarget
        self._need(params, 2)
        max_tg, brty, initiator_data = params[0], params[1], params[2:]
        if not 1 <= max_tg <= 2 or brty not in (0, 1, 2, 3, 4, 6, 7, 8):
            raise CommandSyntaxError(f"MaxTg {max_tg} BrTy {brty}")
        self._release_all(deselect=False)
        guard = 0.0 if self.field.carrier else FIELD_GUARD_TIME
        self.field.set_carrier(True)
        self._tx_control(True)
        phones = anticollision_order(self.field.phones()) if brty == 0 else []
        if initiator_data:  # SELECT for one UID: only that phone answers
            uid = _uid_from_cascade(initiator_data)
            phones = [p for p in phones if p.uid == uid]
        listed: list[ListedTarget] = []
        out = b""
        busy = guard
        for phone in phones:
            if len(listed) == max_tg:
                break
            if listed:  # the chip puts the one it has aside before resolving the next
                self._deselect(listed[-1])
                listed[-1].deselected = True
            if not phone.select():
                continue
            self.registers[CIU_FIFO_DATA] = phone.sel_res
            entry = bytes([len(listed) + 1]) + phone.sens_res[::-1]
            entry += bytes([phone.sel_res, len(phone.uid)]) + phone.uid
            target = ListedTarget(phone=phone, iso_dep=False)
            busy += self._air_time(
                b"\x26", phone.sens_res, b"\x93\x20", phone.uid, b"\x93\x70", b"\x20"
            )
            if self.parameters & F_AUTOMATIC_RATS and phone.sel_res & 0x20:
                rats = b"\xe0\x50"  # FSD 64: the chip's own frame buffer
                ats = phone.air_exchange(rats)
                busy += self._air_time(rats, ats or b"")
                if ats:
                    target.iso_dep = True
                    _apply_ats(target, ats)
                    entry += ats
            listed.append(target)
            out += entry
        if not listed:
            self.registers[CIU_FIFO_DATA] = 0x26  # our SENS_REQ is still in the FIFO
            if self.max_retries_passive == 0xFF:
                return Reply(b"\x00", wait_for_phone=True)
            tries = self.max_retries_passive + 1
            return Reply(b"\x00", busy_for=guard + POLL_ATTEMPT * tries)
        self.target = listed[0]
        self.second_target = listed[1] if len(listed) > 1 else None
        return Reply(bytes([len(listed)]) + out, busy_for=busy)

    def _cmd_42(self, params: bytes) -> Reply:  # InCommunicateThru
        self._need(params, 1)
        phone = self.target.phone if self.target else self.field.phone()
        answer = None
        if self.field.carrier and phone is not None and self.field.in_range(phone):
            answer = phone.air_exchange(bytes(params))
        if answer is None or phone is None:
            self.last_error = TIMEOUT
            return Reply(bytes([TIMEOUT]), busy_for=self._rf_timeout())
        self.last_error = 0
        busy = self._air_time(params, answer) + phone.answer_delay
        return Reply(b"\x00" + answer, busy_for=busy)

    def _cmd_40(self, params: bytes) -> Reply:  # InDataExchange
        self._need(params, 1)
        tg, more, data = params[0] & 0x3F, bool(params[0] & 0x40), bytes(params[1:])
        target = self.target
        if target is None or tg != 1 or target.deselected:
            return Reply(bytes([NOT_ACCEPTABLE]))
        if target.pending_to_host and not data:
            return Reply(self._to_host(target, target.pending_to_host))
        if not target.iso_dep:  # a 14443-3 target: the frame goes out as it is
            answer = self._air(target.phone, data)
            if answer is None:
                return Reply(bytes([TIMEOUT]), busy_for=self._rf_timeout())
            return Reply(b"\x00" + answer, busy_for=self._air_time(data, answer))
        status, response, busy = self._iso_dep_exchange(target, data, more)
        if status:
            self.last_error = status
            return Reply(bytes([status]), busy_for=busy)
        self.last_error = 0
        return Reply(self._to_host(target, response), busy_for=busy)

    def _cmd_44(self, params: bytes) -> Reply:  # InDeselect
        self._need(params, 1, 1)
        if self.target is None or params[0] not in (0, 1):
            return Reply(bytes([NOT_ACCEPTABLE]))
        self._deselect(self.target)
        self.target.deselected = True
        return Reply(b"\x00")

    def _cmd_52(self, params: bytes) -> Reply:  # InRelease
        self._need(params, 1, 1)
        tg = params[0]
        if tg not in (0, 1, 2) or (tg and (self.target, self.second_target)[tg - 1] is None):
            return Reply(bytes([NOT_ACCEPTABLE]))
        if tg == 2:
            assert self.second_target is not None
            self._deselect(self.second_target)
            self.second_target = None
            return Reply(b"\x00")
        self._release_all(deselect=True)
        return Reply(b"\x00")

    def _cmd_54(self, params: bytes) -> Reply:  # InSelect
        self._need(params, 1, 1)
        target = self.target
        if target is None or params[0] != 1:
            return Reply(bytes([NOT_ACCEPTABLE]))
        if not target.deselected:
            return Reply(b"\x00")
        phone = target.phone
        if not self.field.in_range(phone) or not phone.select():
            return Reply(bytes([TIMEOUT]), busy_for=self._rf_timeout())
        if target.iso_dep:
            ats = phone.air_exchange(b"\xe0\x50")
            if not ats:
                return Reply(bytes([TIMEOUT]), busy_for=self._rf_timeout())
            _apply_ats(target, ats)
            target.pni = 0
        target.deselected = False
        return Reply(b"\x00")

    # --- helpers -----------------------------------------------------------------------------

    def _rf_timeout(self) -> float:
        n = self.rf_timeout_index
        return NO_TIMEOUT_CAP if n == 0 else 100e-6 * 2 ** (min(n, 16) - 1)

    def _tx_control(self, on: bool) -> None:
        value = self.registers.get(CIU_TX_CONTROL, 0x80)
        self.registers[CIU_TX_CONTROL] = (value | 0x03) if on else (value & ~0x03 & 0xFF)

    def _air(self, phone: PhoneInField, frame: bytes) -> bytes | None:
        if not self.field.carrier or not self.field.in_range(phone):
            return None  # the phone left the field
        return phone.air_exchange(frame)

    def _present(self, target: ListedTarget | None) -> bool:
        if target is None or not target.iso_dep:
            return False
        answer = self._air(target.phone, bytes([0xB2 | target.pni]))
        return answer is not None

    def _to_host(self, target: ListedTarget, response: bytes) -> bytes:
        room = 262 - 1  # the chip's frame buffer less the status byte
        chunk, target.pending_to_host = response[:room], response[room:]
        return bytes([0x40 if target.pending_to_host else 0x00]) + chunk

    def _iso_dep_exchange(
        self, target: ListedTarget, data: bytes, more: bool
    ) -> tuple[int, bytes, float]:
        """The chip as ISO-DEP PCD: send `data` (chained by FSC), collect the whole answer."""
        busy = 0.0
        room = max(1, target.fsc - 3)
        chunks = [data[i : i + room] for i in range(0, len(data), room)] or [b""]
        answer: bytes | None = None
        for index, chunk in enumerate(chunks):
            chaining = more or index < len(chunks) - 1
            block = bytes([(0x12 if chaining else 0x02) | target.pni]) + chunk
            answer, spent = self._block_exchange(target, block)
            busy += spent
            if answer is None:
                return TIMEOUT, b"", busy + target.fwt
            if chaining:
                if answer[0] & 0xF6 != 0xA2 or answer[0] & 1 != target.pni:
                    return 0x0B, b"", busy  # protocol error: expected R(ACK)
                target.pni ^= 1
        if more:
            return 0, b"", busy
        assert answer is not None
        response = bytearray()
        while True:
            if answer[0] & 0xE2 != 0x02 or answer[0] & 1 != target.pni:
                return 0x0B, b"", busy
            response += answer[1:]
            target.pni ^= 1
            if not answer[0] & 0x10:
                return 0, bytes(response), busy
            answer, spent = self._block_exchange(target, bytes([0xA2 | target.pni]))
            busy += spent
            if answer is None:
                return TIMEOUT, b"", busy + target.fwt

    def _block_exchange(self, target: ListedTarget, block: bytes) -> tuple[bytes | None, float]:
        answer = self._air(target.phone, block)
        busy = self._air_time(block, answer or b"")
        while answer is not None and answer[0] & 0xF7 == 0xF2:  # S(WTX): grant it
            reply = bytes([answer[0], answer[-1] & 0x3F])
            answer = self._air(target.phone, reply)
            busy += self._air_time(reply, answer or b"") + target.phone.answer_delay
        return answer, busy

    def _deselect(self, target: ListedTarget) -> None:
        if target.iso_dep and not target.deselected:
            self._air(target.phone, b"\xc2")
        else:
            target.phone.halt()

    def _release_all(self, deselect: bool) -> None:
        if deselect:
            for target in (self.target, self.second_target):
                if target is not None:
                    self._deselect(target)
        self.target = self.second_target = None


def anticollision_order(phones: list[PhoneInField]) -> list[PhoneInField]:
    """The order the chip's bit-wise anticollision resolves phones in: at the first UID bit where
    they differ (bytes in order, each least significant bit first, as on the air) the one sending
    a 1 goes first."""

    def air_bits(phone: PhoneInField) -> bytes:
        return bytes(int(f"{byte:08b}"[::-1], 2) for byte in phone.uid)

    return sorted(phones, key=air_bits, reverse=True)


def _uid_from_cascade(data: bytes) -> bytes:
    """InListPassiveTarget's InitiatorData: a UID with cascade tags (88h) before levels 2/3."""
    data = bytes(data)
    if len(data) == 8 and data[0] == 0x88:
        return data[1:]
    if len(data) == 12 and data[0] == 0x88 and data[4] == 0x88:
        return data[1:4] + data[5:]
    return data


def _apply_ats(target: ListedTarget, ats: bytes) -> None:
    """Take FSC and FWT from an ATS (TL T0 [TA] [TB] [TC] ...)."""
    if len(ats) < 2:
        return
    t0 = ats[1]
    target.fsc = FSDI_TO_FSD[min(t0 & 0x0F, 8)]
    at = 2 + bool(t0 & 0x10)
    if t0 & 0x20 and len(ats) > at:
        fwi = ats[at] >> 4
        target.fwt = frame_waiting_time(fwi if fwi <= 14 else 4)
