"""The catalogue in data/ against the official lists, the counter registry it needs, and the loader's
answer to broken data.

The expected values are an independent copy of the sources: the untangled licence list
(川办便函〔2022〕260号, row by row) and the 95 items of 川办发〔2020〕67号, parsed here from their text.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from verifier.adapters.catalogue_files import load_catalogue
from verifier.core.catalogue import (
    PROVINCE_CODES,
    PROVINCES,
    Catalogue,
    Counter,
    LicenceType,
    city_division,
    district_division,
    province_division,
)
from verifier.core.catalogue_view import counters_document
from verifier.errors import CatalogueError

DATA = Path(__file__).resolve().parents[2] / "data"

# ---- 第一批川渝电子证照亮证互认实施清单, as the untangled reference gives it ----

STATED_NAMES: dict[int, str] = {
    1: "中华人民共和国机动车驾驶证",
    2: "中华人民共和国律师执业证",
    3: "中华人民共和国社会保障卡",
    4: "就业创业证",
    5: "道路运输证",
    6: "道路运输从业资格证",
    8: "饲料生产许可证",
    9: "饲料添加剂生产许可证",
    11: "图书馆借书证",
    12: "旅行社业务经营许可证",
    13: "电子导游证",
    15: "艺术品经营单位备案证明",
    16: "营业性演出许可证",
    18: "社会体育指导员等级证书",
    19: "矿产资源勘查许可证",
}

ALL_CELLS = frozenset({"name_zh", "issuing_units", "channels", "scenarios", "related_items", "pilot_scope"})

LOST: dict[int, frozenset[str]] = {
    6: frozenset({"pilot_scope"}),
    7: frozenset({"channels"}),
    10: ALL_CELLS,
    14: frozenset({"name_zh", "issuing_units", "channels"}),
    17: frozenset({"name_zh", "issuing_units", "channels", "scenarios"}),
    19: frozenset({"scenarios"}),
}

INFERRED: dict[int, frozenset[str]] = {
    7: frozenset({"name_zh", "issuing_units"}),
    13: frozenset({"scenarios", "related_items", "pilot_scope"}),
    14: frozenset({"scenarios", "related_items", "pilot_scope"}),
    16: frozenset({"related_items", "pilot_scope"}),
}

NOT_RECOGNISED = (6, 7, 10, 14, 17, 19)

_AGRI = (("四川省农业农村厅",), ("重庆市农业农村委员会",))
_CULTURE = (("四川省文化和旅游厅",), ("重庆市文化和旅游发展委员会",))
ISSUING_UNITS: dict[int, tuple[tuple[str, ...], tuple[str, ...]]] = {
    1: (("四川省公安厅",), ("重庆市公安局",)),
    2: (("四川省司法厅",), ("重庆市司法局",)),
    3: (("四川省人力资源和社会保障厅",), ("重庆市人力资源和社会保障局",)),
    4: (("四川省人力资源和社会保障厅",), ("重庆市人力资源和社会保障局",)),
    5: (("四川省交通运输厅",), ("重庆市交通局",)),
    6: (("四川省交通运输厅",), ("重庆市交通局",)),
    7: _AGRI,
    8: _AGRI,
    9: _AGRI,
    11: (("四川省图书馆", "成都图书馆"), ("重庆图书馆",)),
    12: _CULTURE,
    13: _CULTURE,
    15: _CULTURE,
    16: _CULTURE,
    18: (("四川省体育局",), ("重庆市体育局",)),
    19: (("四川省自然资源厅",), ("重庆市规划和自然资源局",)),
}

_APPS = ("天府通办", "渝快办")
_RENSHE = ("四川人社", "天府通办", "重庆人社", "渝快办")
CHANNELS: dict[int, tuple[str, ...]] = {
    1: ("交管12123",),
    2: _APPS,
    3: _RENSHE,
    4: _RENSHE,
    5: _APPS,
    6: _APPS,
    8: _APPS,
    9: _APPS,
    11: _APPS,
    12: _APPS,
    13: _APPS,
    15: _APPS,
    16: _APPS,
    18: _APPS,
    19: _APPS,
}

_ENFORCEMENT = "监督检查、行政执法时通过指定APP亮证"
# The 应用场景 cell of each row whose scenarios are known (row 13 and 14 by inference).
SCENARIO_CELLS: dict[int, str] = {
    1: "到公证机构申办机动车驾驶证公证时通过指定APP亮证",
    2: "到司法行政部门办理业务，通过指定APP展示律师执业证电子证照",
    3: "1. 在社保经办机构办理养老保险服务时申请人通过指定APP亮证申请；"
    "2. 在公共就业创业服务管理机构办理就失业登记、失业保险金申领等通过指定APP亮证",
    4: "在公共就业创业服务管理机构办理职业培训、社会保险补贴、创业补贴、就业见习补贴等业务时通过指定APP亮证",
    5: "政务服务、执法场景时通过指定APP亮证",
    6: "政务服务、执法场景时通过指定APP亮证",
    7: "1. 在办理兽药经营许可证时，通过指定APP亮证提供代理兽药的生产厂家的此证；"
    "2. 在办理兽药广告时通过指定APP亮证；3. 在办理出口兽药时通过指定APP亮证",
    8: "1. 监督检查、行政执法时通过指定APP亮证；2. 线下办理委托加工时通过指定APP亮证",
    9: "1. 监督检查、行政执法时通过指定APP亮证；2. 线下办理委托加工时通过指定APP亮证",
    11: "川渝两地通过社保卡实现互联互通亮证借阅",
    12: _ENFORCEMENT,
    13: _ENFORCEMENT,
    14: _ENFORCEMENT,
    15: _ENFORCEMENT,
    16: _ENFORCEMENT,
    18: "川渝相关单位在对人员进行评级、参与社会体育指导活动、申报体育场所等情况通过指定APP亮证",
}

_WHOLE = ("四川全省范围内", "重庆全市范围内")
_AGRI_SCOPE = ("四川省政府政务服务和公共资源交易服务中心", "重庆市农业农村委员会")
_CULTURE_SCOPE = ("四川省政府政务服务和公共资源交易服务中心", "重庆市文化和旅游发展委员会")
_SPORTS_SCOPE = '四川、重庆办理"一级社会体育指导员技术等级称号认定"的体育部门'
PILOT_LABELS: dict[int, tuple[str, str]] = {
    1: ("川渝两地各级公证机构", "川渝两地各级公证机构"),
    2: _WHOLE,
    3: _WHOLE,
    4: _WHOLE,
    5: _WHOLE,
    7: _AGRI_SCOPE,
    8: _AGRI_SCOPE,
    9: _AGRI_SCOPE,
    11: ("四川省图书馆、成都图书馆", "重庆图书馆"),
    12: _CULTURE_SCOPE,
    13: _CULTURE_SCOPE,
    14: _CULTURE_SCOPE,
    15: _CULTURE_SCOPE,
    16: _CULTURE_SCOPE,
    17: ("四川省政务服务办事大厅", "重庆市文化和旅游发展委员会"),
    18: (_SPORTS_SCOPE, _SPORTS_SCOPE),
    19: _WHOLE,
}

# 涉及"川渝通办"事项名称 cells that are not among the 95 items.
UNNUMBERED_ITEMS: dict[int, tuple[str, ...]] = {
    6: (
        "经营性道路旅客运输驾驶员从业资格证换证、补发、转籍、变更、注销",
        "经营性道路货物运输驾驶员从业资格证换证、补发、转籍、变更、注销",
    ),
    17: ("从事经营性互联网文化活动审批", "演出经纪机构从事营业性演出活动审批"),
    19: ("新设采矿权登记", "采矿权延续登记", "采矿权变更登记", "采矿权注销登记", "采矿权抵押备案"),
}

# ---- 川渝通办事项清单（第一批）: the table of the notice, as published ----

SEED_ITEMS = """\
1 居民身份证换领、补领 四川省公安厅重庆市公安局
2 电子监控违法处理 四川省公安厅重庆市公安局
3 交通违法缴纳罚款 四川省公安厅重庆市公安局
4 补领、换领机动车检验合格标志 四川省公安厅重庆市公安局
5 机动车检验合格标志核发〔机动车检验合格标志核发（六年免检车）〕 四川省公安厅重庆市公安局
6 道路交通安全违法行为信息查询 四川省公安厅重庆市公安局
7 驾驶证记分查询 四川省公安厅重庆市公安局
8 机动车号牌补发、换发 四川省公安厅重庆市公安局
9 机动车行驶证补发、换发 四川省公安厅重庆市公安局
10 普通护照签发 四川省公安厅重庆市公安局
11 机动车驾驶证核发 四川省公安厅重庆市公安局
12 机动车驾驶证补证 四川省公安厅重庆市公安局
13 机动车驾驶证换证 四川省公安厅重庆市公安局
14 计算机信息网络国际联网备案 四川省公安厅重庆市公安局
15 校车驾驶资格认定 四川省公安厅重庆市公安局
16 开具临时身份证明〔开具户籍证明〕 四川省公安厅重庆市公安局
17 川渝两地户口迁移 四川省公安厅重庆市公安局
18 养老机构设立备案 四川省民政厅重庆市民政局
19 婚姻登记预约服务 四川省民政厅重庆市民政局
20 学历公证 四川省司法厅重庆市司法局
21 学位公证 四川省司法厅重庆市司法局
22 机动车驾驶证公证 四川省司法厅重庆市司法局
23 应届毕业生法律职业资格认定（享受放宽条件政策的除外） 四川省司法厅重庆市司法局
24 社会保障卡启用（激活） 四川省人力资源和社会保障厅重庆市人力资源和社会保障局
25 电子社会保障卡签发 四川省人力资源和社会保障厅重庆市人力资源和社会保障局
26 社会保障卡挂失与解挂 四川省人力资源和社会保障厅重庆市人力资源和社会保障局
27 社会保障卡信息变更 四川省人力资源和社会保障厅重庆市人力资源和社会保障局
28 社会保障卡应用状态查询 四川省人力资源和社会保障厅重庆市人力资源和社会保障局
29 个人权益记录查询打印服务〔个人社会保险咨询和个人权益记录查询打印服务〕 四川省人力资源和社会保障厅重庆市人力资源和社会保障局
30 城镇职工基本养老保险关系转移接续申请 四川省人力资源和社会保障厅重庆市人力资源和社会保障局
31 职业介绍 四川省人力资源和社会保障厅重庆市人力资源和社会保障局
32 公共就业服务专项活动 四川省人力资源和社会保障厅重庆市人力资源和社会保障局
33 暂停养老保险待遇申请 四川省人力资源和社会保障厅重庆市人力资源和社会保障局
34 恢复养老保险待遇申请 四川省人力资源和社会保障厅重庆市人力资源和社会保障局
35 失业登记 四川省人力资源和社会保障厅重庆市人力资源和社会保障局
36 城乡居民基本养老保险关系转移接续 四川省人力资源和社会保障厅重庆市人力资源和社会保障局
37 机关事业单位基本养老保险关系转移接续（含职业年金） 四川省人力资源和社会保障厅重庆市人力资源和社会保障局
38 机关事业单位基本养老保险与企业职工基本养老保险互转 四川省人力资源和社会保障厅重庆市人力资源和社会保障局
39 企业职工基本养老保险与城乡居民基本养老保险互转 四川省人力资源和社会保障厅重庆市人力资源和社会保障局
40 退役军人养老保险关系转移接续 四川省人力资源和社会保障厅重庆市人力资源和社会保障局
41 领取养老金人员待遇资格认证 四川省人力资源和社会保障厅重庆市人力资源和社会保障局
42 养老保险供养亲属领取待遇资格认证 四川省人力资源和社会保障厅重庆市人力资源和社会保障局
43 失业保险金申领 四川省人力资源和社会保障厅重庆市人力资源和社会保障局
44 就业创业证查询、核验 四川省人力资源和社会保障厅重庆市人力资源和社会保障局
45 技工院校毕业证书查询、核验 四川省人力资源和社会保障厅重庆市人力资源和社会保障局
46 技能人员职业资格证书查询、核验 四川省人力资源和社会保障厅重庆市人力资源和社会保障局
47 专业技术人员职业资格证书查询、核验 四川省人力资源和社会保障厅重庆市人力资源和社会保障局
48 商品房预售、抵押涉及的不动产预告登记（重庆市、成都市） 四川省自然资源厅重庆市规划和自然资源局
49 不动产登记资料查询（重庆市、成都市） 四川省自然资源厅重庆市规划和自然资源局
50 不动产抵押登记（重庆市、成都市） 四川省自然资源厅重庆市规划和自然资源局
51 排污许可 四川省生态环境厅重庆市生态环境局
52 川渝签约城市公积金互认互贷〔住房公积金贷款资格校验〕 四川省住房和城乡建设厅重庆市住房和城乡建设委员会
53 川渝签约城市联动治理违规提取使用公积金〔住房公积金跨区域协查〕 四川省住房和城乡建设厅重庆市住房和城乡建设委员会
54 出具贷款职工住房公积金缴存使用证明 四川省住房和城乡建设厅重庆市住房和城乡建设委员会
55 正常退休提取住房公积金 四川省住房和城乡建设厅重庆市住房和城乡建设委员会
56 小型非营运二手车交易登记 四川省商务厅重庆市商务委员会
57 生育服务证办理 四川省卫生健康委员会重庆市卫生健康委员会
58 义诊活动备案 四川省卫生健康委员会重庆市卫生健康委员会
59 消毒产品卫生安全评价报告备案 四川省卫生健康委员会重庆市卫生健康委员会
60 内资企业及分支机构设立登记 四川省市场监督管理局重庆市市场监督管理局
61 个人独资企业设立登记 四川省市场监督管理局重庆市市场监督管理局
62 个人独资企业分支机构设立登记 四川省市场监督管理局重庆市市场监督管理局
63 异地电子营业执照单点登录 四川省市场监督管理局重庆市市场监督管理局
64 合伙企业设立登记〔内资合伙企业设立登记〕 四川省市场监督管理局重庆市市场监督管理局
65 合伙企业分支机构设立登记〔内资合伙企业分支机构设立登记〕 四川省市场监督管理局重庆市市场监督管理局
66 内资企业及分支机构变更登记 四川省市场监督管理局重庆市市场监督管理局
67 内资企业及分支机构注销登记 四川省市场监督管理局重庆市市场监督管理局
68 外资企业及分支机构设立登记 四川省市场监督管理局重庆市市场监督管理局
69 外资企业及分支机构变更登记 四川省市场监督管理局重庆市市场监督管理局
70 外资企业及分支机构注销登记 四川省市场监督管理局重庆市市场监督管理局
71 个体工商户变更登记 四川省市场监督管理局重庆市市场监督管理局
72 个体工商户注销登记 四川省市场监督管理局重庆市市场监督管理局
73 农民专业合作社设立登记 四川省市场监督管理局重庆市市场监督管理局
74 农民专业合作社变更登记 四川省市场监督管理局重庆市市场监督管理局
75 农民专业合作社注销登记 四川省市场监督管理局重庆市市场监督管理局
76 营业执照遗失补领、换发 四川省市场监督管理局重庆市市场监督管理局
77 特种设备检验、检测人员资格认定 四川省市场监督管理局重庆市市场监督管理局
78 国产保健食品备案 四川省市场监督管理局重庆市市场监督管理局
79 特种设备检验检测机构核准 四川省市场监督管理局重庆市市场监督管理局
80 特种设备生产单位许可 四川省市场监督管理局重庆市市场监督管理局
81 办理跨省异地就医登记备案相关手续 四川省医疗保障局重庆市医疗保障局
82 医保电子凭证申领〔医保电子凭证下载〕 四川省医疗保障局重庆市医疗保障局
83 航空安全员资格认定 中国民用航空西南地区管理局
84 申请撤销提供邮政普遍服务的邮政营业场所 四川省邮政管理局重庆市邮政管理局
85 邮政企业申请停止办理或者限制办理邮政普遍服务和邮政特殊服务业务审批 四川省邮政管理局重庆市邮政管理局
86 快递业务经营许可 四川省邮政管理局重庆市邮政管理局
87 执业药师注册 四川省药品监督管理局重庆市药品监督管理局
88 执业药师延续注册 四川省药品监督管理局重庆市药品监督管理局
89 执业药师变更注册 四川省药品监督管理局重庆市药品监督管理局
90 执业药师注销注册 四川省药品监督管理局重庆市药品监督管理局
91 国产药品再注册 四川省药品监督管理局重庆市药品监督管理局
92 不涉及技术内容的国产药品变更备案 四川省药品监督管理局重庆市药品监督管理局
93 审核签发货物原产地证明书 中国国际贸易促进委员会四川省委员会中国国际贸易促进委员会重庆市委员会
94 审核签发 ATA单证册 中国国际贸易促进委员会四川省委员会中国国际贸易促进委员会重庆市委员会
95 出具国际商事证明书 中国国际贸易促进委员会四川省委员会中国国际贸易促进委员会重庆市委员会
"""  # noqa: E501 (the notice's lines as published)


def _parse_seed(text: str) -> list[tuple[int, str, str | None, str]]:
    """(seq, Sichuan name, Chongqing name or None, lead departments as printed) for each line."""
    rows = []
    for line in text.splitlines():
        m = re.fullmatch(r"(\d+) (.+) (\S+)", line.strip())
        assert m, line
        name, cq = m[2], None
        if named := re.fullmatch(r"(.+?)〔(.+)〕", name):
            name, cq = named[1], named[2]
        rows.append((int(m[1]), name, cq, m[3]))
    return rows


SEED = _parse_seed(SEED_ITEMS)

CHONGQING_NAMES: dict[int, str] = {
    5: "机动车检验合格标志核发（六年免检车）",
    16: "开具户籍证明",
    29: "个人社会保险咨询和个人权益记录查询打印服务",
    52: "住房公积金贷款资格校验",
    53: "住房公积金跨区域协查",
    64: "内资合伙企业设立登记",
    65: "内资合伙企业分支机构设立登记",
    82: "医保电子凭证下载",
}

CCPIT = ("中国国际贸易促进委员会四川省委员会", "中国国际贸易促进委员会重庆市委员会")


def _row(cat: Catalogue, seq: int) -> LicenceType:
    (lt,) = [lt for lt in cat.licences.values() if lt.seq == seq]
    return lt


# ---- fidelity to the official licence list ----


def test_the_list_has_nineteen_rows_in_order(catalogue: Catalogue) -> None:
    """The catalogue holds the 19 rows of the list, numbered 1 to 19, each with its own code."""
    rows = catalogue.by_seq()
    assert [lt.seq for lt in rows] == list(range(1, 20))
    assert len({lt.code for lt in rows}) == 19


@pytest.mark.parametrize(("seq", "name"), STATED_NAMES.items(), ids=[f"row-{s}" for s in STATED_NAMES])
def test_stated_names_equal_the_source(catalogue: Catalogue, seq: int, name: str) -> None:
    """A name the source states is kept character for character and is not flagged as inferred."""
    lt = _row(catalogue, seq)
    assert lt.name_zh == name
    assert "name_zh" not in lt.inferred


def test_row_7_name_is_inferred(catalogue: Catalogue) -> None:
    """Row 7's lost name is filled in as 兽药生产许可证 and flagged as inferred, not stated."""
    lt = _row(catalogue, 7)
    assert lt.name_zh == "兽药生产许可证"
    assert "name_zh" in lt.inferred
    assert "name_zh" not in lt.lost


