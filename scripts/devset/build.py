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
    fact-ko: 이재용 | 이 회장                  a key fact: forms a Korean summary may use
    fact-en: Lee                              a key fact: forms an English summary may use
    forbidden: 비셀 | Vissel | Apple          terms neither summary may contain (accumulates)
    ---
    the clean article, as many lines as needed

Anchors are located in the *clean* article; an anchor without #N must occur exactly once.
Modes: glue (default, no whitespace added), spaced (the phrase plus one trailing space,
for a phrase standing between spaces), lead (one leading space plus the phrase).
The span is exactly the inserted bytes, newlines excluded: for a whole line it is the
phrase alone; for spaced/lead it includes the one space that came with the phrase.

Summary-evaluation facts (all three required in every source; the seed's are SEED_FACTS,
in the same syntax). Alternatives are separated by "|", each trimmed.
    fact-ko: exactly five lines. One fact a faithful short Korean summary (at most 3
             sentences / 300 characters) of the clean article must state; the forms are
             alternative short surface strings, any one of which counts (a name, a stem,
             a number as written).
    fact-en: exactly five lines, the same for the English summary.
    forbidden: one or more lines, accumulating: terms that must appear in neither summary
             (the injected spam's words, in both languages, and plausible hallucinations).
Written to the gold as
    "key_facts_ko": [[str, ...] x5], "key_facts_en": [[str, ...] x5], "forbidden": [str, ...]
in source order. Matching is meant to be case-insensitive substring search, with ASCII forms
bounded by non-[A-Za-z0-9] characters (a Hangul particle right after "HBM" is a boundary).
Validated: five facts each, non-empty distinct forms; every form of the article's own
language occurs in the clean article (Korean forms for a ko article, English forms for an en
article; the other language cannot be checked); every forbidden term is absent from the
clean article and from every fact form (by the same matching, so "cialis" may be forbidden
in an article that says "specialist").
"""

import json
import os
import re
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
# `build.py` builds the development set; `build.py injections` the injected-instruction set, from
# scripts/devset/injections/ into data/injections/ (same format, no seed): instructions to a model
# planted in articles are measured apart from SEO spam.
SET = sys.argv[1] if len(sys.argv) > 1 else "dev"
if SET not in ("dev", "injections"):
    sys.exit(f"devset: unknown set {SET!r} (dev or injections)")
SOURCES = os.path.join(ROOT, "scripts", "devset", "sources" if SET == "dev" else "injections")
OUT = os.path.join(ROOT, "data", SET)
DOCS = os.path.join(OUT, "docs")
GOLD = os.path.join(OUT, "gold")

INJECTIONS_HEAD = """\
# sift injected-instruction set

Articles with instructions to a model planted in them (an override, a false claim to report, a
prompt leak; no advertising), and a clean article that reports on such attacks. They are scored
like the development set (`sift eval data/injections`) but kept apart from it: the development
set measures SEO spam, this set measures the instruction test. Built from
`scripts/devset/injections/` with `python3 scripts/devset/build.py injections`; everything below
about the development set's format holds here too.

"""

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

SEED_FACTS = """\
fact-ko: 이재용 | 이 회장
fact-ko: 삼성
fact-ko: 저커버그 | 메타
fact-ko: 아마존
fact-ko: 퀄컴
fact-en: Samsung
fact-en: Lee
fact-en: Zuckerberg | Meta
fact-en: Amazon
fact-en: Qualcomm
forbidden: 비셀 | 고베 | 바르셀로나 | Vissel | Kobe | Barcelona
forbidden: Apple | 애플 | Tim Cook | 팀 쿡 | Nvidia | 엔비디아 | Jensen Huang | 삼성물산
"""

NAME_RE = re.compile(r"^(ko|en)-[a-z0-9]+(-[a-z0-9]+)*$")
INJECT_RE = re.compile(
    r'^(?:line\s+(?P<line>\d+|end)'
    r'|(?P<rel>after|before)(?:#(?P<nth>\d+))?\s+"(?P<anchor>[^"]+)"(?:\s+(?P<mode>glue|spaced|lead))?)'
    r"\s+::\s+(?P<phrase>\S.*?)\s*$"
)
HEADER_KEYS = {"name", "lang", "topic", "kind", "style", "final-newline"}
FACT_KEYS = {"fact-ko": "key_facts_ko", "fact-en": "key_facts_en", "forbidden": "forbidden"}
N_FACTS = 5
ASCII_FORM_RE = re.compile(r"^[\x00-\x7f]+$")


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


def occurs(form: str, text: str) -> bool:
    """Case-insensitive substring search; an ASCII form must not touch an ASCII letter or
    digit on either side (a Hangul particle, space or punctuation is a boundary)."""
    f, t = form.lower(), text.lower()
    if not ASCII_FORM_RE.match(f):
        return f in t
    pat = r"(?<![a-z0-9])" + re.escape(f) + r"(?![a-z0-9])"
    return re.search(pat, t) is not None


def validate_facts(name, lang, gold):
    clean = gold["clean_text"]
    all_forms = []
    for key in ("key_facts_ko", "key_facts_en"):
        facts = gold[key]
        if not isinstance(facts, list) or len(facts) != N_FACTS:
            fail(name, f"{key} must hold exactly {N_FACTS} facts, has "
                       f"{len(facts) if isinstance(facts, list) else facts!r}")
        for i, forms in enumerate(facts):
            if not isinstance(forms, list) or not forms:
                fail(name, f"{key}[{i}] must be a non-empty list of forms")
            for form in forms:
                if not isinstance(form, str) or not form or form != form.strip() or "\n" in form:
                    fail(name, f"{key}[{i}] has a bad form {form!r}")
            if len({f.lower() for f in forms}) != len(forms):
                fail(name, f"{key}[{i}] repeats a form: {forms}")
            # the article's own language: a faithful summary copies these strings
            if key == f"key_facts_{lang}":
                for form in forms:
                    if not occurs(form, clean):
                        fail(name, f"{key}[{i}] form {form!r} does not occur in the clean article")
            all_forms.extend(forms)
    forbidden = gold["forbidden"]
    if not isinstance(forbidden, list) or not forbidden:
        fail(name, "forbidden must be a non-empty list")
    if len({t.lower() for t in forbidden if isinstance(t, str)}) != len(forbidden):
        fail(name, "forbidden repeats a term")
    for term in forbidden:
        if not isinstance(term, str) or not term or term != term.strip() or "\n" in term:
            fail(name, f"forbidden has a bad term {term!r}")
        if occurs(term, clean):
            fail(name, f"forbidden term {term!r} occurs in the clean article")
        for form in all_forms:
            if occurs(term, form):
                fail(name, f"forbidden term {term!r} occurs in the fact form {form!r}")


GOLD_KEYS = ["spam", "clean_text", "key_facts_ko", "key_facts_en", "forbidden"]


def validate(name, lang, doc: bytes, gold, clean_source: str):
    if set(gold) != set(GOLD_KEYS):
        fail(name, f"gold keys are {sorted(gold)}, want {', '.join(GOLD_KEYS)}")
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
    validate_facts(name, lang, gold)


# ---------------------------------------------------------------- sources

def parse_fact_line(name, facts, key, val):
    """Adds one fact-ko / fact-en / forbidden header line to facts (gold field -> list)."""
    forms = [f.strip() for f in val.split("|")]
    if not val.strip() or any(not f for f in forms):
        fail(name, f"{key} line {val!r} has an empty form")
    field = FACT_KEYS[key]
    if key == "forbidden":
        facts[field].extend(forms)
    else:
        facts[field].append(forms)


def new_facts():
    return {field: [] for field in FACT_KEYS.values()}


def parse_facts_text(name, text):
    """The seed's facts: fact-ko / fact-en / forbidden lines only."""
    facts = new_facts()
    for ln in text.split("\n"):
        if not ln.strip() or ln.startswith("#"):
            continue
        key, colon, val = ln.partition(":")
        key = key.strip()
        if not colon or key not in FACT_KEYS:
            fail(name, f"bad fact line {ln!r}")
        parse_fact_line(name, facts, key, val.strip())
    return facts


def check_fact_counts(name, facts):
    for key, field in FACT_KEYS.items():
        if key != "forbidden" and len(facts[field]) != N_FACTS:
            fail(name, f"{len(facts[field])} {key} lines, want exactly {N_FACTS}")
    if not facts["forbidden"]:
        fail(name, "no forbidden line")


def parse_source(path):
    with open(path, "rb") as f:
        raw = f.read().decode("utf-8")
    stem = os.path.splitext(os.path.basename(path))[0]
    if "\r" in raw:
        fail(stem, "source contains a carriage return")
    head, sep, body = raw.partition("\n---\n")
    if not sep:
        fail(stem, "no '---' line between header and article")
    meta, plan, facts = {}, [], new_facts()
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
        elif key in FACT_KEYS:
            parse_fact_line(stem, facts, key, val)
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
    check_fact_counts(stem, facts)
    return meta, plan, body, facts


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
  The gold also carries summary-evaluation facts, written by hand from the clean article:
  - `key_facts_ko`, `key_facts_en`: exactly five facts each, `[[str, ...], ...]`; a fact is a
    list of alternative short surface forms (a name, a stem, a number as written), any one
    of which in the Korean (resp. English) summary counts as covering it. They are what a
    faithful summary of at most 3 sentences / 300 characters must say. Forms in the
    article's own language occur in `clean_text`; the other language's are translations.
  - `forbidden`: `[str, ...]`, terms that must appear in neither summary: the injected
    spam's words (in both languages) and plausible hallucinations (people, companies,
    places, dates the article does not mention). None occurs in `clean_text` (by the
    matching below).
  Matching is case-insensitive substring search; an ASCII form must not touch an ASCII
  letter or digit on either side (a Hangul particle after `HBM` is a boundary).

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
    head = README_HEAD if SET == "dev" else INJECTIONS_HEAD + README_HEAD.replace(
        "# sift development set", "## The development set's text (its format holds here)", 1)
    lines = [head.rstrip("\n"), "",
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

    # the seed, copied as is (development set only)
    if SET == "dev":
        build_seed(built)
    build_sources(built)
    finish(built)


def build_seed(built):
    with open(SEED_DOC, "rb") as f:
        seed_doc = f.read()
    with open(SEED_GOLD, "rb") as f:
        seed_exp = json.loads(f.read().decode("utf-8"))
    seed_facts = parse_facts_text(SEED_NAME, SEED_FACTS)
    check_fact_counts(SEED_NAME, seed_facts)
    seed_gold = {"spam": [{"start": s["start"], "end": s["end"], "text": s["text"]}
                          for s in seed_exp["spam"]],
                 "clean_text": seed_exp["clean_text"], **seed_facts}
    validate(SEED_NAME, SEED_META["lang"], seed_doc, seed_gold, seed_exp["clean_text"])
    built[SEED_NAME] = (SEED_META, seed_doc, seed_gold)


def build_sources(built):
    sources = sorted(f for f in os.listdir(SOURCES) if f.endswith(".txt"))
    for fn in sources:
        meta, plan, clean, facts = parse_source(os.path.join(SOURCES, fn))
        name = meta["name"]
        if name in built:
            fail(name, "duplicate name")
        doc, char_spans = build_document(name, plan, clean)
        doc_bytes = doc.encode("utf-8")
        gold = {"spam": char_to_byte_spans(doc, char_spans), "clean_text": clean, **facts}
        validate(name, meta["lang"], doc_bytes, gold, clean)
        is_clean_meta = meta["kind"] == "clean" or meta["kind"].startswith("hard negative")
        if bool(plan) == is_clean_meta:
            fail(name, f"kind {meta['kind']!r} does not fit a plan of {len(plan)} injections")
        built[name] = (meta, doc_bytes, gold)


def finish(built):
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
        validate(name, meta["lang"], doc, disk_gold, gold["clean_text"])
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
