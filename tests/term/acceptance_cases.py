"""Crafted external terms at the edges of what ``binary_to_term`` accepts: lengths and
ranges just inside and just outside OTP's limits, in every tag that carries them.

``cases()`` builds them; ``golden/acceptance.escript`` asks a real node what
``binary_to_term`` makes of each (refused, or the term re-encoded with
``term_to_binary(T, [{minor_version, 2}])``) and the answers are committed as
``golden/acceptance_otpNN.json`` (see ``test_term_acceptance.py``, which also
regenerates them: ``python tests/term/test_term_acceptance.py --write``).
"""

from __future__ import annotations

import struct
import zlib

NODE = b"w\x03a@b"  # SMALL_ATOM_UTF8_EXT 'a@b'
ATOM_TAGS = {100: "atom", 115: "small_atom", 118: "atom_utf8", 119: "small_atom_utf8"}


def atom(tag: int, raw: bytes) -> bytes:
    """An atom with tag 100/118 (16-bit length) or 115/119 (8-bit length)."""
    if tag in (100, 118):
        return bytes((tag,)) + struct.pack(">H", len(raw)) + raw
    return bytes((tag, len(raw))) + raw


def _pid(node: bytes) -> bytes:
    return b"X" + node + bytes(12)


def _new_fun(
    module: bytes,
    uniq: bytes = b"",
    arity: int = 0,
    index: int = 0,
    old_index: bytes = b"a\x00",
    old_uniq: bytes = b"b\x00\x00\x00\x00",
    pid: bytes = b"",
    free: list[bytes] | None = None,
) -> bytes:
    free = free or []
    body = (
        bytes((arity,))
        + uniq.ljust(16, b"\x00")
        + struct.pack(">II", index, len(free))
        + module
        + old_index
        + old_uniq
        + (pid or _pid(NODE))
        + b"".join(free)
    )
    return b"p" + struct.pack(">I", len(body) + 4) + body


def _atom_holders(node: bytes) -> dict[str, bytes]:
    """Every place an atom sits inside another term, with ``node`` there."""
    return {
        "new_pid": _pid(node),
        "pid": b"g" + node + bytes(9),
        "new_port": b"Y" + node + bytes(8),
        "v4_port": b"x" + node + bytes(12),
        "port": b"f" + node + bytes(5),
        "newer_ref": b"Z\x00\x01" + node + bytes(8),
        "new_ref": b"r\x00\x01" + node + bytes(5),
        "ref": b"e" + node + bytes(5),
        "export_module": b"q" + node + b"w\x01fa\x01",
        "export_function": b"qw\x01m" + node + b"a\x01",
        "fun_module": _new_fun(node),
        "list": b"l\x00\x00\x00\x01" + node + b"j",
        "tuple": b"h\x02" + node + node,
        "map_key": b"t\x00\x00\x00\x01" + node + b"a\x01",
        # OTP 29 native records (refused by 25 and 27: no such tag).
        "record_module": b"C\x00\x00\x00\x01\x00" + node + b"w\x01rw\x01fa\x01",
        "record_field": b"C\x00\x00\x00\x01\x00w\x01mw\x01r" + node + b"a\x01",
    }