@pytest.mark.parametrize("seq", [10, 14, 17], ids=["row-10", "row-14", "row-17"])
def test_rows_without_a_name_are_kept_as_unrecognised(catalogue: Catalogue, seq: int) -> None:
    """A row whose name the source lost is still in the catalogue, nameless and not recognised."""
    lt = _row(catalogue, seq)
    assert lt.name_zh is None
    assert lt.lost == LOST[seq]
    assert not lt.recognised


@pytest.mark.parametrize("seq", range(1, 20), ids=[f"row-{s}" for s in range(1, 20)])
def test_lost_cells_are_those_the_reference_marks(catalogue: Catalogue, seq: int) -> None:
    """Each row names exactly the cells the reference marks [lost], and those cells hold no value."""
    lt = _row(catalogue, seq)
    assert lt.lost == LOST.get(seq, frozenset())
    for cell in lt.lost:
        assert getattr(lt, cell) is None, cell
    for cell in ALL_CELLS - lt.lost:
        assert getattr(lt, cell) is not None, cell


@pytest.mark.parametrize("seq", range(1, 20), ids=[f"row-{s}" for s in range(1, 20)])
def test_inferred_cells_are_those_the_reference_marks(catalogue: Catalogue, seq: int) -> None:
    """Each row flags exactly the cells the reference marks [inferred] (rows 7, 13, 14 and 16)."""
    assert _row(catalogue, seq).inferred == INFERRED.get(seq, frozenset())


