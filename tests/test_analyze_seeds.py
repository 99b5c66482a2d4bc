"""The analyzer on the five seed policies: the defects a reviewer finds in each (bench/analyzer/seed_defects.yaml,
each quoted from the seed) that the analyzer must keep finding, no unlisted findings beyond the few known, and
drafts that validate and quote their seed verbatim. The CAPP-130 part runs only when the corpus has been
copied into bench/.cache/capp130 (bench/analyzer/fetch_capp130.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import yaml

from yinsi.analyze import analyze_text, read_policy
from yinsi.analyze.draft import draft_declaration, dump_yaml
from yinsi.declarations import parse_declaration
from yinsi.faithfulness import check_quotes, seeds_dir

ROOT = Path(__file__).resolve().parents[1]
SPEC = yaml.safe_load((ROOT / "bench" / "analyzer" / "seed_defects.yaml").read_text(encoding="utf-8"))
SEEDS = seeds_dir()
pytestmark = pytest.mark.skipif(not SEEDS.exists(), reason="seed texts not present")

# Defects of the reviewer's list that the analyzer does not find yet (they count against its recall).
NOT_FOUND = {
    "000_51cda0074f963f81.txt": {"missing-word-register", "missing-verb-payment", "garbled-unbind",
                                 "ecommerce-law-basis"},
    "001_e383b894e962d440.txt": {"withdraw-all"},
    "002_354a836bcbc6444c.txt": {"typo-shenpi", "garbled-avatar"},
    "003_77f6f0ee6f307972.txt": {"ecommerce-law-basis"},
    "004_50d9d2426c054610.txt": {"wrong-cross-reference", "typo-chengben"},
}
# Findings that match no listed defect (false findings), by seed: (line, kind).
KNOWN_FALSE = {"001_e383b894e962d440.txt": {(65, "page_break_split")}}


def _bench():
    spec = importlib.util.spec_from_file_location("seeds_bench", ROOT / "bench" / "analyzer" / "seeds.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["seeds_bench"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("seed", sorted(SPEC))
def test_reviewer_defects_are_found(seed):
    bench = _bench()
    result = bench.evaluate(SEEDS, {seed: SPEC[seed]})
    row = result["seeds"][0]
    assert set(row["missed"]) == NOT_FOUND[seed]
    assert {(int(x.split(":")[0]), x.split(":")[1]) for x in row["false"]} == KNOWN_FALSE.get(seed, set())


def test_totals_meet_the_targets():
    result = _bench().evaluate(SEEDS, SPEC)
    assert result["recall"] >= 0.80
    assert result["precision"] >= 0.90


@pytest.mark.parametrize("seed", sorted(SPEC))
def test_every_listed_quote_is_in_its_seed_and_findings_quote_the_text(seed):
    text = read_policy(SEEDS / seed)
    bench = _bench()
    for d in SPEC[seed]:
        for q in ([] if d.get("missing") else d["quote"] if isinstance(d["quote"], list) else [d["quote"]]):
            assert bench.locate(text, q) is not None, q
    for f in analyze_text(text, seed):
        assert f.quote == text[f.start:f.end]


@pytest.mark.parametrize("seed", sorted(SPEC))
def test_draft_of_each_seed_validates_and_quotes_it(seed):
    text = read_policy(SEEDS / seed)
    draft = draft_declaration(text, seed)
    decl = parse_declaration(dump_yaml(draft), f"{seed}.yaml")
    assert decl.features and decl.controller.legal_name.value
    assert check_quotes(decl, {seed: text}) == []


def test_traditional_seed_reads_its_operator_in_its_own_characters():
    text = read_policy(SEEDS / "002_354a836bcbc6444c.txt")
    decl = parse_declaration(dump_yaml(draft_declaration(text, "002_354a836bcbc6444c.txt")), "d.yaml")
    assert decl.controller.legal_name.value == "北京吉客安家信息技術有限公司"
    assert decl.response_time.days == 30


CAPP = ROOT / "bench" / ".cache" / "capp130" / "CAPP_130_Corpus" / "Subdataset" / "Extraction" / "topic_identification_dataset"


@pytest.mark.skipif(not CAPP.exists(), reason="CAPP-130 not copied into bench/.cache/capp130")
def test_capp130_split_loads_with_eleven_topics():
    pytest.importorskip("sklearn")
    spec = importlib.util.spec_from_file_location("capp_topics", ROOT / "bench" / "analyzer" / "capp130_topics.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    texts, labels = mod.load("dev")
    assert len(texts) == labels.shape[0] > 1000
    assert labels.shape[1] == 11
