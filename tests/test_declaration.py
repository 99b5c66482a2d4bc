"""Loading declarations: valid files load; invalid ones fail with file, line and path."""

from __future__ import annotations

import pytest

from tests.helpers import MINIMAL, minimal, minimal_text
from yinsi.declarations import DeclarationError, load_declaration, parse_declaration


def test_minimal_declaration_loads_with_sources_filled_from_the_source_file() -> None:
    d = load_declaration(MINIMAL)
    assert d.tenant == "demo"
    assert d.collected_items() == ["contact.mobile", "biometric.face"]
    assert all(src.file == "minimal.txt" for _, src in d.iter_sources())


def test_unknown_pi_item_is_reported_with_its_line_and_element_path() -> None:
    text = minimal_text().replace("item: biometric.face, required", "item: biometric.faec, required")
    with pytest.raises(DeclarationError) as exc:
        parse_declaration(text, "x.yaml")
    [problem] = exc.value.problems
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "biometric.faec" in t)
    assert (problem.file, problem.line) == ("x.yaml", line)
    assert problem.path == "features[face_verify].collections[0].item"
    assert "biometric.faec" in problem.message


def test_bad_enum_value_names_the_field() -> None:
    with pytest.raises(DeclarationError) as exc:
        minimal(("kind: extended", "kind: optional"))
    assert exc.value.problems[0].path == "features[face_verify].kind"


def test_unknown_key_is_an_error_not_silently_ignored() -> None:
    with pytest.raises(DeclarationError) as exc:
        minimal(("    purposes: [注册账号]", "    purposes: [注册账号]\n    purpose_typo: x"))
    assert any("purpose_typo" in p.path for p in exc.value.problems)


def test_source_without_quote_must_be_marked_silent_with_a_note() -> None:
    with pytest.raises(DeclarationError) as exc:
        minimal(("source: {silent: true, note: 未写明办公地址}", "source: {section: 引言}"))
    assert "quote" in str(exc.value)
    with pytest.raises(DeclarationError):
        minimal(("source: {silent: true, note: 未写明办公地址}", "source: {silent: true}"))


def test_feature_referring_to_an_undeclared_sdk_is_an_error() -> None:
    with pytest.raises(DeclarationError) as exc:
        minimal(("    separate_consent: true", "    separate_consent: true\n    sdks: [ghost_sdk]"))
    assert "ghost_sdk" in str(exc.value)


def test_yaml_syntax_error_names_the_line() -> None:
    with pytest.raises(DeclarationError) as exc:
        parse_declaration("tenant: demo\napp: [unclosed\n", "broken.yaml")
    assert exc.value.problems[0].line is not None
    assert "YAML" in exc.value.problems[0].message


def test_missing_file_is_a_declaration_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DeclarationError):
        load_declaration(tmp_path / "nope.yaml")
