#!/usr/bin/env python3
"""Assemble sift's labelled development set of spam-injected news articles.

Reads hand-written sources from scripts/devset/sources/*.txt (a clean article plus an
injection plan, see "Source format" below) and the seed example in examples/, and writes

    data/dev/docs/NAME.txt    the polluted article, UTF-8, exactly as a scraper delivers it
    data/dev/gold/NAME.json   {"spam": [{"start", "end", "text"}], "clean_text"}
    data/dev/README.md        format, conventions and the table of documents

Offsets are UTF-8 byte offsets into NAME.txt, end exclusive, computed here from the plan.
Every document is validated; any failure prints a message and exits with status 1.
Standard library only; deterministic (re-running gives identical bytes).

Source format
-------------
    # comment lines are ignored
    name: ko-economy-chip-exports-loan-spam
    lang: ko                      (ko | en)
    topic: economy (chip exports)
    kind: loan (ko)               (spam kind; "clean" or "hard negative: ..." when no plan)
    style: whole line top; glued after comma x3
    final-newline: yes            (optional; the article ends with "\n")
    inject: line 0 :: PHRASE                  whole line inserted before clean line 0 (0-based)
    inject: line end :: PHRASE                whole line appended after the last line
    inject: after "ANCHOR" :: PHRASE          glued right after the anchor
    inject: after#2 "ANCHOR" :: PHRASE        ... after its 2nd occurrence
    inject: before "ANCHOR" spaced :: PHRASE  "PHRASE " inserted before the anchor
    inject: after "ANCHOR" lead :: PHRASE     " PHRASE" inserted after the anchor
    ---
    the clean article, as many lines as needed

Anchors are located in the *clean* article; an anchor without #N must occur exactly once.
Modes: glue (default, no whitespace added), spaced (the phrase plus one trailing space,
for a phrase standing between spaces), lead (one leading space plus the phrase).
The span is exactly the inserted bytes, newlines excluded: for a whole line it is the
phrase alone; for spaced/lead it includes the one space that came with the phrase.
"""

import json
import os
import re
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SOURCES = os.path.join(ROOT, "scripts", "devset", "sources")
OUT = os.path.join(ROOT, "data", "dev")
DOCS = os.path.join(OUT, "docs")
GOLD = os.path.join(OUT, "gold")

SEED_NAME = "seed-samsung-lee-us-trip"
SEED_DOC = os.path.join(ROOT, "examples", "article.txt")
SEED_GOLD = os.path.join(ROOT, "examples", "article.expected.json")
SEED_META = {
    "name": SEED_NAME,
    "lang": "ko",
    "topic": "tech/business (Samsung chairman's US trip)",
    "kind": "sports stats (ko): Vissel Kobe vs FC Barcelona",
    "style": "whole line top; glued after comma x4 (no space after)",
}

NAME_RE = re.compile(r"^(ko|en)-[a-z0-9]+(-[a-z0-9]+)*$")
INJECT_RE = re.compile(
    r'^(?:line\s+(?P<line>\d+|end)'
    r'|(?P<rel>after|before)(?:#(?P<nth>\d+))?\s+"(?P<anchor>[^"]+)"(?:\s+(?P<mode>glue|spaced|lead))?)'
    r"\s+::\s+(?P<phrase>\S.*?)\s*$"
)
HEADER_KEYS = {"name", "lang", "topic", "kind", "style", "final-newline"}


class DevsetError(Exception):
    pass


def fail(name, msg):
    raise DevsetError(f"{name}: {msg}")


# ---------------------------------------------------------------- the convention

def is_whole_line(doc: bytes, start: int, end: int) -> bool:
    """A span covers a whole line: it starts at the beginning of the file or right after
    a newline, and ends right before a newline or at the end of the file."""
    starts_line = start == 0 or doc[start - 1:start] == b"\n"
    ends_line = end == len(doc) or doc[end:end + 1] == b"\n"
    return starts_line and ends_line


def apply_convention(doc: bytes, spans) -> bytes:
    """clean_text: remove every span; for a whole-line span also remove the newline that
    follows it, or, when it is the last line with no newline after it, the one before it."""
    drop = bytearray(len(doc))  # 1 = byte removed
    for s in spans:
        a, b = s["start"], s["end"]
        for i in range(a, b):
            drop[i] = 1
        if is_whole_line(doc, a, b):
            if b < len(doc):
                drop[b] = 1  # the following "\n"
            elif a > 0:
                drop[a - 1] = 1  # last line: the preceding "\n"
    return bytes(c for c, d in zip(doc, drop) if not d)


