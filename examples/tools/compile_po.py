#!/usr/bin/env python3
"""Compile gettext .po catalogs into .mo files with the standard library only.

Usage: compile_po.py [FILE.po ...]   (default: every .po under examples/)

Handles what course catalogs use: msgid/msgstr with continuation lines, comments,
the header entry, msgctxt and plural forms (msgid_plural / msgstr[N]). Fuzzy
entries are skipped, as msgfmt does by default.
"""

import ast
import pathlib
import struct
import sys


def parse_po(text):
    """{msgid (bytes, with context/plural encoding): msgstr (bytes)}."""
    catalog = {}
    entry, field, fuzzy = {}, None, False

    def finish():
        nonlocal entry, field, fuzzy
        if "msgid" in entry and not fuzzy:
            key = entry["msgid"]
            if "msgctxt" in entry:
                key = entry["msgctxt"] + "\x04" + key
            if "msgid_plural" in entry:
                key += "\x00" + entry["msgid_plural"]
                forms = sorted((k for k in entry if k.startswith("msgstr[")), key=lambda k: int(k[7:-1]))
                value = "\x00".join(entry[k] for k in forms)
            else:
                value = entry.get("msgstr", "")
            if value:
                catalog[key.encode("utf-8")] = value.encode("utf-8")
        entry, field, fuzzy = {}, None, False

    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            finish()
        elif line.startswith("#,") and "fuzzy" in line:
            fuzzy = True
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            if field is None:
                raise ValueError("line %d: continuation without a keyword" % number)
            entry[field] += ast.literal_eval(line)
        else:
            keyword, _, rest = line.partition(" ")
            if keyword in ("msgid", "msgctxt") and "msgstr" in entry:
                finish()
            field = keyword
            entry[field] = ast.literal_eval(rest.strip())
    finish()
    return catalog


def mo_bytes(catalog):
    """The GNU .mo layout: header, two tables of (length, offset), then the strings."""
    keys = sorted(catalog)
    header_size = 7 * 4
    ids_table = header_size
    strs_table = ids_table + 8 * len(keys)
    data_start = strs_table + 8 * len(keys)
    ids, strs, data = [], [], b""
    for key in keys:
        ids.append((len(key), data_start + len(data)))
        data += key + b"\x00"
    for key in keys:
        value = catalog[key]
        strs.append((len(value), data_start + len(data)))
        data += value + b"\x00"
    out = struct.pack("<7I", 0x950412DE, 0, len(keys), ids_table, strs_table, 0, data_start)
    for length, offset in ids + strs:
        out += struct.pack("<2I", length, offset)
    return out + data


def main(argv):
    root = pathlib.Path(__file__).resolve().parent.parent
    files = [pathlib.Path(name) for name in argv] or sorted(root.rglob("*.po"))
    for po in files:
        mo = po.with_suffix(".mo")
        mo.write_bytes(mo_bytes(parse_po(po.read_text(encoding="utf-8"))))
        print("compiled %s" % mo)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
