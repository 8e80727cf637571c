"""Compare the two MJML compilers on PyPI: ``mrml`` (Rust port) and ``mjml`` (pure Python port).

Run: ``python bench/mjml_choice.py [runs]``. For each library it prints the median compile time of
a realistic ~60-line onboarding email, whether the output is an HTML document that still holds the
content, and whether a malformed document (an unclosed ``<mj-section>``) is reported as an error.
A library that is not installed is reported as such (``pip install mjml`` to compare).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from html.parser import HTMLParser

EMAIL = """\
<mjml>
  <mj-head>
    <mj-title>Welcome to Acme</mj-title>
    <mj-preview>Three steps to get your workspace running</mj-preview>
    <mj-attributes>
      <mj-all font-family="Helvetica, Arial, sans-serif" />
      <mj-text font-size="15px" line-height="22px" color="#333333" />
    </mj-attributes>
    <mj-style inline="inline">.cta a { text-decoration: none; }</mj-style>
  </mj-head>
  <mj-body background-color="#f4f4f7">
    <mj-section padding="24px 0">
      <mj-column>
        <mj-image width="120px" src="https://cdn.example.com/logo.png" alt="Acme" />
      </mj-column>
    </mj-section>
    <mj-section background-color="#ffffff" padding="32px 24px">
      <mj-column>
        <mj-text font-size="22px" font-weight="bold">Hi Ada, welcome aboard!</mj-text>
        <mj-text>
          Your workspace <strong>Analytical Engines</strong> is ready. Here is how teams
          like yours get value in their first week:
        </mj-text>
        <mj-text>
          <ul>
            <li>Invite your teammates</li>
            <li>Connect your first data source</li>
            <li>Schedule a weekly report</li>
          </ul>
        </mj-text>
        <mj-button css-class="cta" background-color="#4f46e5" href="https://app.example.com/start">
          Open my workspace
        </mj-button>
        <mj-divider border-color="#e5e7eb" />
      </mj-column>
    </mj-section>
    <mj-section background-color="#ffffff" padding="0 24px 24px">
      <mj-column width="50%">
        <mj-text font-weight="bold">Guides</mj-text>
        <mj-text>Step-by-step tutorials for every integration.</mj-text>
      </mj-column>
      <mj-column width="50%">
        <mj-text font-weight="bold">Support</mj-text>
        <mj-text>Reply to this email: a human answers within a day.</mj-text>
      </mj-column>
    </mj-section>
    <mj-section padding="16px 24px">
      <mj-column>
        <mj-social mode="horizontal" icon-size="20px">
          <mj-social-element name="github" href="https://github.com/example">GitHub</mj-social-element>
          <mj-social-element name="linkedin" href="https://linkedin.com/company/example">
            LinkedIn
          </mj-social-element>
        </mj-social>
        <mj-text font-size="12px" color="#9ca3af" align="center">
          Acme Inc, 1 Main Street. <a href="https://app.example.com/unsubscribe">Unsubscribe</a>
        </mj-text>
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>
"""
MALFORMED = "<mjml><mj-body><mj-section><mj-column><mj-text>Hi</mj-text>"
MUST_CONTAIN = ("Hi Ada, welcome aboard!", "Open my workspace", "Unsubscribe", "<table")


class _TagCounter(HTMLParser):
    """Counts start tags; a parse of real HTML should find html, body and tables."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: dict[str, int] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] = self.tags.get(tag, 0) + 1


def _compilers() -> dict[str, Callable[[str], str] | None]:
    found: dict[str, Callable[[str], str] | None] = {}
    try:
        import mrml

        found["mrml"] = lambda src: mrml.to_html(src).content
    except ImportError:
        found["mrml"] = None
    try:
        import mjml

        found["mjml (python)"] = lambda src: mjml.mjml_to_html(src).html
    except ImportError:
        found["mjml (python)"] = None
    return found


def _check(html: str) -> str:
    parser = _TagCounter()
    parser.feed(html)
    missing = [text for text in MUST_CONTAIN if text not in html]
    ok = html.lstrip().lower().startswith("<!doctype html") and {"html", "body"} <= set(parser.tags)
    verdict = "valid HTML" if ok and not missing else f"PROBLEM (missing {missing})"
    return f"{verdict}, {parser.tags.get('table', 0)} tables, {len(html)} chars"


def _rejects_malformed(compile_: Callable[[str], str]) -> str:
    try:
        compile_(MALFORMED)
    except Exception as exc:
        return f"yes ({type(exc).__name__}: {exc})"
    return "no (compiled silently)"


def main(runs: int = 200) -> None:
    """Print the median compile time, output check and malformed handling of each library."""
    print(f"MJML email: {len(EMAIL.splitlines())} lines; {runs} runs each")
    for name, compile_ in _compilers().items():
        if compile_ is None:
            print(f"{name:14} not installed")
            continue
        try:
            compile_(EMAIL)  # warm up imports and caches
        except Exception as exc:  # e.g. mjml's optional css_inline for <mj-style inline>
            print(f"{name:14} cannot compile the email: {type(exc).__name__}: {exc}")
            continue
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            html = compile_(EMAIL)
            times.append(time.perf_counter() - start)
        median_ms = statistics.median(times) * 1000
        print(f"{name:14} median {median_ms:8.3f} ms | {_check(html)}")
        print(f"{'':14} rejects malformed: {_rejects_malformed(compile_)}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
