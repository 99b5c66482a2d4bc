"""Reading a published privacy-policy text: structure, defects, conflicts with the law, a declaration draft.

``analyze_text(text, file)`` returns the findings of one decoded text; ``read_policy(path)`` decodes a
``.txt``/``.md``/``.html``/``.docx`` file; ``draft_declaration`` and ``compare_with_declaration`` build on
the same reading. Every finding's ``quote`` is ``text[start:end]`` of the decoded text as read.
"""

from yinsi.analyze.findings import Finding, analyze_text
from yinsi.analyze.text import PolicyText, read_policy

__all__ = ["Finding", "PolicyText", "analyze_text", "read_policy"]
