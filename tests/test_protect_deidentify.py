"""Normalisation for blind indexes, Argon2id, generalisation, the statistics release and their CLI."""

from __future__ import annotations

import base64
import json
import math
import os
import random
import statistics
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from yinsi.cli.main import app
from yinsi.protect.blind_index import compute_blind_index, normalise
from yinsi.protect.crypto import MacAlgorithm
from yinsi.protect.errors import InvalidIdentifier
from yinsi.protect.generalise import (
    age_band,
    age_on,
    birth_date_to_band,
    birth_year,
    city_of,
    province_of,
    round_coordinates,
)
from yinsi.protect.passwords import (
    CODE_HASHER,
    PASSWORD_HASHER,
    hash_password,
    needs_rehash,
    new_one_time_code,
    verify_one_time_code,
    verify_password,
)
from yinsi.protect.pseudonyms import compute_pseudonym
from yinsi.protect.stats import Cell, StatsError, discrete_laplace, release_counts

pytestmark = pytest.mark.usefixtures("isolated_env")


# --- normalisation ----------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["13800138000", "+86 138 0013 8000", "0086-138-0013-8000", "86 13800138000",
                                 "１３８－００１３－８０００", "+８６ 13800138000"])
def test_phone_variants_normalise_alike(raw: str) -> None:
    assert normalise("mobile_phone", raw) == "13800138000"


@pytest.mark.parametrize("raw", ["", "12345", "23800138000", "138001380001", "+1 415 555 0100"])
def test_invalid_phones_are_refused_without_echoing_them(raw: str) -> None:
    with pytest.raises(InvalidIdentifier) as info:
        normalise("phone", raw)
    assert not raw.strip() or raw not in str(info.value)


def test_id_card_normalisation() -> None:
    assert normalise("id_card", "11010519491231002x") == "11010519491231002X"
    assert normalise("id_card", "110105 19491231 002X") == "11010519491231002X"
    assert normalise("id_card", "110105491231002") == "11010519491231002X"  # 15 → 18 digits
    with pytest.raises(InvalidIdentifier):
        normalise("id_card", "1101051949123100")


def test_other_kinds() -> None:
    assert normalise("email", "  Li.Si@Example.CN ") == "li.si@example.cn"
    assert normalise("bank_card", "6222 0202 0000 0000 001") == "6222020200000000001"
    assert normalise("passport", "e 1234 5678") == "E12345678"
    assert normalise("text", "  张  三 ") == "张 三"
    for kind, bad in (("email", "no-at-sign"), ("email", "a@b@c"), ("bank_card", "1234"), ("text", "   ")):
        with pytest.raises(InvalidIdentifier):
            normalise(kind, bad)


def test_index_and_pseudonym_functions_are_keyed() -> None:
    k1, k2 = os.urandom(32), os.urandom(32)
    for mac in MacAlgorithm:
        a = compute_blind_index(mac, k1, "phone", "13800138000")
        assert a == compute_blind_index(mac, k1, "mobile_phone", "+86 13800138000")
        assert a != compute_blind_index(mac, k2, "phone", "13800138000")
        assert len(a) == 32
        assert compute_pseudonym(mac, k1, "u1") != compute_pseudonym(mac, k2, "u1")
    assert compute_blind_index(MacAlgorithm.HMAC_SHA256, k1, "phone", "13800138000") != \
        compute_blind_index(MacAlgorithm.HMAC_SM3, k1, "phone", "13800138000")


# --- Argon2id ---------------------------------------------------------------------------------------


def _phc_parts(stored: str) -> tuple[str, bytes, bytes]:
    _, _variant, _version, params, salt, digest = stored.split("$")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return params, base64.b64decode(pad(salt)), base64.b64decode(pad(digest))


def test_passwords_hash_with_explicit_argon2id_parameters() -> None:
    stored = hash_password("correct horse battery staple 密码")
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert "correct horse" not in stored and "密码" not in stored
    assert verify_password(stored, "correct horse battery staple 密码")
    assert not verify_password(stored, "correct horse battery staple")
    assert hash_password("same") != hash_password("same")  # salted
    assert not needs_rehash(stored)
    weaker = CODE_HASHER.hash("x")
    assert needs_rehash(weaker)
    assert PASSWORD_HASHER.type.name == "ID"


