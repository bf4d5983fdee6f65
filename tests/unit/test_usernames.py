"""Login names are checked before they reach LDAP, Docker or Kubernetes."""

from __future__ import annotations

import unicodedata

import pytest

from slicerhub.usernames import LDAP_METACHARACTERS, MAX_LENGTH, InvalidUsername, check_login_name


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("alice", "alice"),
        ("Alice", "alice"),
        ("ALICE", "alice"),
        ("  bob  ", "bob"),
        ("bob\n", "bob"),
        ("\tcarol", "carol"),
        ("j.doe", "j.doe"),
        ("j_doe", "j_doe"),
        ("j-doe", "j-doe"),
        ("student1", "student1"),
        ("a", "a"),
        ("a" * MAX_LENGTH, "a" * MAX_LENGTH),
        ("Admin1", "admin1"),
    ],
)
def test_accepts_and_lower_cases(raw, expected):
    assert check_login_name(raw) == expected


def test_result_is_plain_ascii_str():
    name = check_login_name("Teacher1")
    assert type(name) is str and name.isascii()


# Each character with a meaning in LDAP filters (RFC 4515) or DNs (RFC 4514).
METACHARACTERS = ["*", "(", ")", "\\", "\x00", ",", "=", "+", "<", ">", ";", '"', "#"]


def test_the_metacharacter_set_is_complete():
    assert set(METACHARACTERS) == set(LDAP_METACHARACTERS)


@pytest.mark.parametrize("char", METACHARACTERS, ids=[repr(c) for c in METACHARACTERS])
@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_refuses_ldap_metacharacters(char, where):
    raw = {"start": char + "alice", "middle": "al" + char + "ice", "end": "alice" + char}[where]
    with pytest.raises(InvalidUsername) as info:
        check_login_name(raw)
    message = str(info.value)
    assert message.startswith("Usernames may not contain ")
    assert repr(char) in message
    assert "\x00" not in message


@pytest.mark.parametrize(
    "raw",
    ["*", "*)(uid=*", "admin)(|(uid=*", "alice)(objectClass=*", "uid=admin,ou=people", "a\\2a"],
)
def test_refuses_injection_attempts(raw):
    with pytest.raises(InvalidUsername):
        check_login_name(raw)


def test_names_every_offending_character_once():
    with pytest.raises(InvalidUsername) as info:
        check_login_name("a*b*c(d")
    message = str(info.value)
    assert message.count("'*'") == 1
    assert "'('" in message


@pytest.mark.parametrize("raw", ["", " ", "   ", "\t", "\n", "\r\n", " \t\n "])
def test_refuses_empty_and_whitespace(raw):
    with pytest.raises(InvalidUsername, match=r"^Enter a username\.$"):
        check_login_name(raw)


def test_refuses_none():
    with pytest.raises(InvalidUsername, match=r"^Enter a username\.$"):
        check_login_name(None)  # type: ignore[arg-type]


def test_length_limit():
    assert check_login_name("b" * MAX_LENGTH) == "b" * MAX_LENGTH
    with pytest.raises(InvalidUsername) as info:
        check_login_name("b" * (MAX_LENGTH + 1))
    assert str(info.value) == f"Usernames are at most {MAX_LENGTH} characters long."
    assert MAX_LENGTH == 32


def test_length_counts_after_stripping():
    assert check_login_name("  " + "c" * MAX_LENGTH + "  ") == "c" * MAX_LENGTH


LOOKALIKES = {
    "cyrillic a": "\u0430dmin",  # 'а' (U+0430) looks like Latin 'a'
    "cyrillic e": "t\u0435acher",  # 'е' (U+0435)
    "greek omicron": "r\u03bfot",  # 'ο' (U+03BF) looks like 'o'
    "full-width": "\uff41\uff44\uff4d\uff49\uff4e",  # ａｄｍｉｎ
    "full-width capital": "\uff21dmin",  # Ａdmin
    "ligature": "\ufb01le",  # ﬁ ligature, NFKC → 'fi'
    "latin e acute": "ren\u00e9",
    "dotless i": "adm\u0131n",  # ı, lower/upper tricks
    "kelvin sign": "\u212aelvin",  # K (U+212A) lower-cases to ASCII 'k'
    "zero-width space": "ad\u200bmin",
    "combining accent": "alice\u0301",
    "non-breaking space inside": "al\u00a0ice",
}


@pytest.mark.parametrize("raw", LOOKALIKES.values(), ids=LOOKALIKES.keys())
def test_refuses_unicode_lookalikes(raw):
    with pytest.raises(InvalidUsername) as info:
        check_login_name(raw)
    message = str(info.value)
    assert message.isascii()
    assert "plain ASCII" in message
    # The look-alike is never mapped onto an existing ASCII account.
    assert raw not in message


def test_kelvin_sign_is_not_folded_into_ascii():
    # str.lower() turns U+212A into 'k': refusing must happen before lower-casing.
    with pytest.raises(InvalidUsername):
        check_login_name("\u212a")
    assert "\u212a".lower() == "k"


@pytest.mark.parametrize(
    "raw",
    ["1alice", "0", "9lives", ".alice", "..", "_alice", "-alice", "al ice", "al/ice", "alice@example.org",
     "al:ice", "al'ice", "al|ice", "al&ice", "al!ice", "al%ice", "al?ice", "al{ice}", "al$ice", "~alice"],
)
def test_refuses_names_outside_the_plain_pattern(raw):
    with pytest.raises(InvalidUsername) as info:
        check_login_name(raw)
    message = str(info.value)
    assert message == (
        "Usernames start with a letter and use only letters, digits, '.', '_' and '-'."
    )


CONTROL = ["\x01", "\x07", "\x08", "\x1b", "\x7f", "\x0b", "\x0c", "\x1b[31m", "\u202e", "\x85"]


@pytest.mark.parametrize("ctrl", CONTROL, ids=[repr(c) for c in CONTROL])
def test_messages_never_echo_control_characters(ctrl):
    for raw in (f"al{ctrl}ice", f"al{ctrl}ice*", f"al{ctrl}ice" + "x" * 40):
        with pytest.raises(InvalidUsername) as info:
            check_login_name(raw)
        message = str(info.value)
        assert message.isprintable(), repr(message)
        assert not any(unicodedata.category(c).startswith("C") for c in message)


def test_nul_is_shown_escaped():
    with pytest.raises(InvalidUsername) as info:
        check_login_name("ali\x00ce")
    message = str(info.value)
    assert message == "Usernames may not contain '\\x00'."
    assert message.isprintable()


def test_invalid_username_is_a_value_error():
    assert issubclass(InvalidUsername, ValueError)