def test_rows_with_a_lost_rule_are_not_recognised(catalogue: Catalogue) -> None:
    """Rows 6, 7, 10, 14, 17 and 19 are not yet recognised; every other row is, inferred cells included."""
    assert tuple(lt.seq for lt in catalogue.by_seq() if not lt.recognised) == NOT_RECOGNISED
    assert _row(catalogue, 13).recognised
    assert _row(catalogue, 16).recognised


@pytest.mark.parametrize(
    ("seq", "missing"),
    [(6, ("pilot_scope",)), (7, ("channels",)), (19, ("scenarios",))],
    ids=["row-6-pilot-scope", "row-7-channels", "row-19-scenarios"],
)
def test_a_named_row_with_one_lost_rule_says_which(catalogue: Catalogue, seq: int, missing: tuple[str, ...]) -> None:
    """A row with a name but one lost rule is not recognised and names that rule as missing."""
    lt = _row(catalogue, seq)
    assert lt.name_zh == STATED_NAMES.get(seq, "兽药生产许可证")
    assert not lt.recognised
    assert lt.missing_rules == missing


def test_mintable_needs_units_and_channels(catalogue: Catalogue) -> None:
    """A licence can be signed when its issuing units and channels are known, even if its scope is lost."""
    assert _row(catalogue, 6).mintable
    assert _row(catalogue, 19).mintable
    assert not _row(catalogue, 7).mintable
    assert not _row(catalogue, 10).mintable