def test_one_time_codes_verify_and_never_contain_the_code() -> None:
    code, stored = new_one_time_code()
    assert len(code) == 6 and code.isdigit()
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    params, salt, digest = _phc_parts(stored)
    assert code.encode() not in salt + digest and code not in params
    assert verify_one_time_code(stored, code)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    assert not verify_one_time_code(stored, wrong)
    assert len(new_one_time_code(8)[0]) == 8
    with pytest.raises(ValueError):
        new_one_time_code(2)


def test_malformed_hashes_fail_loudly() -> None:
    from argon2.exceptions import InvalidHashError

    with pytest.raises(InvalidHashError):
        verify_password("not a hash", "x")
    with pytest.raises(ValueError):
        hash_password("")
    with pytest.raises(TypeError):
        hash_password(b"bytes")  # type: ignore[arg-type]


# --- generalisation ---------------------------------------------------------------------------------


def test_age_bands() -> None:
    assert [age_band(a) for a in (0, 13, 14, 17, 18, 24, 25, 34, 64, 65, 101)] == [
        "0-13", "0-13", "14-17", "14-17", "18-24", "18-24", "25-34", "25-34", "55-64", "65+", "65+"]
    assert age_band(30, bounds=(0, 18, 60)) == "18-59"
    with pytest.raises(ValueError):
        age_band(-1)
    with pytest.raises(ValueError):
        age_band(20, bounds=(5, 10))
    with pytest.raises(ValueError):
        age_band(20, bounds=(0, 30, 30))


def test_birth_dates() -> None:
    today = date(2024, 3, 1)
    assert age_on(date(2010, 3, 1), today) == 14 and age_on(date(2010, 3, 2), today) == 13
    assert age_on(date(2008, 2, 29), date(2024, 2, 28)) == 15
    assert birth_date_to_band(date(2010, 3, 2), today) == "0-13"
    assert birth_date_to_band(date(1990, 6, 1), today) == "25-34"
    assert birth_year(date(1990, 6, 1)) == 1990
    with pytest.raises(ValueError):
        age_on(date(2030, 1, 1), today)


@pytest.mark.parametrize(("address", "city"), [
    ("广东省深圳市南山区科技园", "深圳市"),
    ("中国浙江省杭州市西湖区文三路 90 号", "杭州市"),
    ("浙江杭州市西湖区", "杭州市"),
    ("北京市朝阳区建国路 88 号", "北京市"),
    ("上海市浦东新区", "上海市"),
    ("江苏省苏州市昆山市玉山镇", "苏州市"),
    ("新疆维吾尔自治区伊犁哈萨克自治州伊宁市", "伊犁哈萨克自治州"),
    ("内蒙古自治区锡林郭勒盟锡林浩特市", "锡林郭勒盟"),
    ("西藏自治区阿里地区", "阿里地区"),
    ("吉林市船营区", "吉林市"),
    ("香港特别行政区九龙", "香港特别行政区"),
    ("西湖区文三路超市", None),
    ("南山区科技园", None),
    ("", None),
])
def test_city_of_address(address: str, city: str | None) -> None:
    assert city_of(address) == city


def test_province_of_address() -> None:
    assert province_of("广东深圳") == "广东省"
    assert province_of("广西壮族自治区南宁市") == "广西壮族自治区"
    assert province_of("某地") is None


def test_coordinates_snap_to_cell_centres() -> None:
    cell = round_coordinates(39.90872, 116.39748)
    assert (cell.lat, cell.lon, cell.size) == (39.905, 116.395, 0.01)
    assert round_coordinates(39.9001, 116.3901) == round_coordinates(39.9099, 116.3999)
    assert round_coordinates(39.9101, 116.39).lat != cell.lat
    assert round_coordinates(-33.8688, 151.2093, 0.1).lat == -33.85
    assert round_coordinates(22.54321, 114.05678, 0.001).lat == 22.5435
    with pytest.raises(ValueError):
        round_coordinates(91, 0)
    with pytest.raises(ValueError):
        round_coordinates(0, 0, 0)


# --- statistics release -----------------------------------------------------------------------------


