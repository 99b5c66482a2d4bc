"""Hostile YAML is refused, early, with a Chinese message: alias bombs, deep nesting, huge files; and the
declaration and data-map loaders raise nothing but their documented error on any text (hypothesis)."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tests.helpers import POLICIES, ROOT
from yinsi.cli.main import app
from yinsi.datamap_io import DataMapError, load_datamap, parse_datamap
from yinsi.declarations import DeclarationError, load_declaration, parse_declaration
from yinsi.yaml_guard import YamlLimitError, YamlLimits, check_yaml, limits


def billion_laughs(levels: int = 9) -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur} [{', '.join(['*' + prev] * 9)}]")
    return "\n".join(lines) + "\n"


def nested_flow(depth: int) -> str:
    return "a: " + "[" * depth + "]" * depth + "\n"


def nested_block(depth: int) -> str:
    return "".join("  " * i + f"k{i}:\n" for i in range(depth)) + "  " * depth + "x: 1\n"


def merge_bomb(levels: int = 12) -> str:
    lines = ["m0: &m0 {a: 1, b: 2}"]
    for i in range(1, levels):
        lines.append(f"m{i}: &m{i} {{x{i}: *m{i - 1}, y{i}: *m{i - 1}, z{i}: *m{i - 1}, <<: *m{i - 1}}}")
    return "\n".join(lines) + "\n"


HOSTILE = {
    "alias bomb": (billion_laughs(), "YAML 炸弹"),
    "merge-key bomb": (merge_bomb(), "YINSI_YAML_MAX"),
    "deep flow nesting": (nested_flow(100_000), "嵌套过深"),
    "deep block nesting": (nested_block(500), "嵌套过深"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_declarations_and_data_maps_are_refused_with_a_chinese_reason(name: str) -> None:
    text, reason = HOSTILE[name]
    with pytest.raises(DeclarationError, match=reason):
        parse_declaration(text, "hostile.yaml")
    with pytest.raises(DataMapError, match=reason):
        parse_datamap(text, "hostile.yaml")


def test_a_huge_file_is_refused_before_it_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YINSI_YAML_MAX_BYTES", "4096")
    big = tmp_path / "big.yaml"
    big.write_text("app:\n  name: " + "长" * 10_000 + "\n", encoding="utf-8")
    with pytest.raises(DeclarationError, match=r"文件过大.*YINSI_YAML_MAX_BYTES"):
        load_declaration(big)
    with pytest.raises(DataMapError, match="文件过大"):
        load_datamap(big)


def test_the_limits_are_configurable_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert limits({}) == YamlLimits()
    assert limits({"YINSI_YAML_MAX_DEPTH": "8"}).max_depth == 8
    with pytest.raises(YamlLimitError, match="YINSI_YAML_MAX_NODES"):
        limits({"YINSI_YAML_MAX_NODES": "many"})
    check_yaml(nested_block(20))
    monkeypatch.setenv("YINSI_YAML_MAX_DEPTH", "8")
    with pytest.raises(DeclarationError, match="超过 8 层"):
        parse_declaration(nested_block(20))
    monkeypatch.setenv("YINSI_YAML_MAX_ALIASES", "3")
    with pytest.raises(YamlLimitError, match="别名"):
        check_yaml("a: &x 1\nb: [*x, *x, *x, *x]\n")


def test_the_shipped_declarations_and_data_map_are_well_inside_the_limits() -> None:
    small = YamlLimits(max_bytes=100_000, max_depth=16, max_aliases=20, max_nodes=10_000)
    for path in [*sorted(POLICIES.glob("*.yaml")), ROOT / "examples" / "weiliaoke_app" / "datamap.yaml"]:
        check_yaml(path.read_text(encoding="utf-8"), small)


def test_policy_validate_refuses_an_alias_bomb_without_a_traceback(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(billion_laughs(), encoding="utf-8")
    result = CliRunner().invoke(app, ["policy", "validate", str(bomb)])
    assert result.exit_code != 0 and "YAML 炸弹" in result.output and "Traceback" not in result.output


# --- fuzzing ----------------------------------------------------------------------------------------

_YAML_CHARS = st.sampled_from([*string.ascii_letters, *string.digits, *" \n\t:-[]{}&*!|>'\"#%@`,?<=.\\",
                               "个人信息", "：", "\u00a0", "\ufeff", "\x00", "\x85", "\u2028"])
yamlish = st.lists(_YAML_CHARS, max_size=200).map("".join)

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20),
                    st.dates())
documents = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=10), children, max_size=4)),
    max_leaves=30,
)


def _to_yaml(doc: object) -> str:
    import io

    from ruamel.yaml import YAML

    out = io.StringIO()
    YAML(typ="safe", pure=True).dump(doc, out)
    return out.getvalue()


def _seed_mutations() -> st.SearchStrategy[str]:
    seed = (POLICIES / "weiliaoke-2022.yaml").read_text(encoding="utf-8")
    lines = seed.splitlines(keepends=True)
    return st.tuples(st.integers(0, len(lines)), st.integers(0, 40), yamlish).map(
        lambda t: "".join(lines[: t[0]]) + t[2] + "".join(lines[t[0] + t[1]:]))


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.one_of(yamlish, documents.map(_to_yaml), _seed_mutations()))
def test_declaration_loader_raises_only_its_error(text: str) -> None:
    try:
        parse_declaration(text, "fuzz.yaml")
    except DeclarationError as exc:
        assert exc.problems and all(p.message for p in exc.problems)


@FUZZ
@given(st.one_of(yamlish, documents.map(_to_yaml)))
def test_data_map_loader_raises_only_its_error(text: str) -> None:
    try:
        parse_datamap(text, "fuzz.yaml")
    except DataMapError as exc:
        assert exc.problems