@pytest.mark.parametrize(("seq", "units"), ISSUING_UNITS.items(), ids=[f"row-{s}" for s in ISSUING_UNITS])
def test_issuing_units_per_province_match_the_reference(
    catalogue: Catalogue, seq: int, units: tuple[tuple[str, ...], tuple[str, ...]]
) -> None:
    """Each row's issuing units are the reference's, Sichuan's in SC and Chongqing's in CQ."""
    lt = _row(catalogue, seq)
    for province, expected in zip(PROVINCES, units, strict=True):
        assert tuple(catalogue.units[u].name_zh for u in lt.units_in(province)) == expected
        assert {catalogue.units[u].province for u in lt.units_in(province)} == {province}


@pytest.mark.parametrize(("seq", "apps"), CHANNELS.items(), ids=[f"row-{s}" for s in CHANNELS])
def test_channels_match_the_reference(catalogue: Catalogue, seq: int, apps: tuple[str, ...]) -> None:
    """Each row's 亮证渠道 are the apps the reference names, in its order."""
    lt = _row(catalogue, seq)
    assert lt.channels is not None
    assert tuple(catalogue.channels[c].name_zh for c in lt.channels) == apps


def test_channels_show_licences_of_their_province(catalogue: Catalogue) -> None:
    """交管12123 shows licences of both provinces; 天府通办 only Sichuan's and 渝快办 only Chongqing's."""
    assert catalogue.channels["jiaoguan-12123"].may_show("SC")
    assert catalogue.channels["jiaoguan-12123"].may_show("CQ")
    assert catalogue.channels["tianfu-tongban"].may_show("SC")
    assert not catalogue.channels["tianfu-tongban"].may_show("CQ")
    assert catalogue.channels["yukuaiban"].may_show("CQ")
    assert not catalogue.channels["yukuaiban"].may_show("SC")


@pytest.mark.parametrize(("seq", "cell"), SCENARIO_CELLS.items(), ids=[f"row-{s}" for s in SCENARIO_CELLS])
def test_scenarios_quote_their_row(catalogue: Catalogue, seq: int, cell: str) -> None:
    """Every scenario of a row quotes its 应用场景 cell verbatim, one scenario per numbered part."""
    lt = _row(catalogue, seq)
    assert lt.scenarios is not None
    for code in lt.scenarios:
        assert catalogue.scenarios[code].name_zh in cell, code
    assert len(lt.scenarios) == max(1, len(re.findall(r"\d\. ", cell)))


@pytest.mark.parametrize(("seq", "labels"), PILOT_LABELS.items(), ids=[f"row-{s}" for s in PILOT_LABELS])
def test_pilot_scope_labels_match_the_reference(catalogue: Catalogue, seq: int, labels: tuple[str, str]) -> None:
    """Each row's 试点范围 reads as the reference gives it, per province."""
    scope = _row(catalogue, seq).pilot_scope
    assert scope is not None
    assert (scope["SC"].label_zh, scope["CQ"].label_zh) == labels


@pytest.mark.parametrize(
    ("seq", "shape", "kind"),
    [
        (1, "institution-kind", "notary-office"),
        (2, "province", None),
        (5, "province", None),
        (8, "institutions", None),
        (11, "institutions", None),
        (18, "institution-kind", "sports-instructor-certification"),
        (19, "province", None),
    ],
    ids=[
        "row-1-notaries",
        "row-2-province",
        "row-5-province",
        "row-8-named",
        "row-11-named",
        "row-18-sports",
        "row-19",
    ],
)
def test_pilot_scope_shapes(catalogue: Catalogue, seq: int, shape: str, kind: str | None) -> None:
    """A pilot scope is the whole province, every institution of a kind, or named institutions, as its label says."""
    scope = _row(catalogue, seq).pilot_scope
    assert scope is not None
    for province in PROVINCES:
        assert scope[province].shape == shape
        assert scope[province].kind == kind