def _rows() -> list[dict[str, str]]:
    rows = [{"city": "深圳市", "sex": "女"}] * 25 + [{"city": "深圳市", "sex": "男"}] * 12
    rows += [{"city": "杭州市", "sex": "女"}] * 9 + [{"city": "拉萨市", "sex": "男"}] * 2
    return rows


def test_cells_below_k_are_suppressed() -> None:
    release = release_counts(_rows(), ["city", "sex"])
    assert release.cells == [Cell(("深圳市", "女"), 25), Cell(("深圳市", "男"), 12)]
    assert release.suppressed == 2
    assert release_counts(_rows(), ["city"], k=10).cells == [Cell(("深圳市",), 37)]
    assert len(release_counts(_rows(), ["city"], k=1).cells) == 3
    data = release.to_dict()
    assert data["cells"][0] == {"group": {"city": "深圳市", "sex": "女"}, "count": 25}
    assert data["suppressed_groups"] == 2 and data["noise"] is None
    assert "total" not in data  # a total would give the hidden cells away


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(StatsError, match="没有列：age"):
        release_counts(_rows(), ["city", "age"])
    with pytest.raises(StatsError):
        release_counts(_rows(), [])
    with pytest.raises(StatsError):
        release_counts(_rows(), ["city"], k=0)
    with pytest.raises(StatsError):
        release_counts(_rows(), ["city"], epsilon=0)
    with pytest.raises(StatsError):
        release_counts(_rows(), ["city"], epsilon=math.inf)


def test_noise_is_seedable_and_integer() -> None:
    a = release_counts(_rows(), ["city", "sex"], k=1, epsilon=1.0, rng=random.Random(7))
    b = release_counts(_rows(), ["city", "sex"], k=1, epsilon=1.0, rng=random.Random(7))
    assert a == b and all(isinstance(c.count, int) and c.count >= 0 for c in a.cells)
    assert a.to_dict()["noise"] == {"mechanism": "discrete_laplace", "epsilon": 1.0, "sensitivity": 1, "scale": 1.0}


@pytest.mark.parametrize("epsilon", [0.5, 1.0, 2.0])
def test_noise_is_calibrated_to_one_over_epsilon(epsilon: float) -> None:
    """Discrete Laplace with scale 1/ε: mean 0, P(X=0) = tanh(ε/2), variance 2α/(1-α)², α = e^-ε."""
    rng = random.Random(12345)
    draws = [discrete_laplace(epsilon, rng) for _ in range(40_000)]
    alpha = math.exp(-epsilon)
    variance = 2 * alpha / (1 - alpha) ** 2
    assert abs(statistics.fmean(draws)) < 4 * math.sqrt(variance / len(draws))
    assert statistics.pvariance(draws) == pytest.approx(variance, rel=0.05)
    assert draws.count(0) / len(draws) == pytest.approx(math.tanh(epsilon / 2), abs=0.01)
    assert sum(d > 0 for d in draws) == pytest.approx(sum(d < 0 for d in draws), rel=0.05)


def test_noisy_suppression_uses_the_noisy_count() -> None:
    rows = [{"g": "a"}] * 10
    shown = {release_counts(rows, ["g"], k=10, epsilon=0.5, rng=random.Random(s)).suppressed for s in range(200)}
    assert shown == {0, 1}  # a cell at exactly k is sometimes hidden once noise is on


# --- CLI --------------------------------------------------------------------------------------------


def _csv(tmp_path: Path, encoding: str = "utf-8-sig") -> Path:
    lines = ["城市,性别,年龄,地址"]
    lines += ["深圳市,女,23,广东省深圳市南山区"] * 12 + ["深圳市,男,41,广东省深圳市福田区"] * 11
    lines += ["杭州市,女,30,浙江省杭州市西湖区"] * 3
    path = tmp_path / "users.csv"
    path.write_text("\n".join(lines) + "\n", encoding=encoding)
    return path


def test_cli_stats_table_in_chinese(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["stats", str(_csv(tmp_path)), "--group-by", "城市,性别"])
    assert result.exit_code == 0, result.output
    assert "人数" in result.stdout and "深圳市" in result.stdout and "杭州市" not in result.stdout
    assert "已隐藏 1 个人数少于 10 的分组" in result.stdout and "未加噪声" in result.stdout