def validate(name, doc: bytes, gold, clean_source: str):
    if set(gold) != {"spam", "clean_text"}:
        fail(name, f"gold keys are {sorted(gold)}, want spam and clean_text")
    try:
        doc.decode("utf-8")
    except UnicodeDecodeError as e:
        fail(name, f"document is not UTF-8: {e}")
    prev_end = -1
    for i, s in enumerate(gold["spam"]):
        if set(s) != {"start", "end", "text"}:
            fail(name, f"span {i} keys are {sorted(s)}")
        a, b, text = s["start"], s["end"], s["text"]
        if not (isinstance(a, int) and isinstance(b, int) and 0 <= a < b <= len(doc)):
            fail(name, f"span {i} has bad offsets [{a}, {b}) for a {len(doc)}-byte document")
        if a < prev_end:
            fail(name, f"span {i} [{a}, {b}) overlaps or is out of order")
        if a == prev_end:
            fail(name, f"span {i} [{a}, {b}) touches the previous span; merge them")
        prev_end = b
        for off in (a, b):
            if off < len(doc) and 0x80 <= doc[off] <= 0xBF:
                fail(name, f"span {i} offset {off} is not on a UTF-8 character boundary")
        if doc[a:b].decode("utf-8") != text:
            fail(name, f"span {i} text {text!r} != document bytes {doc[a:b].decode('utf-8')!r}")
        if "\n" in text:
            fail(name, f"span {i} contains a newline")
        if text != text.strip() and not (text.endswith(" ") and text.strip() == text[:-1]) \
                and not (text.startswith(" ") and text.strip() == text[1:]):
            fail(name, f"span {i} {text!r} has whitespace other than one space at one edge")
    derived = apply_convention(doc, gold["spam"]).decode("utf-8")
    if derived != gold["clean_text"]:
        fail(name, "document with the spans removed (convention) != gold clean_text")
    if gold["clean_text"] != clean_source:
        fail(name, "gold clean_text != the clean source article")
    if not gold["spam"] and doc.decode("utf-8") != gold["clean_text"]:
        fail(name, "clean document differs from its clean_text")


# ---------------------------------------------------------------- sources

def parse_source(path):
    with open(path, "rb") as f:
        raw = f.read().decode("utf-8")
    stem = os.path.splitext(os.path.basename(path))[0]
    if "\r" in raw:
        fail(stem, "source contains a carriage return")
    head, sep, body = raw.partition("\n---\n")
    if not sep:
        fail(stem, "no '---' line between header and article")
    meta, plan = {}, []
    for ln in head.split("\n"):
        if not ln.strip() or ln.startswith("#"):
            continue
        key, colon, val = ln.partition(":")
        key, val = key.strip(), val.strip()
        if not colon:
            fail(stem, f"bad header line {ln!r}")
        if key == "inject":
            m = INJECT_RE.match(val)
            if not m:
                fail(stem, f"bad inject line {val!r}")
            plan.append(m.groupdict())
        elif key in HEADER_KEYS:
            if key in meta:
                fail(stem, f"header {key} given twice")
            meta[key] = val
        else:
            fail(stem, f"unknown header {key!r}")
    for key in ("name", "lang", "topic", "kind", "style"):
        if not meta.get(key):
            fail(stem, f"missing header {key}")
    if meta["name"] != stem:
        fail(stem, f"name {meta['name']!r} does not match the file name")
    if not NAME_RE.match(stem) or not stem.startswith(meta["lang"] + "-"):
        fail(stem, "name must be lowercase ascii with hyphens, prefixed by its language")
    if body.endswith("\n"):
        body = body[:-1]
    if body != body.strip() or not body:
        fail(stem, "article is empty or has leading/trailing blank space")
    if "\n\n" in body:
        fail(stem, "article has an empty line")
    if meta.get("final-newline", "no") == "yes":
        body += "\n"
    return meta, plan, body


def find_nth(text, anchor, nth, name):
    hits, i = [], text.find(anchor)
    while i != -1:
        hits.append(i)
        i = text.find(anchor, i + 1)
    if nth is None:
        if not hits:
            fail(name, f"anchor {anchor!r} does not occur in the clean article")
        if len(hits) > 1:
            fail(name, f"anchor {anchor!r} occurs {len(hits)} times; give #N")
        return hits[0]
    n = int(nth)
    if not 1 <= n <= len(hits):
        fail(name, f"anchor {anchor!r} has {len(hits)} occurrences, not #{n}")
    return hits[n - 1]