@pytest.mark.parametrize(
    ("seq", "labels"), [(lt, PILOT_LABELS[lt]) for lt in (7, 8, 9, 11, 12, 13, 14, 15, 16, 17)], ids=str
)
def test_named_scopes_name_the_institutions_of_the_label(
    catalogue: Catalogue, seq: int, labels: tuple[str, str]
) -> None:
    """A scope of named institutions names exactly the institutions its label lists, in the right province."""
    scope = _row(catalogue, seq).pilot_scope
    assert scope is not None
    for province, label in zip(PROVINCES, labels, strict=True):
        names = [catalogue.institutions[i].name_zh for i in scope[province].institutions]
        assert "、".join(names) == label
        assert {catalogue.institutions[i].province for i in scope[province].institutions} == {province}


@pytest.mark.parametrize(("seq", "item"), [(1, 22), (4, 44)], ids=["row-1-item-22", "row-4-item-44"])
def test_related_items_resolve_to_the_95_items(catalogue: Catalogue, seq: int, item: int) -> None:
    """Rows 1 and 4 point at items 22 (机动车驾驶证公证) and 44 (就业创业证查询、核验) of the 95."""
    expected = {22: "机动车驾驶证公证", 44: "就业创业证查询、核验"}[item]
    lt = _row(catalogue, seq)
    assert lt.related_items is not None
    assert [(ri.name_zh, ri.item) for ri in lt.related_items] == [(expected, item)]
    assert catalogue.items[item].name_zh == expected


@pytest.mark.parametrize(("seq", "names"), UNNUMBERED_ITEMS.items(), ids=[f"row-{s}" for s in UNNUMBERED_ITEMS])
def test_related_items_outside_the_95_are_kept_by_name(catalogue: Catalogue, seq: int, names: tuple[str, ...]) -> None:
    """A related item that is not one of the 95 is kept by its name alone."""
    lt = _row(catalogue, seq)
    assert lt.related_items is not None
    assert tuple(ri.name_zh for ri in lt.related_items) == names
    assert all(ri.item is None for ri in lt.related_items)
    assert not set(names) & {it.name_zh for it in catalogue.items.values()}


def test_empty_related_items_cells_are_empty(catalogue: Catalogue) -> None:
    """A ＿＿ cell is an empty list of related items, not a lost one."""
    empty = [lt.seq for lt in catalogue.by_seq() if lt.related_items == ()]
    assert empty == [2, 3, 5, 7, 8, 9, 11, 12, 13, 14, 15, 16, 18]


# ---- the 95 川渝通办 items ----


def test_ninety_five_items_numbered_without_gaps(catalogue: Catalogue) -> None:
    """The catalogue holds the 95 items of 川办发〔2020〕67号, numbered 1 to 95."""
    assert len(SEED) == 95
    assert sorted(catalogue.items) == list(range(1, 96))


@pytest.mark.parametrize(("seq", "name", "cq", "departments"), SEED, ids=[f"item-{r[0]}" for r in SEED])
def test_item_matches_the_notice(catalogue: Catalogue, seq: int, name: str, cq: str | None, departments: str) -> None:
    """Each item's names and lead departments are the notice's text."""
    item = catalogue.items[seq]
    assert item.name_zh == name
    assert item.name_cq_zh == cq
    assert "".join(item.lead_departments) == departments


@pytest.mark.parametrize(("seq", "name"), CHONGQING_NAMES.items(), ids=[f"item-{s}" for s in CHONGQING_NAMES])
def test_chongqing_names_of_items(catalogue: Catalogue, seq: int, name: str) -> None:
    """Where the notice gives Chongqing's own name in 〔〕, the item carries it besides Sichuan's."""
    item = catalogue.items[seq]
    assert item.name_cq_zh == name
    assert "〔" not in item.name_zh
    assert item.name_zh != name


def test_only_the_bracketed_items_have_a_chongqing_name(catalogue: Catalogue) -> None:
    """Items without 〔〕 in the notice have no separate Chongqing name."""
    assert {it.seq for it in catalogue.items.values() if it.name_cq_zh} == set(CHONGQING_NAMES)


def test_lead_departments_are_split_by_province(catalogue: Catalogue) -> None:
    """Item 83 has one lead department; 93–95 the two CCPIT committees; every other item Sichuan's then Chongqing's."""
    assert catalogue.items[83].lead_departments == ("中国民用航空西南地区管理局",)
    for seq in (93, 94, 95):
        assert catalogue.items[seq].lead_departments == CCPIT
    for item in catalogue.items.values():
        if item.seq == 83:
            continue
        sc, cq = item.lead_departments
        assert "四川" in sc, item.seq
        assert "重庆" not in sc, item.seq
        assert "重庆" in cq, item.seq
        assert "四川" not in cq, item.seq


# ---- the counter registry ----


def _counters(cat: Catalogue, province: str, kind: str) -> list[Counter]:
    return [c for c in cat.counters.values() if c.province == province and kind in c.institution.kinds]


def _counters_of(cat: Catalogue, institution: str) -> list[Counter]:
    return [c for c in cat.counters.values() if c.institution.code == institution]


def _in_scope_for_some_type(cat: Catalogue, counter: Counter) -> bool | None:
    """Whether a recognised type sharing one of the counter's scenarios covers its institution; None if no
    recognised type shares a scenario with it."""
    sharing = [lt for lt in cat.by_seq() if lt.recognised and set(lt.scenarios or ()) & set(counter.scenarios)]
    if not sharing:
        return None
    return any(
        lt.pilot_scope is not None and lt.pilot_scope[counter.province].covers(counter.institution) for lt in sharing
    )


KIND_CASES = [
    ("notary-office", "notary-driving-licence"),
    ("justice-bureau", "justice-admin"),
    ("social-insurance-agency", "pension-insurance"),
    ("employment-service", "unemployment-registration"),
    ("employment-service", "employment-subsidy"),
    ("transport-unit", "transport-service-enforcement"),
    ("sports-instructor-certification", "sports-instructor"),
]


@pytest.mark.parametrize("province", PROVINCES)
@pytest.mark.parametrize(("kind", "scenario"), KIND_CASES, ids=[f"{k}-{s}" for k, s in KIND_CASES])
def test_counters_of_each_kind_in_both_provinces(catalogue: Catalogue, kind: str, scenario: str, province: str) -> None:
    """Each province has a counter of every institution kind a pilot scope needs, registered for its scenario."""
    counters = [c for c in _counters(catalogue, province, kind) if scenario in c.scenarios]
    assert counters, f"no {kind} counter for {scenario} in {province}"


