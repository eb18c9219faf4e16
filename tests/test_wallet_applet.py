"""The simulated phones at the APDU level: what a terminal relies on from each profile.

Offline data authentication is checked here with an independent, minimal recovery (the CA key
from config/capk/test.txt, raw RSA, EMV Book 2 layouts), not with the kernel's code.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wallet_helpers import (
    CAPK_FILE,
    PPSE,
    generate_ac,
    issuer_ac,
    select,
    terminal_values,
    tlvs,
    visa_gpo,
)

from simulators.wallet.applet import CardApplet, PhoneLeftField
from simulators.wallet.phone import profile_names

pytestmark = pytest.mark.filterwarnings(
    "ignore::cryptography.utils.CryptographyDeprecationWarning"
)

VISA = "A0000000031010"
MASTERCARD = "A0000000041010"
RUPAY = "A0000005241010"


def ok(rapdu: bytes) -> dict[int, bytes]:
    assert rapdu[-2:] == b"\x90\x00", rapdu.hex()
    return tlvs(rapdu[:-2])


def capk(rid: bytes, index: int) -> tuple[int, int]:
    for line in CAPK_FILE.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        f = line.split()
        if bytes.fromhex(f[0]) == rid and int(f[1], 16) == index:
            mod, exp = bytes.fromhex(f[5]), bytes.fromhex(f[4])
            assert hashlib.sha1(rid + bytes([index]) + mod + exp).hexdigest().upper() == f[7]
            return int.from_bytes(mod, "big"), int.from_bytes(exp, "big")
    raise AssertionError("CA key not in capk file")


def recover(cert: bytes, n: int, e: int) -> bytes:
    assert len(cert) == (n.bit_length() + 7) // 8
    plain = pow(int.from_bytes(cert, "big"), e, n).to_bytes(len(cert), "big")
    assert plain[0] == 0x6A and plain[-1] == 0xBC, "bad header/trailer"
    return plain


def icc_public_key(
    rid: bytes, data: dict[int, bytes], static_data: bytes
) -> tuple[int, int, bytes]:
    """Issuer then ICC key recovery; returns (n, e, recovered ICC certificate)."""
    ca_n, ca_e = capk(rid, data[0x8F][0])
    issuer = recover(data[0x90], ca_n, ca_e)
    assert issuer[1] == 0x02
    nca = len(data[0x90])
    iss_len = issuer[13]
    iss_mod = (issuer[15 : nca - 21] + data.get(0x92, b""))[:iss_len]
    digest = hashlib.sha1(issuer[1 : nca - 21] + data.get(0x92, b"") + data[0x9F32]).digest()
    assert issuer[nca - 21 : nca - 1] == digest
    iss_n, iss_e = int.from_bytes(iss_mod, "big"), int.from_bytes(data[0x9F32], "big")
    icc = recover(data[0x9F46], iss_n, iss_e)
    ni = len(data[0x9F46])
    assert icc[1] == 0x04
    hashed = icc[1 : ni - 21] + data.get(0x9F48, b"") + data[0x9F47] + static_data
    assert icc[ni - 21 : ni - 1] == hashlib.sha1(hashed).digest()
    icc_len = icc[19]
    icc_mod = (icc[21 : ni - 21] + data.get(0x9F48, b""))[:icc_len]
    return int.from_bytes(icc_mod, "big"), int.from_bytes(data[0x9F47], "big"), icc


def read_afl(applet: CardApplet, afl: bytes) -> tuple[dict[int, bytes], bytes]:
    """All AFL records (merged TLVs) and the static data to be authenticated."""
    data: dict[int, bytes] = {}
    static = b""
    for i in range(0, len(afl), 4):
        sfi, first, last, oda = afl[i] >> 3, afl[i + 1], afl[i + 2], afl[i + 3]
        for rec in range(first, last + 1):
            rapdu = applet.respond(bytes([0x00, 0xB2, rec, (sfi << 3) | 4, 0x00]))
            data.update(ok(rapdu))
            if rec < first + oda:
                body = rapdu[:-2]
                assert body[0] == 0x70
                static += body[3:] if body[1] == 0x81 else body[2:]
    return data, static


def test_every_profile_answers_ppse_with_one_directory_entry():
    for name in profile_names():
        applet = CardApplet(name)
        ppse = ok(applet.respond(PPSE))
        assert ppse[0x84] == b"2PAY.SYS.DDF01"
        assert 0x4F in ppse and 0x87 in ppse, name


def test_unknown_aid_phone_offers_only_an_aid_no_terminal_supports():
    ppse = ok(CardApplet("unknown-aid").respond(PPSE))
    assert ppse[0x4F] not in {bytes.fromhex(a) for a in (VISA, MASTERCARD, RUPAY)}


def test_select_of_an_aid_the_phone_lacks_is_file_not_found():
    applet = CardApplet("visa-online")
    assert applet.respond(select(MASTERCARD)) == b"\x6a\x82"


def test_commands_out_of_order_are_refused():
    applet = CardApplet("visa-online")
    assert applet.respond(visa_gpo(terminal_values())) == b"\x69\x85"  # nothing selected
    assert applet.respond(bytes.fromhex("00B2010C00")) == b"\x69\x85"
    assert applet.respond(bytes.fromhex("00840000 08".replace(" ", ""))) == b"\x6d\x00"


def test_visa_offline_gives_tc_with_fdda_that_verifies():
    applet = CardApplet("visa-offline")
    ok(applet.respond(select(VISA)))
    values = terminal_values(amount=1500)
    values[0x9F66] = bytes.fromhex("36000000")  # offline allowed
    gpo = ok(applet.respond(visa_gpo(values)))
    assert gpo[0x9F27] == b"\x40"  # TC
    data, static = read_afl(applet, gpo[0x94])
    n, e, _icc = icc_public_key(bytes.fromhex("A000000003"), data, static + gpo[0x82])
    sdad = recover(gpo[0x9F4B], n, e)
    size = len(gpo[0x9F4B])
    assert sdad[1] == 0x05
    signed = values[0x9F37] + values[0x9F02] + values[0x5F2A] + gpo[0x9F69]
    assert sdad[size - 21 : size - 1] == hashlib.sha1(sdad[1 : size - 21] + signed).digest()
    token = gpo[0x57].hex().upper().split("D")[0]
    assert gpo[0x9F26] == issuer_ac(token, "01", values, gpo[0x82], gpo[0x9F36], gpo[0x9F10])


def test_visa_offline_goes_online_when_the_terminal_requires_it_or_above_its_limit():
    for ttq, amount in (("36800000", 100), ("36000000", 999999)):
        applet = CardApplet("visa-offline")
        ok(applet.respond(select(VISA)))
        values = terminal_values(amount=amount)
        values[0x9F66] = bytes.fromhex(ttq)
        gpo = ok(applet.respond(visa_gpo(values)))
        assert gpo[0x9F27] == b"\x80"
        assert 0x9F4B not in gpo


def test_bad_signature_profile_signature_does_not_verify():
    applet = CardApplet("bad-signature")
    ok(applet.respond(select(VISA)))
    values = terminal_values(amount=100)
    values[0x9F66] = bytes.fromhex("36000000")
    gpo = ok(applet.respond(visa_gpo(values)))
    data, static = read_afl(applet, gpo[0x94])
    n, e, _icc = icc_public_key(bytes.fromhex("A000000003"), data, static + gpo[0x82])
    with pytest.raises(AssertionError):
        sdad = recover(gpo[0x9F4B], n, e)
        size = len(sdad)
        signed = values[0x9F37] + values[0x9F02] + values[0x5F2A] + gpo[0x9F69]
        assert sdad[size - 21 : size - 1] == hashlib.sha1(sdad[1 : size - 21] + signed).digest()


def test_expired_cert_profile_has_an_icc_certificate_expired_in_the_past():
    applet = CardApplet("expired-cert")
    ok(applet.respond(select(VISA)))
    values = terminal_values(amount=100)
    values[0x9F66] = bytes.fromhex("36000000")
    gpo = ok(applet.respond(visa_gpo(values)))
    data, static = read_afl(applet, gpo[0x94])
    _n, _e, icc = icc_public_key(bytes.fromhex("A000000003"), data, static + gpo[0x82])
    assert icc[12:14] == bytes.fromhex("0124")  # MMYY: January 2024


def test_mastercard_cda_signature_covers_cryptogram_and_transaction_data():
    applet = CardApplet("mastercard-online")
    ok(applet.respond(select(MASTERCARD)))
    gpo = ok(applet.respond(bytes.fromhex("80A8000002830000")))
    data, static = read_afl(applet, gpo[0x94])
    values = terminal_values(amount=2500)
    command = generate_ac(values, p1=0x90)
    rapdu = applet.respond(command)
    resp = ok(rapdu)
    assert resp[0x9F27] == b"\x80"
    n, e, _icc = icc_public_key(bytes.fromhex("A000000004"), data, static + gpo[0x82])
    sdad = recover(resp[0x9F4B], n, e)
    size = len(resp[0x9F4B])
    assert sdad[size - 21 : size - 1] == hashlib.sha1(sdad[1 : size - 21] + values[0x9F37]).digest()
    dyn = sdad[4 : 4 + sdad[3]]
    ldn = dyn[0]
    cid, ac, hash_code = dyn[1 + ldn], dyn[2 + ldn : 10 + ldn], dyn[10 + ldn : 30 + ldn]
    assert cid == 0x80
    token = data[0x5A].hex().upper().rstrip("F")
    assert ac == issuer_ac(token, "00", values, gpo[0x82], resp[0x9F36], resp[0x9F10])
    # transaction data hash: CDOL1 data || response TLVs other than the SDAD, in order
    body = rapdu[:-2]
    inner = body[3:] if body[1] == 0x81 else body[2:]
    sdad_at = inner.index(b"\x9f\x4b")
    cdol1_data = command[5:-1]
    assert hash_code == hashlib.sha1(cdol1_data + inner[:sdad_at]).digest()


def test_see_phone_first_tap_then_completes_on_the_second():
    applet = CardApplet("mastercard-see-phone")
    results = []
    for _tap in range(2):
        applet.reset()
        ok(applet.respond(PPSE))
        ok(applet.respond(select(MASTERCARD)))
        gpo = ok(applet.respond(bytes.fromhex("80A8000002830000")))
        read_afl(applet, gpo[0x94])
        results.append(ok(applet.respond(generate_ac(terminal_values(), p1=0x90))))
    first, second = results
    assert first[0x9F27] == b"\x00" and first[0xDF4B][1] & 0x03  # AAC, "see phone"
    assert second[0x9F27] == b"\x80" and second[0xDF4B][1] & 0x10  # ARQC, CDCVM done
    assert int.from_bytes(second[0x9F36], "big") == int.from_bytes(first[0x9F36], "big") + 1


def test_rupay_generic_flow_arqc_in_inr():
    applet = CardApplet("rupay-online")
    ppse = ok(applet.respond(PPSE))
    assert ppse[0x4F] == bytes.fromhex(RUPAY)
    ok(applet.respond(select(RUPAY)))
    gpo = ok(applet.respond(bytes.fromhex("80A8000002830000")))
    data, _static = read_afl(applet, gpo[0x94])
    assert data[0x9F42] == bytes.fromhex("0356")
    values = terminal_values(amount=50000, currency=356)
    resp = ok(applet.respond(generate_ac(values, p1=0x80)))
    token = data[0x5A].hex().upper().rstrip("F")
    assert resp[0x9F26] == issuer_ac(token, "00", values, gpo[0x82], resp[0x9F36], resp[0x9F10])


def test_fault_profiles_misbehave_as_documented():
    applet = CardApplet("wrong-sw")
    ok(applet.respond(select(VISA)))
    assert applet.respond(visa_gpo(terminal_values())) == b"\x6f\x00"

    applet = CardApplet("malformed-tlv")
    ok(applet.respond(select(VISA)))
    rapdu = applet.respond(visa_gpo(terminal_values()))
    assert rapdu[-2:] == b"\x90\x00"
    with pytest.raises(AssertionError):
        tlvs(rapdu[:-2])

    applet = CardApplet("leaves-field")
    ok(applet.respond(select(MASTERCARD)))
    ok(applet.respond(bytes.fromhex("80A8000002830000")))
    with pytest.raises(PhoneLeftField):
        applet.respond(generate_ac(terminal_values()))


def test_atc_increments_per_transaction():
    applet = CardApplet("visa-online", atc_start=0x0041)
    atcs = []
    for _ in range(3):
        applet.reset()
        ok(applet.respond(select(VISA)))
        atcs.append(ok(applet.respond(visa_gpo(terminal_values())))[0x9F36])
    assert atcs == [b"\x00\x42", b"\x00\x43", b"\x00\x44"]


def test_gpo_with_pdol_data_of_the_wrong_length_is_refused():
    applet = CardApplet("visa-online")
    ok(applet.respond(select(VISA)))
    assert applet.respond(bytes.fromhex("80A80000048302AABB00")) == b"\x67\x00"


def test_shipped_capk_file_holds_the_wallets_current_test_ca_keys():
    from simulators.wallet import pki

    assert CAPK_FILE.read_text() == pki.capk_text(pki.load_pki())


def test_mastercard_phone_answers_arqc_to_a_tc_request_and_aac_to_an_aac_request():
    for p1, cid in ((0x40, b"\x80"), (0x00, b"\x00")):
        applet = CardApplet("mastercard-online")
        ok(applet.respond(select(MASTERCARD)))
        ok(applet.respond(bytes.fromhex("80A8000002830000")))
        assert ok(applet.respond(generate_ac(terminal_values(), p1=p1)))[0x9F27] == cid


def test_visa_phone_refuses_a_reader_without_qvsdc():
    applet = CardApplet("visa-online")
    ok(applet.respond(select(VISA)))
    values = terminal_values()
    values[0x9F66] = bytes.fromhex("80000000")  # MSD only
    assert applet.respond(visa_gpo(values)) == b"\x69\x85"


def test_pki_tool_generates_a_fresh_consistent_test_pki(tmp_path):
    from simulators.wallet import pki

    assert pki.main(["generate", "--pki", str(tmp_path / "pki.toml"),
                     "--capk", str(tmp_path / "capk.txt")]) == 0  # fmt: skip
    fresh = pki.load_pki(tmp_path / "pki.toml")
    assert set(fresh) == {"visa", "mastercard", "rupay"}
    assert fresh["visa"].ca.n != pki.load_pki()["visa"].ca.n  # new keys, shipped ones untouched
    lines = [ln for ln in (tmp_path / "capk.txt").read_text().splitlines() if ln[:1] != "#"]
    assert {ln.split()[0] for ln in lines} == {"A000000003", "A000000004", "A000000524"}
    for line in lines:
        f = line.split()
        rid, index, exp, mod = (bytes.fromhex(x) for x in (f[0], f[1], f[4], f[5]))
        assert hashlib.sha1(rid + index + mod + exp).hexdigest().upper() == f[7]
    k = fresh["mastercard"]
    cert, remainder = pki.issuer_certificate(k.ca, k.issuer, "541333", "1230", b"\x00\x00\x01")
    plain = recover(cert, k.ca.n, k.ca.e)
    assert plain[1] == 0x02 and plain[2:6] == bytes.fromhex("541333FF")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(["visa-offline", "mastercard-online", "rupay-online"]),
    header=st.sampled_from([b"\x00\xa4\x04\x00", b"\x80\xa8\x00\x00", b"\x00\xb2\x01\x0c",
                            b"\x80\xae\x90\x00", b"\x80\xae\x40\x00", b"\x00\xca\x9f\x36"]),
    body=st.binary(max_size=64),
)  # fmt: skip
def test_any_command_gets_a_status_word_never_an_exception(name, header, body):
    applet = _ready_applet(name, gpo=header[1] != 0xA8)
    rapdu = applet.respond(header + bytes([len(body)]) + body if body else header)
    assert len(rapdu) >= 2
    rapdu = applet.respond(header + body)  # length bytes that do not match
    assert len(rapdu) >= 2


_READY: dict[str, CardApplet] = {}


def _ready_applet(name: str, gpo: bool = True) -> CardApplet:
    """An applet after SELECT (and GPO), so GPO, GENERATE AC and READ RECORD parse their data."""
    applet = _READY.get(name) or _READY.setdefault(name, CardApplet(name))
    applet.reset()
    aid = {"visa-offline": VISA, "mastercard-online": MASTERCARD, "rupay-online": RUPAY}[name]
    ok(applet.respond(select(aid)))
    if gpo:
        plain_gpo = bytes.fromhex("80A8000002830000")
        ok(applet.respond(visa_gpo(terminal_values()) if name == "visa-offline" else plain_gpo))
    return applet


def test_visa_gpo_with_an_amount_that_is_not_bcd_goes_online():
    applet = CardApplet("visa-offline")
    ok(applet.respond(select(VISA)))
    values = terminal_values()
    values[0x9F66] = bytes.fromhex("36000000")
    values[0x9F02] = bytes.fromhex("00000000001A")
    assert ok(applet.respond(visa_gpo(values)))[0x9F27] == b"\x80"