def test_cli_stats_json_with_generalisation(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["stats", str(_csv(tmp_path)), "--group-by", "地址,年龄", "--city", "地址",
                                      "--age-band", "年龄", "--k", "3", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["cells"] == [
        {"group": {"地址": "杭州市", "年龄": "25-34"}, "count": 3},
        {"group": {"地址": "深圳市", "年龄": "18-24"}, "count": 12},
        {"group": {"地址": "深圳市", "年龄": "35-44"}, "count": 11},
    ]
    assert data["k"] == 3 and data["suppressed_groups"] == 0


def test_cli_stats_noise(tmp_path: Path) -> None:
    args = ["stats", str(_csv(tmp_path)), "--group-by", "城市", "--noise", "laplace", "--epsilon", "0.5",
            "--seed", "3", "--json"]
    first, second = CliRunner().invoke(app, args), CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout) == json.loads(second.stdout)
    assert json.loads(first.stdout)["noise"]["epsilon"] == 0.5
    assert "固定的随机种子" in first.stderr
    plain = CliRunner().invoke(app, ["stats", str(_csv(tmp_path)), "--group-by", "城市", "--noise", "laplace"])
    assert plain.exit_code == 0 and "ε=1" in plain.stdout


def test_cli_stats_errors(tmp_path: Path) -> None:
    path = _csv(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["stats", str(path), "--group-by", "城市,收入"])
    assert result.exit_code == 2 and "没有列：收入" in result.stderr
    result = runner.invoke(app, ["stats", str(path), "--group-by", "城市", "--epsilon", "1"])
    assert result.exit_code == 2 and "--noise laplace" in result.stderr
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes("城市\n深圳市\n".encode("gb18030"))
    result = runner.invoke(app, ["stats", str(gbk), "--group-by", "城市"])
    assert result.exit_code == 2 and "gb18030" in result.stderr
    ok = runner.invoke(app, ["stats", str(gbk), "--group-by", "城市", "--encoding", "gb18030", "--k", "1", "--json"])
    assert ok.exit_code == 0 and json.loads(ok.stdout)["cells"][0]["count"] == 1


def test_cli_keys_init_create_list(tmp_path: Path, isolated_env: Path) -> None:
    from datetime import UTC, datetime

    from yinsi.storage import Tenant, make_engine, make_session_factory, upgrade

    url = f"sqlite:///{tmp_path / 'k.db'}"
    upgrade(url)
    engine = make_engine(url)
    with make_session_factory(engine)() as session, session.begin():
        session.add(Tenant(id="demo", name="演示", created_at=datetime(2024, 1, 1, tzinfo=UTC)))
    engine.dispose()
    runner = CliRunner()
    result = runner.invoke(app, ["keys", "create", "demo", "--url", url])
    assert result.exit_code == 1 and "yinsi keys init" in result.stderr
    result = runner.invoke(app, ["keys", "init"])
    assert result.exit_code == 0 and "master.key" in result.stdout and (isolated_env / "master.key").exists()
    assert runner.invoke(app, ["keys", "init"]).exit_code == 1
    result = runner.invoke(app, ["keys", "create", "demo", "--suite", "sm", "--url", url])
    assert result.exit_code == 0 and "sm" in result.stdout
    result = runner.invoke(app, ["keys", "create", "nobody", "--url", url])
    assert result.exit_code == 1 and "租户 nobody 不存在" in result.stderr
    listed = json.loads(runner.invoke(app, ["keys", "list", "demo", "--url", url, "--json"]).stdout)
    assert {(k["purpose"], k["algorithm"], k["status"]) for k in listed} == {
        ("data", "sm4-gcm", "active"), ("index", "hmac-sm3", "active"), ("pseudonym", "hmac-sm3", "active")}
    assert all("wrapped" not in json.dumps(k) for k in listed)
    table = runner.invoke(app, ["keys", "list", "--url", url])
    assert table.exit_code == 0 and "字段加密" in table.stdout and "使用中" in table.stdout


def test_cli_keys_algorithms() -> None:
    result = CliRunner().invoke(app, ["keys", "algorithms", "--json"])
    assert result.exit_code == 0
    info = json.loads(result.stdout)
    assert info["algorithms"]["sm4-gcm"] is True and info["sm_suite_field_algorithm"] == "sm4-gcm"
    assert "OpenSSL" in info["openssl"]