@pytest.mark.parametrize("province", PROVINCES)
def test_notary_offices_at_two_levels(catalogue: Catalogue, province: str) -> None:
    """Each province has notary-office counters at two levels, all in row 1's pilot scope (各级公证机构)."""
    counters = _counters(catalogue, province, "notary-office")
    assert len({c.institution.level for c in counters}) >= 2
    scope = _row(catalogue, 1).pilot_scope
    assert scope is not None
    assert all(scope[province].covers(c.institution) for c in counters)


@pytest.mark.parametrize("province", PROVINCES)
def test_natural_resources_bureaus_in_both_provinces(catalogue: Catalogue, province: str) -> None:
    """Each province has a natural-resources counter, ready for row 19 once its scenarios are filled in."""
    assert _counters(catalogue, province, "natural-resources-bureau")


@pytest.mark.parametrize("province", PROVINCES)
def test_sports_certification_departments_in_scope(catalogue: Catalogue, province: str) -> None:
    """The sports departments certifying 一级社会体育指导员 are in row 18's scope; other sports departments are not."""
    scope = _row(catalogue, 18).pilot_scope
    assert scope is not None
    certifying = _counters(catalogue, province, "sports-instructor-certification")
    assert certifying
    assert all(scope[province].covers(c.institution) for c in certifying)
    others = [c for c in _counters(catalogue, province, "sports-department") if c not in certifying]
    assert others
    assert not any(scope[province].covers(c.institution) for c in others)


@pytest.mark.parametrize(
    ("province", "name"),
    [
        ("SC", "四川省政府政务服务和公共资源交易服务中心"),
        ("SC", "四川省政务服务办事大厅"),
        ("SC", "四川省图书馆"),
        ("SC", "成都图书馆"),
        ("CQ", "重庆市农业农村委员会"),
        ("CQ", "重庆市文化和旅游发展委员会"),
        ("CQ", "重庆图书馆"),
    ],
    ids=str,
)
def test_named_institutions_have_counters(catalogue: Catalogue, province: str, name: str) -> None:
    """Every institution a pilot scope names has a counter in its province."""
    (inst,) = [i for i in catalogue.institutions.values() if i.name_zh == name]
    assert inst.province == province
    assert _counters_of(catalogue, inst.code)


def test_named_institution_counters_handle_all_their_scenarios(catalogue: Catalogue) -> None:
    """A counter of an institution named by a pilot scope is registered for every scenario of the types naming it."""
    checked = 0
    for lt in catalogue.by_seq():
        for scope in (lt.pilot_scope or {}).values():
            for code in scope.institutions:
                counters = _counters_of(catalogue, code)
                assert counters, code
                for counter in counters:
                    missing = set(lt.scenarios or ()) - set(counter.scenarios)
                    assert not missing, f"{counter.id} lacks {sorted(missing)} of row {lt.seq}"
                    checked += 1
    assert checked >= 20


@pytest.mark.parametrize("province", PROVINCES)
def test_some_counters_are_outside_every_pilot_scope(catalogue: Catalogue, province: str) -> None:
    """Each province has a counter doing a recognised type's business outside its pilot scope, and one inside."""
    verdicts = {
        c.id: _in_scope_for_some_type(catalogue, c) for c in catalogue.counters.values() if c.province == province
    }
    assert [cid for cid, v in verdicts.items() if v is False]
    assert [cid for cid, v in verdicts.items() if v is True]


@pytest.mark.parametrize("province", PROVINCES)
@pytest.mark.parametrize("seq", [s for s in range(1, 20) if s not in NOT_RECOGNISED], ids=lambda s: f"row-{s}")
def test_every_recognised_type_has_an_accepting_counter(catalogue: Catalogue, seq: int, province: str) -> None:
    """In each province some counter handles one of a recognised type's scenarios inside its pilot scope."""
    lt = _row(catalogue, seq)
    assert lt.scenarios is not None
    assert lt.pilot_scope is not None
    scope = lt.pilot_scope[province]
    assert any(
        c.province == province and set(c.scenarios) & set(lt.scenarios) and scope.covers(c.institution)
        for c in catalogue.counters.values()
    )


# ---- GB/T 2260 division codes ----

# The codes data/ uses, as the published county-level list (民政部 行政区划代码) gives them.
GB2260: dict[str, str] = {
    "510000": "四川省",
    "510100": "成都市",
    "510700": "绵阳市",
    "510703": "涪城区",
    "500000": "重庆市",
    "500101": "万州区",
    "500103": "渝中区",
    "500112": "渝北区",
}

# Institutions whose name says their district: (city, district).
DISTRICTS: dict[str, tuple[str, str]] = {
    "sc-notary-fucheng": ("510700", "510703"),
    "cq-notary-yubei": ("500000", "500112"),
    "cq-justice-yuzhong": ("500000", "500103"),
    "cq-agri-wanzhou": ("500000", "500101"),
    "cq-culture-yuzhong": ("500000", "500103"),
    "cq-yuzhong-library": ("500000", "500103"),
    "cq-sport-yuzhong": ("500000", "500103"),
}


@pytest.mark.parametrize(
    ("code", "province", "city", "district"),
    [
        ("510703", "510000", "510700", "510703"),
        ("510100", "510000", "510100", None),
        ("510000", "510000", None, None),
        ("500103", "500000", "500000", "500103"),
        ("500229", "500000", "500000", "500229"),
        ("500000", "500000", "500000", None),
    ],
    ids=["sc-district", "sc-city", "sc-province", "cq-district", "cq-county", "cq-municipality"],
)
def test_division_codes_split_into_province_city_and_district(
    code: str, province: str, city: str | None, district: str | None
) -> None:
    """A GB/T 2260 code splits into province, city and district; Chongqing's districts stand right under 500000."""
    assert (province_division(code), city_division(code), district_division(code)) == (province, city, district)


def test_division_names_are_the_published_ones(catalogue: Catalogue) -> None:
    """Every [[division]] of data/ has the code and name of the published list, and there are no others."""
    assert {code: d.name_zh for code, d in catalogue.divisions.items()} == GB2260


def test_every_institution_stands_in_a_named_city_of_its_province(catalogue: Catalogue) -> None:
    """Each institution has a city (named in data/) inside its own province."""
    for inst in catalogue.institutions.values():
        assert inst.province_division == str(PROVINCE_CODES[inst.province]), inst.code
        assert inst.city_division in catalogue.divisions, inst.code


