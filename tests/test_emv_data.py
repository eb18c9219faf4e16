"""TLV, DOL, CA key file, AID table and Kernel.from_config: strict parsing and clear refusals."""

from __future__ import annotations

import datetime as dt

import pytest
from emv_testcard import TestPhone, TestPki, kernel_config, tap

from firmware.config import ConfigError, parse_config, shipped_config_dir
from firmware.emv import capk, dol, tlv
from firmware.emv.aids import parse_aid_table
from firmware.emv.entry_point import SkipReason, candidates, parse_ppse
from firmware.emv.kernel import Kernel
from firmware.emv.outcome import OutcomeKind, TerminalTransaction

H = bytes.fromhex


# ---- TLV ---------------------------------------------------------------------------------
def test_tlv_decodes_nested_and_multibyte_tags() -> None:
    objs = tlv.decode(H("770D9F2701809F3602000782022000"))
    flat = tlv.flatten(objs)
    assert flat[H("9F27")] == b"\x80"
    assert flat[H("9F36")] == H("0007")
    assert flat[H("82")] == H("2000")
    assert objs[0].children[0].raw == H("9F270180")


def test_tlv_long_lengths_round_trip() -> None:
    value = bytes(300)
    encoded = tlv.encode(H("9F46"), value)
    assert encoded[:5] == H("9F4682012C")
    assert tlv.decode(encoded)[0].value == value


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ("9F", "truncated"),
        ("9F26", "length missing"),
        ("9F2609AABB", "runs past the end"),
        ("5A80", "indefinite"),
        ("5A8401000000", "too long"),
        ("5A82FFFF", "runs past the end"),
        ("5A83010000", "oversized"),
        ("9FFFFFFF0100", "longer than 4 bytes"),
        ("7003" + "5A0512", "inside 70"),
    ],
)
def test_tlv_rejects_malformed(data: str, fragment: str) -> None:
    with pytest.raises(tlv.TlvError, match=fragment):
        tlv.decode(H(data))


def test_tlv_skips_padding() -> None:
    assert tlv.flatten(tlv.decode(H("005A0112FFFF"))) == {H("5A"): H("12")}


# ---- DOL ---------------------------------------------------------------------------------
def test_dol_fits_numeric_left_and_others_right() -> None:
    values = {H("9F02"): H("000000001234"), H("9F1C"): b"PITAP001", H("9F37"): H("01020304")}
    data = dol.build(H("9F02049F1C039F3706"), values)
    assert data == H("00001234") + b"PIT" + H("010203040000")
    assert dol.build(H("9F7F01"), {}) == b"\x00"  # unknown tag: zeros


def test_dol_asking_for_too_much_is_refused() -> None:
    with pytest.raises(tlv.TlvError):
        dol.parse(H("9F0281FF9F0281FF"))


# ---- CA keys -----------------------------------------------------------------------------
def test_capk_bad_checksum_refuses_that_key_only(tmp_path) -> None:  # noqa: ANN001
    good = TestPki("A000000003").capk_line()
    parts = TestPki("A000000004").capk_line().split()
    parts[7] = "00" * 20
    bad = " ".join(parts)
    f = tmp_path / "k.txt"
    f.write_text(f"{good}\n{bad}\nnot a key line\n", encoding="utf-8")
    store = capk.load_file(f)
    assert list(store.keys) == [(H("A000000003"), 0x92)]
    assert len(store.refused) == 2
    assert "checksum" in store.refused[0] and ":2:" in store.refused[0]


def test_capk_missing_file_is_a_config_error(tmp_path) -> None:  # noqa: ANN001
    aids = shipped_config_dir() / "aids.toml"
    text = f'[kernel]\naid_table = "{aids}"\ncapk_file = "{tmp_path / "none.txt"}"\n'
    with pytest.raises(ConfigError, match="kernel.capk_file"):
        Kernel.from_config(parse_config(text, tmp_path / "t.toml"))


def test_production_mode_refuses_test_keys(tmp_path) -> None:  # noqa: ANN001
    cfg = kernel_config(tmp_path, extra='mode = "production"')
    with pytest.raises(ConfigError, match="production mode refuses test CA key") as err:
        Kernel.from_config(cfg)
    assert "\n" not in str(err.value)


def test_production_mode_refuses_a_public_scheme_test_key_even_unmarked(tmp_path) -> None:  # noqa: ANN001
    line = next(
        ln
        for ln in (shipped_config_dir() / "capk" / "public-test-keys.txt").read_text().splitlines()
        if ln.startswith("A000000004 F1")
    )
    unmarked = line.split("#")[0] + "# acquirer key set"
    cfg = kernel_config(tmp_path, extra='mode = "production"', capk_lines=[unmarked])
    with pytest.raises(ConfigError, match="A000000004 #F1"):
        Kernel.from_config(cfg)


