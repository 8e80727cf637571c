"""The shortcuts taken for plain email bodies and bare addresses answer exactly as the full
parsers do."""

from __future__ import annotations

from email.utils import getaddresses

from hypothesis import given, settings
from hypothesis import strategies as st

from dripdrop.channels import emailfmt
from dripdrop.channels.providers._email import addresses


def _parsed_text(html: str) -> str:
    parser = emailfmt._TextExtractor()
    parser.feed(html)
    parser.close()
    lines = [line.strip() for line in "".join(parser.parts).split("\n")]
    return emailfmt.re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="<&"), max_size=80))
def test_a_body_without_tags_or_entities_reads_as_the_parser_reads_it(body: str) -> None:
    assert emailfmt.html_to_text(body) == _parsed_text(body)


@settings(max_examples=500, deadline=None)
@given(
    st.from_regex(r"[A-Za-z0-9._%+\-]{1,12}@[A-Za-z0-9.\-]{1,12}", fullmatch=True)
    | st.text(max_size=30)
)
def test_a_bare_address_is_taken_as_getaddresses_takes_it(value: str) -> None:
    expected = [f"{n} <{a}>" if n else a for n, a in getaddresses([value]) if a] if value else []
    assert addresses(value) == expected
