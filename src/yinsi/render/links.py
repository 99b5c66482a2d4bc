"""Rule IDs in HTML output link to the rule catalogue (``/api/v1/rules/<id>``)."""

from __future__ import annotations

from markupsafe import Markup, escape

from yinsi import rules


def rule_links(text: object) -> Markup:
    """``text`` HTML-escaped, with every catalogue rule ID in it made a link to the rule's page.

    ``rule_links("拒绝（C4）")`` → ``拒绝（<a class="rule" href="/api/v1/rules/C4" title="单独同意">C4</a>）``; IDs
    that are not in the catalogue stay plain text. In templates: ``{{ reason|rule_links }}``.
    """
    source = str(text)
    out: list[str] = []
    pos = 0
    for m in rules.RULE_ID_IN_TEXT.finditer(source):
        rule = rules.get(m.group(1))
        if rule is None:
            continue
        out.append(escape(source[pos:m.start()]))
        out.append(Markup('<a class="rule" href="{}" title="{}">{}</a>').format(rule.url_path, rule.title_zh, rule.id))
        pos = m.end()
    out.append(escape(source[pos:]))
    return Markup("").join(out)