@pytest.mark.parametrize(("code", "where"), DISTRICTS.items(), ids=list(DISTRICTS))
def test_institutions_named_after_a_district_stand_in_it(
    catalogue: Catalogue, code: str, where: tuple[str, str]
) -> None:
    """An institution whose name says its district has that district's code, and its city's."""
    inst = catalogue.institutions[code]
    assert (inst.city_division, inst.district_division) == where
    assert GB2260[where[1]].removesuffix("区") in inst.name_zh


def test_other_institutions_give_their_city_only(catalogue: Catalogue) -> None:
    """An institution whose name does not say its district gives its city only, never a guessed district."""
    others = [i for i in catalogue.institutions.values() if i.code not in DISTRICTS]
    assert others
    assert all(i.district_division is None for i in others)
    assert {i.city_division for i in others} == {"510100", "510700", "500000"}


@pytest.mark.parametrize(
    ("counter", "division"),
    [
        (
            "sc-notary-fucheng-01",
            {"code": "510703", "province": "510000", "city": "510700", "district": "510703",
             "name_zh": "四川省绵阳市涪城区", "name_en": "Fucheng District, Mianyang, Sichuan"},
        ),
        (
            "cq-justice-yuzhong-01",
            {"code": "500103", "province": "500000", "city": "500000", "district": "500103",
             "name_zh": "重庆市渝中区", "name_en": "Yuzhong District, Chongqing"},
        ),
        (
            "sc-justice-dept-01",
            {"code": "510100", "province": "510000", "city": "510100", "district": None,
             "name_zh": "四川省成都市", "name_en": "Chengdu, Sichuan"},
        ),
    ],
    ids=["sc-district", "cq-district", "sc-city-only"],
)  # fmt: skip
def test_counter_registry_says_where_each_counter_stands(
    catalogue: Catalogue, counter: str, division: dict[str, str | None]
) -> None:
    """``verifier counters --json`` gives each counter's institution its division codes and full name."""
    (entry,) = [c for c in counters_document(catalogue)["counters"] if c["id"] == counter]
    assert entry["institution"]["division"] == division


@pytest.mark.parametrize(
    ("scenario", "items"),
    [("notary-driving-licence", (22,)), ("employment-subsidy", (44,)), ("justice-admin", ()), ("unknown", ())],
    ids=["notary-item-22", "employment-item-44", "justice-none", "unknown-scenario"],
)
def test_scenario_items_are_the_numbered_items_of_its_rows(
    catalogue: Catalogue, scenario: str, items: tuple[int, ...]
) -> None:
    """A business may be done for the numbered 川渝通办 items of the rows naming it; other names are not items."""
    assert tuple(i.seq for i in catalogue.scenario_items(scenario)) == items


def test_scenarios_of_rows_with_unnumbered_items_have_none(catalogue: Catalogue) -> None:
    """Row 6's related items are not among the 95, so its business (transport) offers no item to pick."""
    row = _row(catalogue, 6)
    assert row.related_items
    assert all(ri.item is None for ri in row.related_items)
    assert catalogue.scenario_items("transport-service-enforcement") == ()


# ---- broken data ----


@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    """A private copy of data/ to break."""
    return Path(shutil.copytree(DATA, tmp_path / "data"))