def build_document(name, plan, clean):
    """Returns (document str, spans as (char_start, char_end) in the document)."""
    line_starts = [0] + [i + 1 for i, c in enumerate(clean) if c == "\n" and i + 1 < len(clean)]
    inserts = []  # (position in clean, order, inserted text, span offset, span length)
    for order, step in enumerate(plan):
        phrase = step["phrase"]
        if step["line"] is not None:
            if step["line"] == "end":
                if clean.endswith("\n"):
                    inserts.append((len(clean), order, phrase + "\n", 0, len(phrase)))
                else:
                    inserts.append((len(clean), order, "\n" + phrase, 1, len(phrase)))
            else:
                n = int(step["line"])
                if n >= len(line_starts):
                    fail(name, f"line {n} is past the {len(line_starts)} lines of the article")
                inserts.append((line_starts[n], order, phrase + "\n", 0, len(phrase)))
            continue
        pos = find_nth(clean, step["anchor"], step["nth"], name)
        if step["rel"] == "after":
            pos += len(step["anchor"])
        mode = step["mode"] or "glue"
        if mode == "glue":
            inserts.append((pos, order, phrase, 0, len(phrase)))
        elif mode == "spaced":
            if not (pos > 0 and clean[pos - 1] == " "):
                fail(name, f"spaced injection of {phrase!r} is not after a space")
            inserts.append((pos, order, phrase + " ", 0, len(phrase) + 1))
        else:  # lead
            inserts.append((pos, order, " " + phrase, 0, len(phrase) + 1))
    inserts.sort(key=lambda t: (t[0], t[1]))
    out, spans, prev = [], [], 0
    for pos, _, text, off, length in inserts:
        out.append(clean[prev:pos])
        at = sum(len(p) for p in out)
        spans.append((at + off, at + off + length))
        out.append(text)
        prev = pos
    out.append(clean[prev:])
    return "".join(out), spans


def char_to_byte_spans(doc, spans):
    result = []
    for a, b in spans:
        ba = len(doc[:a].encode("utf-8"))
        bb = ba + len(doc[a:b].encode("utf-8"))
        result.append({"start": ba, "end": bb, "text": doc[a:b]})
    return result


# ---------------------------------------------------------------- output

def dump_gold(gold):
    return (json.dumps(gold, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def md_cell(s):
    return s.replace("|", "\\|")


README_HEAD = """\
# sift development set

Labelled news articles (Korean and English) with SEO spam spliced in, for developing and
measuring sift's spam detection. The articles were written for this set, loosely modelled on
real news; names, figures, quotes and events are invented or altered, so read none of them as
reporting. The seed is the repository's `examples/article.txt` (a real scraped article).

Do not edit `docs/` or `gold/` by hand: they are generated from `scripts/devset/sources/`
(one file per document: the clean article plus an injection plan) and rebuilt with

```sh
python3 scripts/devset/build.py
```

The script is deterministic, standard-library Python, and validates every document; it
exits non-zero on any failure. This README is generated by it as well.

## Format

- `docs/NAME.txt`: the polluted article, UTF-8, exactly as a scraper would deliver it
  (no byte-order mark, `\\n` line ends; most files have no final newline, some do).
- `gold/NAME.json`: `{"spam": [{"start": int, "end": int, "text": str}], "clean_text": str}`.
  `start`/`end` are UTF-8 **byte** offsets into `docs/NAME.txt`, end exclusive, on character
  boundaries; spans are sorted, non-overlapping and never touching; `text` equals the bytes at
  `[start, end)`. Clean documents have `"spam": []` and `clean_text` equal to the document.

## Convention: spans, whitespace and newlines

- `clean_text` is the document with every spam span removed, and, when a span covers a whole
  line (it starts at the beginning of the file or right after a `\\n`, and ends right before a
  `\\n`), that following `\\n` is removed too. A whole-line span that is the last line, with no
  `\\n` after it, takes the preceding `\\n` with it instead.
- Spans never include a newline.
- A span is exactly what the spammer inserted. A phrase glued into text (after a comma, after a
  period, before a word) has no whitespace in its span. A phrase standing between two spaces
  (`word PHRASE word`) carries one space, the one **after** it (`"PHRASE "`), so that removing
  the span leaves single spacing; a phrase appended after the last word of a line with one
  space carries that **leading** space (`" PHRASE"`).
- `clean_text` of every document equals the clean article it was built from; the build checks
  this, so no injection damaged the article.

## Documents

"""


def write_readme(rows):
    n = len(rows)
    ko = sum(r["lang"] == "ko" for r in rows)
    clean = sum(r["spans"] == 0 for r in rows)
    spans = sum(r["spans"] for r in rows)
    lines = [README_HEAD.rstrip("\n"), "",
             f"{n} documents: {ko} Korean, {n - ko} English; {n - clean} polluted, {clean} clean; "
             f"{spans} spam spans in all.", "",
             "| name | lang | topic | spam kind | injection style | spans |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append("| " + " | ".join(md_cell(x) for x in (
            f"`{r['name']}`", r["lang"], r["topic"], r["kind"], r["style"], str(r["spans"]))) + " |")
    data = ("\n".join(lines) + "\n").encode("utf-8")
    with open(os.path.join(OUT, "README.md"), "wb") as f:
        f.write(data)


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    with open(path, "rb") as f:
        if f.read() != data:
            raise DevsetError(f"{path}: read-back differs")


