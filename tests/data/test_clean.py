"""Cleaning on real text: a shipped speech that is not UTF-8, mojibake, an HTML page, emoji, boilerplate, PII."""

from fromscratch.data.clean import (CleanArguments, clean_batch, clean_text, emoji_to_text, fix_mojibake,
                                    remove_boilerplate, scrub_pii, strip_markup)
from fromscratch.sources import Lineage, decode, embedded_path

ARGS = CleanArguments()


def _read_speech(name: str) -> str:
    lineage = Lineage("s", "r", "h")
    text = decode((embedded_path("us_speeches") / "state_union" / name).read_bytes(), name, lineage)
    assert lineage.repaired_lines and all(w.startswith(f"{name}:") for w in lineage.repaired_encoding)  # per line
    return text


def test_speech_with_big5_punctuation_is_repaired():
    raw = _read_speech("1970-Nixon.txt")
    assert "man¡¦s genius" in raw and "¡X" in raw  # what cp1252 makes of its Big5 apostrophes and dashes
    text = clean_text(raw, ARGS)
    assert "man’s genius" in text and "¡" not in text and "\u2014" in text
    assert len(text) > 0.95 * len(raw)  # nothing else lost


def test_latin1_speech_keeps_its_characters():
    raw = _read_speech("1954-Eisenhower.txt")
    assert "½¢" in raw  # a genuine Latin-1 half-cent sign, read correctly by the loader's cp1252 fallback
    text = clean_text(raw, ARGS)
    assert "\ufffd" not in text and "¢" in text


def test_utf8_read_as_cp1252_is_undone():
    original = "The café served crème brûlée — it’s “good”"
    # read as cp1252 (0x9D, undefined there, left as U+009D as decoders do) and as Latin-1
    assert fix_mojibake("The cafÃ© served crÃ¨me brÃ»lÃ©e â€” itâ€™s â€œgoodâ€\x9d") == original
    assert fix_mojibake(original.encode("utf-8").decode("latin-1")) == original
    assert fix_mojibake("¿Dónde está el niño?") == "¿Dónde está el niño?"  # real Latin-1 text is left alone


HTML = """<!DOCTYPE html><html><head><title>Inaugural</title><style>p { color: red; }</style>
<script>var tracking = "x";</script></head><body>
<nav><a href="/">Home</a></nav>
<h1>First Inaugural Address</h1><p>Fellow-Citizens of the Senate &amp; of the House of Representatives:</p>
<p>Among the vicissitudes incident to life&nbsp;no event could have filled me with greater anxieties.<br>
It was &#8220;the voice of my country&#8221;.</p><!-- footer -->
<div class="footer">Copyright 2024. All rights reserved.</div></body></html>"""


def test_html_page_becomes_text():
    text = clean_text(HTML, ARGS)
    assert "<" not in text and "color" not in text and "tracking" not in text and "footer" not in text
    assert "Fellow-Citizens of the Senate & of the House of Representatives:" in text
    assert "\u201cthe voice of my country\u201d" in text
    assert "All rights reserved" not in text  # boilerplate line
    assert "First Inaugural Address\n" in text  # block tags became line breaks


def test_wiki_markup_and_plain_text_untouched():
    assert strip_markup("the [[United States|U.S.]] {{citation needed}} Senate") == "the U.S.  Senate"
    plain = "If x < 3 and y > 4, then R&D wins."
    assert strip_markup(plain) == plain  # comparisons and ampersands are not markup


def test_emoji_become_their_names():
    line = "Four score and seven years ago 🇺🇸👍🏽 😀 ❤️"
    text = clean_text(line, ARGS)
    assert text == "Four score and seven years ago :flag_us: :thumbs_up_sign: :grinning_face: :heavy_black_heart:"
    assert emoji_to_text("no emoji here") == "no emoji here"


def test_unicode_control_and_whitespace():
    text = clean_text("\ufeffThe \ufb01rst\u200b  line\x00\t here  \r\n\r\n\r\n\r\nＦｕｌｌ width\x85 ", ARGS)
    assert text == "The first line here\n\nFull width"


def test_boilerplate_only_short_lines():
    text = "Real prose about cookies and baking that goes on " + "and on " * 20 + ".\nAccept cookie settings"
    kept, dropped = remove_boilerplate(text, ["cookie"], 20)
    assert dropped == 1 and kept.startswith("Real prose")


def test_pii_scrubbing():
    text = scrub_pii("Write to jane.doe@example.org or call (555) 123-4567 from 192.168.0.12, year 1999.")
    assert text == "Write to <EMAIL> or call <PHONE> from <IP>, year 1999."
    assert clean_text("mail me at a@b.com", ARGS) == "mail me at a@b.com"  # off by default
    assert clean_text("mail me at a@b.com", CleanArguments(scrub_pii=True)) == "mail me at <EMAIL>"


def test_batch_counts_changes_and_drops_empty():
    texts, reasons, changed = clean_batch(["<p></p>", "plain text", "caf&eacute; <b>x</b>"], ARGS)
    assert reasons == ["empty after cleaning", "", ""]
    assert changed[1] == [] and "markup stripped" in changed[2] and texts[2] == "café x"