def _atoms() -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    # Length limits: 255 characters, whatever the encoding; a UTF-8 atom is also
    # limited to 255 * 4 bytes before its characters are counted.
    texts = {
        "a255": b"a" * 255,
        "a256": b"a" * 256,
        "a300": b"a" * 300,
        "a1021": b"a" * 1021,
        "e9x255": b"\xe9" * 255,  # latin-1 e-acute
        "e9x256": b"\xe9" * 256,
        "empty": b"",
        "nul": b"\x00",
    }
    for tag, tag_name in ATOM_TAGS.items():
        for text_name, raw in texts.items():
            if tag in (115, 119) and len(raw) > 255:
                continue
            out[f"{tag_name}_{text_name}"] = atom(tag, raw)
    utf8 = {
        "e_acute_x255": "é".encode() * 255,  # 510 bytes, 255 characters
        "e_acute_x256": "é".encode() * 256,
        "emoji_x255": "\U0001f600".encode() * 255,  # 1020 bytes
        "emoji_x256": "\U0001f600".encode() * 256,
        "emoji_x254_abcd": "\U0001f600".encode() * 254 + b"abcd",  # 1020 bytes
        "a1021": b"a" * 1021,
        "surrogate": b"\xed\xa0\x80",
        "surrogate_pair_cesu": b"\xed\xa0\xbd\xed\xb8\x80",
        "overlong_nul": b"\xc0\x80",
        "overlong_slash": b"\xe0\x80\xaf",
        "above_10ffff": b"\xf4\x90\x80\x80",
        "five_bytes": b"\xf8\x88\x80\x80\x80",
        "cut_short": b"\xc3",
        "lone_continuation": b"\x80",
        "latin1_byte": b"\xe9",
        "nonchar_fffe": "\ufffe".encode(),
        "max_10ffff": "\U0010ffff".encode(),
    }
    for tag in (118, 119):
        for text_name, raw in utf8.items():
            if tag == 119 and len(raw) > 255:
                continue
            out[f"{ATOM_TAGS[tag]}_{text_name}"] = atom(tag, raw)
    # Atoms inside pids, ports, references and funs, in each encoding, at the limit.
    for tag, tag_name in ATOM_TAGS.items():
        sizes = (255, 256) if tag in (100, 118) else (255,)
        for n in sizes:
            for holder, wire in _atom_holders(atom(tag, b"a" * n)).items():
                out[f"{holder}_{tag_name}_a{n}"] = wire
    for holder, wire in _atom_holders(atom(118, "é".encode() * 256)).items():
        out[f"{holder}_atom_utf8_e_acute_x256"] = wire
    for holder, wire in _atom_holders(atom(119, b"\xed\xa0\x80")).items():
        out[f"{holder}_small_atom_utf8_surrogate"] = wire
    # The same atom in both encodings is the same atom: a repeated map key.
    out["map_key_latin1_and_utf8"] = (
        b"t\x00\x00\x00\x02" + atom(119, "é".encode()) + b"a\x01" + atom(100, b"\xe9") + b"a\x02"
    )
    return out


def _identifiers() -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    # Old forms carry a 2-bit creation (0..3).
    for c in (3, 4, 255):
        out[f"pid_creation_{c}"] = b"g" + NODE + struct.pack(">IIB", 1, 0, c)
        out[f"port_creation_{c}"] = b"f" + NODE + struct.pack(">IB", 1, c)
        out[f"ref_creation_{c}"] = b"e" + NODE + struct.pack(">IB", 1, c)
        out[f"new_ref_creation_{c}"] = b"r\x00\x01" + NODE + struct.pack(">BI", c, 1)
    # The first id word of an old reference has 18 bits.
    for w in (0x3FFFF, 0x40000, 0xFFFFFFFF):
        out[f"ref_id_{w:x}"] = b"e" + NODE + struct.pack(">IB", w, 1)
        out[f"new_ref_word0_{w:x}"] = b"r\x00\x01" + NODE + struct.pack(">BI", 1, w)
        out[f"newer_ref_word0_{w:x}"] = b"Z\x00\x01" + NODE + struct.pack(">II", 1, w)
    out["new_ref_word1_ffffffff"] = b"r\x00\x02" + NODE + struct.pack(">BII", 1, 0, 0xFFFFFFFF)
    # Number of id words. (NEW_REFERENCE_EXT with 0 words is left out: OTP 29 accepts
    # or refuses it from run to run.)
    for n in (0, 1, 3, 5, 6):
        if n:
            out[f"new_ref_words_{n}"] = b"r" + struct.pack(">H", n) + NODE + bytes(1 + 4 * n)
        out[f"newer_ref_words_{n}"] = b"Z" + struct.pack(">H", n) + NODE + bytes(4 + 4 * n)
    for name, ident in (("8000", 0x8000), ("ffffffff", 0xFFFFFFFF)):
        out[f"pid_id_{name}"] = b"g" + NODE + struct.pack(">IIB", ident, ident, 1)
        out[f"new_pid_id_{name}"] = b"X" + NODE + struct.pack(">III", ident, ident, 1)
    for name, ident in (("fffffff", 0xFFFFFFF), ("10000000", 0x10000000)):
        out[f"port_id_{name}"] = b"f" + NODE + struct.pack(">IB", ident, 1)
        out[f"new_port_id_{name}"] = b"Y" + NODE + struct.pack(">II", ident, 1)
    out["v4_port_id_max"] = b"x" + NODE + struct.pack(">QI", 2**64 - 1, 1)
    # EXPORT_EXT arity: any integer encoding.
    export = b"qw\x01mw\x01f"
    out["export_arity_small_255"] = export + b"a\xff"
    out["export_arity_int_0"] = export + b"b" + struct.pack(">i", 0)
    out["export_arity_int_255"] = export + b"b" + struct.pack(">i", 255)
    # (Arity 256 is left out: OTP 25 and 29 accept it, OTP 27 reads it as arity 0
    # and crashes the emulator in term_to_binary; the decoder refuses it.)
    out["export_arity_int_neg"] = export + b"b" + struct.pack(">i", -1)
    out["export_arity_small_big_3"] = export + b"n\x01\x00\x03"
    out["export_arity_atom"] = export + b"w\x01x"
    return out


