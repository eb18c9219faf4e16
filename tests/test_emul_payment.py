"""Whole payments on the Raspberry Pi code path, with only the chips emulated at the wire.

The terminal is configured with the emulated PN532's `tty:...:pn532` path, so nfcpy's pn532 driver
on pyserial reads a simulated wallet (simulators.wallet.phone.CardApplet) through a pty; the kernel,
the host simulator on loopback (a real TCP server) and the journal are the real ones. In the full
stack test the screens go through the SPI display driver into the emulated ST7789 and the lights
and tones through the RPi.GPIO API into the recording fake.
"""

from __future__ import annotations

import dataclasses

import pytest
from PIL import Image, ImageChops

from drivers.nfc import Reader
from firmware.emv.kernel import Kernel
from firmware.feedback import Feedback
from firmware.host import connect
from firmware.journal import Journal
from firmware.terminal import Terminal
from simulators.gpio_fake import FakeGPIO
from simulators.pn532.emulator import LineFault
from simulators.spi_panel import SpiPanelEmulator
from simulators.wallet.phone import CardApplet


@pytest.fixture
def config_on(make_config):
    """A terminal config whose reader is the emulated PN532."""

    def make(emu, host_port: int, **host: object):
        cfg = make_config(host_port, **host)
        return dataclasses.replace(cfg, reader=dataclasses.replace(cfg.reader, path=emu.nfcpy_path))

    return make


def pay_over_pn532(cfg, emu, profile: str, amount: int, taps: int = 1):
    emu.queue_taps(CardApplet(profile), taps=taps, gap=0.2)
    terminal = Terminal.from_config(cfg)
    try:
        return terminal, terminal.pay(amount)
    finally:
        terminal.close()


@pytest.mark.parametrize(
    ("profile", "scheme"), [("visa-online", "visa"), ("mastercard-online", "mastercard")]
)
def test_a_phone_on_the_emulated_pn532_is_approved_online(
    emu, host_sim, config_on, profile: str, scheme: str
) -> None:
    cfg = config_on(emu, host_sim.port)
    terminal, result = pay_over_pn532(cfg, emu, profile, 1250)
    assert (result.outcome, result.scheme) == ("approved", scheme), result.reason
    assert len(result.auth_code) == 6
    assert 0 < result.card_in_field_ms < result.total_ms
    assert emu.chip.commands_seen["InCommunicateThru"] >= 5  # RATS + the APDUs, over the pty
    assert emu.field.taps_done == 1  # the terminal switched the field off once done
    journal = Journal.open(cfg.state_path(cfg.journal.file), cfg.state_path(cfg.journal.key_file))
    try:
        assert journal.payment(result.id).outcome == "approved"
    finally:
        journal.close()


def test_an_issuer_decline_over_the_emulated_pn532(emu, host_sim, config_on) -> None:
    cfg = config_on(emu, host_sim.port)
    _, result = pay_over_pn532(cfg, emu, "visa-online", 4051)
    assert (result.outcome, result.response_code) == ("declined", "51")


def test_a_phone_that_leaves_mid_flow_ends_the_payment_as_try_again_over_the_emulated_pn532(
    emu, host_sim, config_on
) -> None:
    cfg = config_on(emu, host_sim.port)
    cfg = dataclasses.replace(
        cfg, terminal=dataclasses.replace(cfg.terminal, presentment_timeout_s=15.0)
    )
    _, result = pay_over_pn532(cfg, emu, "leaves-field", 1250)
    assert result.outcome == "try_again", result.reason
    assert result.total_ms < 5000  # at once, not after the presentment timeout
    assert host_sim.ledger.transactions() == []


def test_a_slow_phone_gets_its_waiting_time_over_the_emulated_pn532(
    emu, host_sim, config_on
) -> None:
    cfg = config_on(emu, host_sim.port)
    _, result = pay_over_pn532(cfg, emu, "slow-wtx", 1250)
    assert result.outcome == "approved", result.reason
    assert result.card_in_field_ms >= 200  # the phone's 0.2 s, covered by S(WTX)


def at_16_bit(image: Image.Image) -> Image.Image:
    r, g, b = image.convert("RGB").split()
    return Image.merge(
        "RGB",
        (r.point(lambda v: v & 0xF8), g.point(lambda v: v & 0xFC), b.point(lambda v: v & 0xF8)),
    )