def test_production_mode_accepts_keys_not_known_as_test(tmp_path) -> None:  # noqa: ANN001
    line = TestPki("A000000003").capk_line(comment="acquirer-provided set 2026-11")
    cfg = kernel_config(tmp_path, extra='mode = "production"', capk_lines=[line])
    assert Kernel.from_config(cfg).keys.get(H("A000000003"), 0x92) is not None


def test_revocation_list_blocks_offline_approval(tmp_path) -> None:  # noqa: ANN001
    revoked = tmp_path / "revoked.txt"
    revoked.write_text("# RID INDEX SERIAL\nA000000003 92 000001\n", encoding="utf-8")
    kernel_config(tmp_path)  # writes capk.txt with the test CAs
    text = (
        f'[kernel]\naid_table = "{shipped_config_dir() / "aids.toml"}"\n'
        f'capk_file = "{tmp_path / "capk.txt"}"\ncapk_revoked = "{revoked}"\n'
    )
    kernel = Kernel.from_config(parse_config(text, tmp_path / "t.toml"))
    out = kernel.process(
        tap(TestPhone("visa")),
        TerminalTransaction(amount=1000, currency=978, country=380, when=dt.datetime(2026, 1, 2)),
    )
    assert out.kind is OutcomeKind.DECLINED
    assert "revoked" in out.reason


# ---- AID table and entry point -----------------------------------------------------------
def test_shipped_aid_table_loads() -> None:
    import tomllib

    data = tomllib.loads((shipped_config_dir() / "aids.toml").read_text())
    table = parse_aid_table(data, "aids.toml")
    assert {e.scheme for e in table.entries} == {"visa", "mastercard", "rupay"}
    assert table.find(H("A0000005241010")).kernel == 0


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        ({"kernel": 7}, "kernel"),
        ({"floor_limit": -1}, "floor_limit"),
        ({"ttq": "XYZ"}, "ttq"),
        ({"colour": 1}, "unknown key 'colour'"),
        ({"limits": [{"currency": "ZZZ"}]}, "currency"),
    ],
)
def test_aid_table_mistakes_name_the_key(edit: dict, fragment: str) -> None:
    entry = {"aid": "A0000000031010", "scheme": "visa", "kernel": 3, "floor_limit": 0,
             "contactless_txn_limit": 100, "cvm_required_limit": 50, **edit}  # fmt: skip
    with pytest.raises(ConfigError, match=fragment):
        parse_aid_table({"aid": [entry]}, "aids.toml")


def test_candidates_follow_priority_and_skip_unsupported() -> None:
    import tomllib

    table = parse_aid_table(tomllib.loads((shipped_config_dir() / "aids.toml").read_text()), "a")
    from emv_testcard import enc

    def entry(aid: str, prio: int) -> bytes:
        return enc("61", enc("4F", H(aid)) + enc("87", bytes([prio])))

    directory = entry("A0000000041010", 2) + entry("A0000009991010", 1)
    directory += entry("A0000000031010", 1)
    fci = enc("6F", enc("84", b"2PAY.SYS.DDF01") + enc("A5", enc("BF0C", directory)))
    txn = TerminalTransaction(amount=100, currency=978, country=380)
    cands, skipped = candidates(parse_ppse(fci), table, txn)
    assert [c.config.scheme for c in cands] == ["visa", "mastercard"]
    assert [(s.aid.hex().upper(), s.why) for s in skipped] == [
        ("A0000009991010", SkipReason.NOT_SUPPORTED)
    ]
    assert str(skipped[0]) == "A0000009991010 not supported"


def test_fallback_to_next_candidate_when_selection_fails(tmp_path) -> None:  # noqa: ANN001
    from emv_testcard import enc

    kernel = Kernel.from_config(kernel_config(tmp_path))
    phone = TestPhone("mastercard")
    # the phone lists a Visa application first that it then refuses to select
    phone.extra_ppse.append(enc("61", enc("4F", H("A0000000031010")) + enc("87", b"\x01")))
    out = kernel.process(tap(phone), TerminalTransaction(amount=12_345, currency=978, country=380))
    assert out.kind is OutcomeKind.ONLINE_REQUEST
    assert out.scheme == "mastercard"


def test_shipped_test_keys_are_refused_by_a_production_configuration() -> None:
    cfg = parse_config('mode = "production"\n', shipped_config_dir() / "production.toml")
    with pytest.raises(ConfigError, match="production mode refuses test CA key") as err:
        Kernel.from_config(cfg)
    assert "\n" not in str(err.value)
    assert Kernel.from_config(parse_config("", shipped_config_dir() / "t.toml")).keys.keys