def _funs() -> dict[str, bytes]:
    old_index, old_uniq, pid = b"a\x00", b"b\x00\x00\x00\x00", _pid(NODE)
    ints = {"neg": b"b\xff\xff\xff\xff", "big": b"n\x05\x00" + bytes(4) + b"\x01"}
    # (An atom as the creator pid is left out: OTP 25.2 decodes it and the emulator
    # crashes re-encoding the fun; 27 and 29 refuse it, and so does the decoder.)
    out = {
        "fun_arity_255": _new_fun(b"w\x01m", arity=255),
        "fun_index_ffffffff": _new_fun(b"w\x01m", index=0xFFFFFFFF),
        "fun_old_index_atom": _new_fun(b"w\x01m", old_index=b"w\x01x"),
        "fun_old_uniq_atom": _new_fun(b"w\x01m", old_uniq=b"w\x01x"),
        "fun_pid_port": _new_fun(b"w\x01m", pid=b"Y" + NODE + bytes(8)),
        "fun_pid_old_form": _new_fun(b"w\x01m", pid=b"g" + NODE + bytes(9)),
        "fun_module_integer": _new_fun(b"a\x01"),
        "fun_free_255": _new_fun(b"w\x01m", free=[b"a\x01"] * 255),
        "fun_free_256": _new_fun(b"w\x01m", free=[b"a\x01"] * 256),
    }
    for name, wire in ints.items():
        out[f"fun_old_index_{name}"] = _new_fun(b"w\x01m", old_index=wire)
        out[f"fun_old_uniq_{name}"] = _new_fun(b"w\x01m", old_uniq=wire)
    assert _new_fun(b"w\x01m") == _new_fun(b"w\x01m", b"", 0, 0, old_index, old_uniq, pid)
    return out