def _break(directory: Path, file: str, marker: str, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` once, inside the entry of ``file`` that contains ``marker``."""
    path = directory / file
    blocks = re.split(r"(?m)^(?=\[\[)", path.read_text(encoding="utf-8"))
    (index,) = [i for i, b in enumerate(blocks) if marker in b]
    assert blocks[index].count(old) == 1, (marker, old)
    blocks[index] = blocks[index].replace(old, new)
    path.write_text("".join(blocks), encoding="utf-8")


@dataclass(frozen=True)
class Break:
    """One bad edit: replace ``old`` by ``new`` in the entry of ``file`` holding ``marker``; the loader's
    problem must contain every string of ``expected``."""

    file: str
    marker: str
    old: str
    new: str
    expected: tuple[str, ...]


BREAKS = [
    pytest.param(
        Break(
            "licence-types.toml",
            'code = "lawyer-licence"',
            "channels =",
            "chanels =",
            ("seq=2", "lawyer-licence", "chanels", "unknown field"),
        ),
        id="misspelled-field",
    ),
    pytest.param(
        Break(
            "licence-types.toml",
            'code = "vet-drug-production"',
            "seq = 7",
            'seq = "7"',
            ("seq=7", "vet-drug-production", "field seq", "integer"),
        ),
        id="seq-not-an-integer",
    ),
    pytest.param(
        Break(
            "licence-types.toml",
            'code = "road-transport"',
            '"yukuaiban"]',
            '"yukuaiban-app"]',
            ("seq=5", "road-transport", "field channels", "yukuaiban-app"),
        ),
        id="unknown-channel",
    ),
    pytest.param(
        Break(
            "licence-types.toml",
            'code = "lawyer-licence"',
            'issuing_units = { SC = ["sc-justice"]',
            'issuing_units = { SC = ["cq-justice"]',
            ("seq=2", "lawyer-licence", "field issuing_units.SC", "cq-justice"),
        ),
        id="issuing-unit-of-the-other-province",
    ),
    pytest.param(
        Break(
            "licence-types.toml",
            'code = "feed-production"',
            'institutions = ["sc-gov-service-centre"]',
            'institutions = ["cq-agri-commission"]',
            ("seq=8", "feed-production", "field pilot_scope.SC.institutions", "cq-agri-commission"),
        ),
        id="pilot-scope-institution-in-the-wrong-province",
    ),
    pytest.param(
        Break(
            "licence-types.toml",
            'code = "lawyer-licence"',
            "related_items = []",
            'related_items = []\nlost = ["channels"]',
            ("seq=2", "lawyer-licence", "field channels", "marked lost but has a value"),
        ),
        id="cell-present-and-lost",
    ),
    pytest.param(
        Break(
            "licence-types.toml",
            'code = "lawyer-licence"',
            'scenarios = ["justice-admin"]\n',
            "",
            ("seq=2", "lawyer-licence", "field scenarios", "missing"),
        ),
        id="cell-neither-present-nor-lost",
    ),
    pytest.param(
        Break(
            "licence-types.toml",
            'code = "driving-licence"',
            "item = 22",
            "item = 23",
            ("seq=1", "driving-licence", "field related_items", "item 23"),
        ),
        id="related-item-of-another-name",
    ),
    pytest.param(
        Break(
            "licence-types.toml",
            'code = "lawyer-licence"',
            'pilot_scope.SC = { shape = "province",',
            'pilot_scope.SC = { shape = "province", kind = "notary-office",',
            ("seq=2", "lawyer-licence", "field pilot_scope.SC", "shapes"),
        ),
        id="pilot-scope-of-mixed-shapes",
    ),
    pytest.param(
        Break(
            "counters.toml",
            'id = "cq-library-01"',
            'institution = "cq-library"',
            'institution = "cq-libary"',
            ("cq-library-01", "field institution", "cq-libary"),
        ),
        id="counter-of-unknown-institution",
    ),
    pytest.param(
        Break(
            "counters.toml",
            'id = "sc-library-01"',
            'scenarios = ["library-borrowing"]',
            'scenarios = ["library-lending"]',
            ("sc-library-01", "field scenarios", "library-lending"),
        ),
        id="counter-of-unknown-scenario",
    ),
    pytest.param(
        Break(
            "counters.toml",
            'id = "sc-notary-shudu-02"',
            'id = "sc-notary-shudu-02"',
            'id = "sc-notary-shudu-01"',
            ("sc-notary-shudu-01", "duplicate id"),
        ),
        id="duplicate-counter-id",
    ),
    pytest.param(
        Break(
            "institutions.toml",
            'code = "cq-library"',
            'province = "CQ"',
            'province = "Chongqing"',
            ("institution", "cq-library", "field province", "Chongqing"),
        ),
        id="institution-of-unknown-province",
    ),
    pytest.param(
        Break(
            "institutions.toml",
            'code = "cq-justice-yuzhong"',
            'division = "500103"',
            'division = "510104"',
            ("cq-justice-yuzhong", "field division", "510104 is not in CQ (500000)"),
        ),
        id="division-in-the-other-province",
    ),
    pytest.param(
        Break(
            "institutions.toml",
            'code = "sc-library"',
            'division = "510100"',
            'division = "510000"',
            ("sc-library", "field division", "province's code"),
        ),
        id="division-without-a-city",
    ),
    pytest.param(
        Break(
            "institutions.toml",
            'code = "sc-notary-shudu"',
            'division = "510100"',
            'division = "510104"',
            ("sc-notary-shudu", "field division", "no [[division]] named 510104"),
        ),
        id="division-not-named",
    ),
    pytest.param(
        Break(
            "institutions.toml",
            'code = "cq-library"',
            'division = "500000"',
            'division = "50000"',
            ("cq-library", "field division", "does not match"),
        ),
        id="division-of-five-digits",
    ),
    pytest.param(
        Break(
            "institutions.toml",
            'name_zh = "渝北区"',
            'code = "500112"',
            'code = "500103"',
            ("division code=500103", "duplicate code"),
        ),
        id="duplicate-division",
    ),
    pytest.param(
        Break(
            "items.toml",
            'name_zh = "航空安全员资格认定"',
            "seq = 83",
            "seq = 0",
            ("item seq=0", "field seq"),
        ),
        id="item-seq-below-one",
    ),
]


@pytest.mark.parametrize("case", BREAKS)
def test_broken_data_is_reported_by_file_entry_and_field(data_copy: Path, case: Break) -> None:
    """A bad edit fails the load with a problem naming the file, the entry and the field, and nothing else."""
    _break(data_copy, case.file, case.marker, case.old, case.new)
    with pytest.raises(CatalogueError) as info:
        load_catalogue(data_copy)
    problems = info.value.problems
    assert problems
    assert all(p.startswith(f"data/{case.file}: ") for p in problems), problems
    assert any(all(part in p for part in case.expected) for p in problems), problems
    assert info.value.code == "CATALOGUE_INVALID"


def test_malformed_toml_names_the_file_and_line(data_copy: Path) -> None:
    """A file that is not TOML fails the load with a problem naming the file and where it breaks."""
    path = data_copy / "channels.toml"
    path.write_text(path.read_text(encoding="utf-8") + '\n[[channel]\ncode = "x"\n', encoding="utf-8")
    with pytest.raises(CatalogueError) as info:
        load_catalogue(data_copy)
    (problem,) = info.value.problems
    assert problem.startswith("data/channels.toml: not valid TOML")
    assert "line" in problem


def test_a_missing_file_is_named(data_copy: Path) -> None:
    """A data file that is not there fails the load with a problem naming it."""
    (data_copy / "scenarios.toml").unlink()
    with pytest.raises(CatalogueError) as info:
        load_catalogue(data_copy)
    assert any(p.startswith("data/scenarios.toml: file missing") for p in info.value.problems)


def test_every_problem_is_reported_at_once(data_copy: Path) -> None:
    """Problems in several files are all listed in one error, so an operator fixes them in one go."""
    _break(data_copy, "licence-types.toml", 'code = "lawyer-licence"', "channels =", "chanels =")
    _break(data_copy, "counters.toml", 'id = "cq-library-01"', "name_zh =", "name =")
    path = data_copy / "scenarios.toml"
    path.write_text(path.read_text(encoding="utf-8") + "\n= broken\n", encoding="utf-8")
    with pytest.raises(CatalogueError) as info:
        load_catalogue(data_copy)
    files = {p.split(":", 1)[0] for p in info.value.problems}
    assert files == {"data/licence-types.toml", "data/counters.toml", "data/scenarios.toml"}


def test_the_copy_loads_unbroken(data_copy: Path, catalogue: Catalogue) -> None:
    """An untouched copy of data/ loads to the same catalogue, so each broken case fails for its own edit."""
    copy = load_catalogue(data_copy)
    assert copy.licences == catalogue.licences
    assert copy.counters == catalogue.counters


def test_a_file_not_in_utf8_is_named(data_copy: Path) -> None:
    """A data file saved in another encoding (GBK) fails the load with a problem naming it, not a crash."""
    path = data_copy / "scenarios.toml"
    path.write_bytes(path.read_text(encoding="utf-8").encode("gbk"))
    with pytest.raises(CatalogueError) as info:
        load_catalogue(data_copy)
    (problem,) = info.value.problems
    assert problem.startswith("data/scenarios.toml: not UTF-8")


def test_an_unreadable_file_is_named(data_copy: Path) -> None:
    """A data file that cannot be read (here a folder in its place) fails the load with a problem naming it."""
    path = data_copy / "channels.toml"
    path.unlink()
    path.mkdir()
    with pytest.raises(CatalogueError) as info:
        load_catalogue(data_copy)
    (problem,) = info.value.problems
    assert problem.startswith("data/channels.toml: cannot be read")