def main():
    os.makedirs(DOCS, exist_ok=True)
    os.makedirs(GOLD, exist_ok=True)
    built = {}  # name -> (meta, doc bytes, gold)

    # the seed, copied as is
    with open(SEED_DOC, "rb") as f:
        seed_doc = f.read()
    with open(SEED_GOLD, "rb") as f:
        seed_exp = json.loads(f.read().decode("utf-8"))
    seed_gold = {"spam": [{"start": s["start"], "end": s["end"], "text": s["text"]}
                          for s in seed_exp["spam"]],
                 "clean_text": seed_exp["clean_text"]}
    validate(SEED_NAME, seed_doc, seed_gold, seed_exp["clean_text"])
    built[SEED_NAME] = (SEED_META, seed_doc, seed_gold)

    sources = sorted(f for f in os.listdir(SOURCES) if f.endswith(".txt"))
    for fn in sources:
        meta, plan, clean = parse_source(os.path.join(SOURCES, fn))
        name = meta["name"]
        if name in built:
            fail(name, "duplicate name")
        doc, char_spans = build_document(name, plan, clean)
        doc_bytes = doc.encode("utf-8")
        gold = {"spam": char_to_byte_spans(doc, char_spans), "clean_text": clean}
        validate(name, doc_bytes, gold, clean)
        is_clean_meta = meta["kind"] == "clean" or meta["kind"].startswith("hard negative")
        if bool(plan) == is_clean_meta:
            fail(name, f"kind {meta['kind']!r} does not fit a plan of {len(plan)} injections")
        built[name] = (meta, doc_bytes, gold)

    # write, then sweep files that no source produces any more
    for name, (meta, doc, gold) in built.items():
        write(os.path.join(DOCS, name + ".txt"), doc)
        write(os.path.join(GOLD, name + ".json"), dump_gold(gold))
    for folder, ext in ((DOCS, ".txt"), (GOLD, ".json")):
        for fn in os.listdir(folder):
            if fn.endswith(ext) and fn[:-len(ext)] not in built:
                os.remove(os.path.join(folder, fn))

    # re-read and re-validate what is on disk
    rows = []
    for name in sorted(built):
        meta, _, gold = built[name]
        with open(os.path.join(DOCS, name + ".txt"), "rb") as f:
            doc = f.read()
        with open(os.path.join(GOLD, name + ".json"), "rb") as f:
            disk_gold = json.loads(f.read().decode("utf-8"))
        validate(name, doc, disk_gold, gold["clean_text"])
        rows.append(dict(meta, name=name, spans=len(gold["spam"])))
    write_readme(rows)

    n = len(rows)
    ko = sum(r["lang"] == "ko" for r in rows)
    clean = sum(r["spans"] == 0 for r in rows)
    print(f"devset: {n} documents ({ko} ko, {n - ko} en; {n - clean} polluted, {clean} clean), "
          f"{sum(r['spans'] for r in rows)} spam spans -> {os.path.relpath(OUT, ROOT)}")


if __name__ == "__main__":
    try:
        main()
    except DevsetError as e:
        print(f"devset: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