def test_a_payment_on_the_pi_code_path_shows_its_screens_lights_and_tones(
    emu, host_sim, config_on
) -> None:
    cfg = config_on(emu, host_sim.port)
    cfg = dataclasses.replace(cfg, display=dataclasses.replace(cfg.display, backend="st7789"))
    d, g = cfg.display, cfg.gpio
    gpio = FakeGPIO()
    panel = SpiPanelEmulator(gpio, "st7789", dc=d.gpio_dc, rst=d.gpio_rst, mounted_turn=90)
    feedback = Feedback.from_config(cfg, gpio=gpio, spi=panel, sleep=lambda seconds: None)
    seen: list[tuple[str, bool, int]] = []  # screen, seen as drawn, bytes on the bus
    show = feedback.display.show

    def show_and_look(image: Image.Image, name: str = "screen"):
        stats = show(image, name)
        same = ImageChops.difference(panel.image(), at_16_bit(image)).getbbox() is None
        seen.append((name, same, panel.take_counts().bytes_total))
        return stats

    feedback.display.show = show_and_look  # type: ignore[method-assign]
    emu.queue_taps(CardApplet("visa-online"), taps=1)
    journal = Journal.open(cfg.state_path(cfg.journal.file), cfg.state_path(cfg.journal.key_file))
    terminal = Terminal(
        cfg, Reader(emu.nfcpy_path), Kernel.from_config(cfg), connect(cfg), journal, feedback
    )
    try:
        result = terminal.pay(1250)
    finally:
        terminal.close()
    assert result.outcome == "approved", result.reason
    names = [name for name, _, _ in seen]
    assert "present_card" in names and "approved" in names
    assert all(same for _, same, _ in seen), seen  # every screen, pixel for pixel
    assert seen[0][2] >= 320 * 240 * 2  # the first screen goes whole ...
    assert all(cost < 320 * 240 * 2 for _, _, cost in seen[1:])  # ... then only changes
    assert panel.faults == []
    # The four lights came on during the tap, and a tone was played on the buzzer.
    lit = {pin for pin in g.led_pins if any(e.value == 1 for e in gpio.history(pin, {"output"}))}
    assert lit == set(g.led_pins)
    assert gpio.history(g.buzzer_pin, {"pwm_start", "output"})


def test_a_phone_that_wants_its_owner_is_tapped_twice_over_the_emulated_pn532(
    emu, host_sim, config_on
) -> None:
    cfg = config_on(emu, host_sim.port)
    _, result = pay_over_pn532(cfg, emu, "mastercard-see-phone", 1250, taps=2)
    assert result.outcome == "approved", result.reason
    assert result.taps == 2
    assert emu.field.taps_done == 2


IN_COMMUNICATE_THRU = 0x42


@pytest.mark.parametrize(
    "fault",
    [LineFault.DROP_RESPONSE_BYTE, LineFault.BAD_RESPONSE_CHECKSUM, LineFault.NO_RESPONSE],
    ids=lambda f: f.name,
)
def test_a_line_fault_mid_payment_ends_in_one_approved_payment(
    emu, host_sim, config_on, fault: LineFault
) -> None:
    cfg = config_on(emu, host_sim.port)
    emu.inject(fault, command=IN_COMMUNICATE_THRU, after=2)  # RATS and SELECT PPSE go through
    terminal, result = pay_over_pn532(cfg, emu, "visa-online", 1250, taps=2)
    # nfcpy recovered the exchange, or the tap ended as "try again" and the second one paid
    assert result.outcome == "approved", result.reason
    assert result.taps in (1, 2)
    journal = Journal.open(cfg.state_path(cfg.journal.file), cfg.state_path(cfg.journal.key_file))
    try:
        assert [p.outcome for p in journal.payments()] == ["approved"]
    finally:
        journal.close()


def test_a_reader_that_goes_silent_mid_payment_is_a_reader_fault_with_nothing_to_reverse(
    emu, host_sim, config_on
) -> None:
    cfg = config_on(emu, host_sim.port)
    emu.inject(LineFault.SILENCE, command=IN_COMMUNICATE_THRU, after=2)  # a wire comes loose
    terminal, result = pay_over_pn532(cfg, emu, "visa-online", 1250, taps=2)
    assert result.outcome == "error"
    assert result.reason.startswith("reader fault")
    assert result.total_ms < 3000  # no hang
    journal = Journal.open(cfg.state_path(cfg.journal.file), cfg.state_path(cfg.journal.key_file))
    try:
        assert journal.queue("reversal") == []  # nothing went to the host
    finally:
        journal.close()


def test_a_line_fault_during_activation_is_retried_not_a_terminal_error(
    emu, host_sim, config_on
) -> None:
    cfg = config_on(emu, host_sim.port)
    emu.inject(LineFault.BAD_RESPONSE_CHECKSUM, command=IN_COMMUNICATE_THRU)  # the RATS
    _, result = pay_over_pn532(cfg, emu, "visa-online", 1250, taps=2)
    assert result.outcome == "approved", result.reason  # drivers.nfc polled again
