"""The providers table in README.md and docs/providers.md matches the registry, and the
documented examples create valid adapters and steps."""

from __future__ import annotations

import re

import pytest
from providers_table import DOCUMENTS, HEADER, block, rows, section, shipped_specs

from dripdrop.channels import CHANNELS

PROVIDERS_DOC = DOCUMENTS[1]


def _table_rows(text: str) -> dict[tuple[str, str], str]:
    """(channel, provider) → row, for the rows of the generated block."""
    generated = section(text)
    assert generated is not None, "the generated providers table block is missing"
    out = {}
    for line in generated.splitlines():
        match = re.match(r"^\| (\w+) \| `(\w+)` \|", line)
        if match:
            out[(match[1], match[2])] = line
    return out


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_every_registered_provider_is_in_the_table(path) -> None:
    text = path.read_text()
    documented = _table_rows(text)
    registered = {(s.channel, s.name) for s in shipped_specs()}
    missing = sorted(registered - set(documented))
    assert not missing, f"{path.name} lacks {missing}: run providers_table.py --write"
    unknown = sorted(set(documented) - registered)
    assert not unknown, f"{path.name} lists providers that are not registered: {unknown}"
    expected = rows()
    stale = [pair for pair, row in documented.items() if row != expected[pair]]
    assert not stale, f"{path.name}: outdated rows {stale}: run providers_table.py --write"
    assert section(text) == block()
    assert HEADER in text


def test_readme_section_is_titled() -> None:
    text = DOCUMENTS[0].read_text()
    heading = text.index("## Channels and providers")
    assert heading < text.index(section(text) or "")


def test_every_channel_has_a_documented_example() -> None:
    text = PROVIDERS_DOC.read_text()
    for channel in CHANNELS:
        assert re.search(rf"^### {channel} — ", text, re.M), f"no example for {channel}"


def _examples(path) -> list[str]:
    text = path.read_text()
    examples = text[text.index("Examples, one per channel") :]
    return re.findall(r"```python\n(.*?)```", examples, re.S)


@pytest.mark.parametrize("path", [PROVIDERS_DOC, DOCUMENTS[0]], ids=lambda p: p.name)
def test_documented_examples_create_valid_adapters_and_steps(dd, path) -> None:
    blocks = _examples(path)
    assert len(blocks) >= len(CHANNELS)
    seq = dd.create_sequence(name="Docs", key="docs")
    version = dd.create_sequence_version(seq.id, active=True)
    namespace = {"dd": dd, "version": version, "seq": seq}
    for code in blocks:
        exec(compile(code, str(path), "exec"), namespace)
    adapters = {(a.channel, a.provider) for a in dd.list_channel_adapters()}
    steps = {s.channel for s in dd.list_steps(version.id)}
    assert {c for c, _ in adapters} == set(CHANNELS)
    assert steps == set(CHANNELS)