def _numbers() -> dict[str, bytes]:
    out: dict[str, bytes] = {
        "small_big_0_digits": b"n\x00\x00",
        "large_big_0_digits": b"o\x00\x00\x00\x00\x00",
        "small_big_negative_zero": b"n\x01\x01\x00",
        "small_big_leading_zero_digits": b"n\x03\x00\x05\x00\x00",
        "small_big_sign_2": b"n\x01\x02\x05",
        "small_big_sign_255": b"n\x01\xff\x05",
        "large_big_sign_7": b"o\x00\x00\x00\x01\x07\x05",
        "new_float_nan": b"F" + struct.pack(">d", float("nan")),
        "new_float_inf": b"F" + struct.pack(">d", float("-inf")),
        "new_float_min_subnormal": b"F" + struct.pack(">d", 5e-324),
    }
    # FLOAT_EXT: a 31-byte text field, read up to the first NUL with Erlang's float
    # syntax (digits '.' digits, an optional exponent). (31 characters and no NUL is
    # left out: OTP 25 reads on past the field and answers differently from run to
    # run; OTP 29 refuses it, and so does the decoder.)
    floats = {
        "1.5": b"1.5",
        "plus_1.5": b"+1.5",
        "minus_1.5e-5": b"-1.5e-5",
        "1.5E5": b"1.5E5",
        "1.5e+05": b"1.5e+05",
        "leading_zero": b"01.5",
        "20_digit_printf": b"1.50000000000000000000e+00",
        "subnormal": b"4.9406564584124654e-324",
        "underflow": b"1.5e-400",
        "overflow": b"1.5e400",
        "junk_after_nul": b"1.5\x00abc",
        "integer": b"1",
        "no_int_part": b".5",
        "no_fraction": b"5.",
        "exp_no_dot": b"1e5",
        "leading_space": b" 1.5",
        "leading_tab": b"\t1.5",
        "trailing_space": b"1.5 ",
        "trailing_spaces_no_nul": b"1.5" + b" " * 28,
        "underscore": b"1_0.5",
        "inf": b"inf",
        "nan": b"nan",
        "hex": b"0x10",
        "exp_empty": b"1.5e",
        "exp_fraction": b"1.5e0.5",
        "double_sign": b"--1.5",
        "two_dots": b"1.5.5",
        "exp_double_sign": b"1.5e+-5",
        "letters_after": b"1.5abc",
        "superscript_one": b"\xb91.5",
        "empty": b"",
    }
    for name, text in floats.items():
        out[f"float_{name}"] = b"c" + text.ljust(31, b"\x00")[:31]
    return out


def _containers() -> dict[str, bytes]:
    return {
        "bit_binary_0_bytes_0_bits": b"M\x00\x00\x00\x00\x00",
        "bit_binary_0_bytes_3_bits": b"M\x00\x00\x00\x00\x03",
        "bit_binary_1_byte_0_bits": b"M\x00\x00\x00\x01\x00\x00",
        "bit_binary_1_byte_8_bits": b"M\x00\x00\x00\x01\x08\x07",
        "bit_binary_1_byte_9_bits": b"M\x00\x00\x00\x01\x09\x00",
        "bit_binary_unused_bits_set": b"M\x00\x00\x00\x01\x04\xff",
        "large_tuple_0": b"i\x00\x00\x00\x00",
        "large_tuple_1": b"i\x00\x00\x00\x01a\x01",
        "string_0": b"k\x00\x00",
        "list_0_nil_tail": b"l\x00\x00\x00\x00j",
        "list_0_atom_tail": b"l\x00\x00\x00\x00w\x01t",
        "list_0_int_tail": b"l\x00\x00\x00\x00a\x05",
        "list_0_list_tail": b"l\x00\x00\x00\x00l\x00\x00\x00\x01a\x01j",
        "list_0_string_tail": b"l\x00\x00\x00\x00k\x00\x01A",
        "list_0_list_0_tail": b"l\x00\x00\x00\x00l\x00\x00\x00\x00a\x05",
        "list_1_atom_tail": b"l\x00\x00\x00\x01a\x01w\x01t",
        "map_repeated_key": b"t\x00\x00\x00\x02w\x01aa\x01w\x01aa\x02",
        "compressed_0_bytes": b"P\x00\x00\x00\x00" + zlib.compress(b""),
        "compressed_declares_too_few": b"P\x00\x00\x00\x01" + zlib.compress(b"a\x01"),
        "atom_cache_ref": b"R\x00",
        "old_fun_ext": b"u\x00\x00\x00\x00" + _pid(NODE) + b"w\x01ma\x00a\x00",
        "unknown_tag_0": b"\x00",
    }


def cases() -> dict[str, bytes]:
    """Name -> complete external term (with the leading 131)."""
    out: dict[str, bytes] = {}
    for part in (_atoms(), _identifiers(), _funs(), _numbers(), _containers()):
        for name, wire in part.items():
            assert name not in out, name
            out[name] = b"\x83" + wire
    return out
