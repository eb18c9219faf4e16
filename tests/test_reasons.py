"""English is not the protocol between layers: a decline travels as a code (ISO 8583 field 39 as
`ResponseCode`, its `Category`, the customer's `Reason`); the screens translate codes, and no
code outside the language files compares human text to decide anything."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from firmware.host.response_codes import Category, ResponseCode, message
from firmware.reasons import Reason

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("code", "category", "reason"), [
    ("00", Category.APPROVED, None),
    ("51", Category.INSUFFICIENT_FUNDS, Reason.INSUFFICIENT_FUNDS),
    ("54", Category.EXPIRED, Reason.EXPIRED),
    ("05", Category.DO_NOT_HONOUR, Reason.DO_NOT_HONOUR),
    ("1A", Category.SCA_REQUIRED, Reason.PIN_NEEDED),
    ("65", Category.SCA_REQUIRED, Reason.PIN_NEEDED),
    ("70", Category.SCA_REQUIRED, Reason.PIN_NEEDED),
    ("91", Category.ISSUER_UNAVAILABLE, Reason.ISSUER_UNAVAILABLE),
    ("61", Category.OVER_LIMIT, Reason.LIMIT),
    ("43", Category.CARD_BLOCKED, None),
])
def test_each_response_code_has_a_category_and_what_the_customer_is_told(
        code: str, category: Category, reason: Reason | None) -> None:
    known = ResponseCode.of(code)
    assert known is not None and known.category is category
    assert category.reason is reason


def test_approved_is_a_category_not_a_list_of_strings() -> None:
    assert {c.value for c in ResponseCode if c.approved} == {"00", "08", "10", "11"}
    assert {c.value for c in ResponseCode if c.partial} == {"10"}  # approved for less


@pytest.mark.parametrize("code", ["99", "Z3", "", "5"])
def test_an_unknown_code_is_none_and_reads_as_a_decline_with_its_code(code: str) -> None:
    assert ResponseCode.of(code) is None
    assert message(code) == f"Declined (code {code})"


def test_every_reason_the_customer_is_told_has_words_in_every_language() -> None:
    from ui.lang import available, load

    for lang in map(load, available()):
        for reason in Reason:
            assert f"reason_{reason}" in lang.text, (lang, reason)


def test_only_host_trouble_is_not_charged() -> None:
    assert {r for r in Reason if r.not_charged} == {Reason.HOST_UNAVAILABLE, Reason.NO_REPLY,
                                                       Reason.OFFLINE_LIMIT}


# ---- the source scan ------------------------------------------------------------------------
# Text the terminal does not write: other programs' output with no codes to read instead.
ALLOWED = {
    ("firmware/provision/rootfs.py", "debugfs"),  # e2fsprogs' debugfs: prompts, "No space"
    ("firmware/provision/rootfs.py", "No free space"),
    ("firmware/provision/rootfs.py", "No space"),
    ("firmware/provision/diag.py", "keys[n].lower() == n"),  # key names, not words
    ("firmware/provision/site.py", "name == d"),  # DNS names
}
CODE = re.compile(r"^[A-Za-z0-9_.:/+\-=*#%]*$")  # identifiers, codes, paths: not sentences


def _strings(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return [s for e in node.elts for s in _strings(e)]
    return []


def _folded(node: ast.AST, names: set[str]) -> bool:
    """Text lower-cased (or a name bound to such text): the mark of matching people's words."""
    return any((isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                and n.func.attr in ("lower", "casefold"))
               or (isinstance(n, ast.Name) and n.id in names) for n in ast.walk(node))


def _human_text_decisions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    folded_names = {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign)
                    and _folded(n.value, set()) for t in n.targets if isinstance(t, ast.Name)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            texts = [s for side in sides for s in _strings(side)]
            # a sentence compared, or folded text compared with anything but a fixed code
            if any(not CODE.match(s) for s in texts) or (
                    any(_folded(s, folded_names) for s in sides)
                    and not any(_strings(s) for s in sides)):
                found.append(f"{node.lineno}: {ast.unparse(node)}")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in ("startswith", "endswith", "find", "count")
              and any(not CODE.match(s) for a in node.args for s in _strings(a))):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_module_outside_the_language_files_decides_on_human_text() -> None:
    found = []
    for path in sorted([*ROOT.glob("firmware/**/*.py"), *ROOT.glob("ui/**/*.py"),
                        *ROOT.glob("drivers/**/*.py")]):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("ui/lang/"):
            continue
        found += [f"{rel}:{hit}" for hit in _human_text_decisions(path)
                  if not any(rel == p and snippet in hit for p, snippet in ALLOWED)]
    assert found == []


def test_the_scan_sees_what_the_old_screens_did(tmp_path: Path) -> None:
    """The two shapes the screens used before: a phrase table matched against a host's text,
    and a text compared with a translation."""
    old = tmp_path / "old.py"
    old.write_text(
        "PATTERNS = (('insufficient', 'insufficient_funds'),)\n"
        "def name(reason):\n"
        "    lowered = reason.lower()\n"
        "    return next((n for p, n in PATTERNS if p in lowered), '')\n"
        "def same(detail, t):\n"
        "    return detail.strip().lower() == t('see_phone').lower()\n"
        "def host(message):\n"
        "    return 'do not honour' in message\n")
    assert len(_human_text_decisions(old)) == 3
