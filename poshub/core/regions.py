"""China administrative area codes (GB/T 2260) and the UnionPay MID area code.

The table is python-stdnum's bundled ``cn/loc`` database, which keeps every
name a code has carried with the years it was in force. Only units in force
today are offered here: a merchant's premises are in today's county, and the
MID area code is the first four digits of that county's code.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

from stdnum import numdb

_NAME_RE = re.compile(r"(?:\[(?P<start>\d*)-(?P<end>\d*)\])?(?P<name>.+)")
_CODE_RE = re.compile(r"[0-9]{6}")

# Rows that are bookkeeping headings rather than places where a shop can be:
# the 市辖区 heading of every prefecture and the headings over the county-level
# cities that a province administers directly.
_PLACEHOLDER_NAMES = frozenset(
    {
        "市辖区",
        "县",
        "省直辖县级行政单位",
        "省直辖行政单位",
        "自治区直辖县级行政单位",
    }
)

# Errata in stdnum's data, which carries these long-abolished Hubei codes without
# an end year. Left in, they would make 湖北省 随州市 and 湖北省 神农架林区 look
# ambiguous; today they are 421300 and 429021.
_ABOLISHED_WITHOUT_END_YEAR = frozenset({"422900", "422921", "429001"})

# stdnum's data spells the four districts of the 大兴安岭 prefecture in
# traditional characters; merchants type them in simplified ones.
_NAME_FIXES = {
    "加格達奇區": "加格达奇区",
    "松嶺區": "松岭区",
    "新林區": "新林区",
    "呼中區": "呼中区",
}

# Longest first, so that 广西壮族自治区 loses 壮族自治区 rather than just 自治区.
_PROVINCE_SUFFIXES = (
    "维吾尔自治区",
    "壮族自治区",
    "回族自治区",
    "特别行政区",
    "自治区",
    "省",
    "市",
)


@dataclass(frozen=True)
class Region:
    """One county-level (or undivided prefecture-level) unit in force today."""

    code: str
    province: str
    county: str

    @property
    def area_code(self) -> str:
        """The four-digit UnionPay MID area code, e.g. ``'3401'`` for 340104 蜀山区."""
        return self.code[:4]


class RegionError(Exception):
    """The address cannot be placed in one GB/T 2260 unit; ``code`` says why."""

    def __init__(self, code: str, params: dict[str, str] | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.params = params or {}


def _clean(text: str) -> str:
    # NFKC folds full-width characters from Chinese input methods; whitespace is
    # never part of a place name.
    return "".join(unicodedata.normalize("NFKC", text).split())


def _province_key(name: str) -> str:
    cleaned = _clean(name)
    for suffix in _PROVINCE_SUFFIXES:
        if cleaned.endswith(suffix) and len(cleaned) > len(suffix):
            return cleaned[: -len(suffix)]
    return cleaned


def _current_name(history: str) -> str | None:
    """The name in force today from a stdnum history string, or None if abolished."""
    match = _NAME_RE.fullmatch(history.split(",")[-1])
    if match is None or match.group("end"):
        return None
    name = match.group("name")
    return _NAME_FIXES.get(name, name)


@functools.cache
def _table() -> dict[str, Region]:
    table: dict[str, Region] = {}
    for _length, low, high, props, children in numdb.get("cn/loc").prefixes:
        province = props.get("province", "")
        # The database nests one level deep, a two-digit province over the four
        # remaining digits, and every row holds a single code rather than a range.
        for _child_length, child_low, child_high, child_props, _ in children:
            if low != high or child_low != child_high:
                continue
            code = low + child_low
            name = _current_name(child_props.get("county", ""))
            if (
                name is None
                or code.endswith("0000")
                or name in _PLACEHOLDER_NAMES
                or code in _ABOLISHED_WITHOUT_END_YEAR
            ):
                continue
            table[code] = Region(code=code, province=province, county=name)
    return table


def lookup(code: str) -> Region | None:
    """The unit in force with this six-digit code, or None."""
    cleaned = _clean(code)
    if not _CODE_RE.fullmatch(cleaned):
        return None
    return _table().get(cleaned)


@functools.cache
def _by_name() -> dict[tuple[str, str], tuple[Region, ...]]:
    index: dict[tuple[str, str], list[Region]] = {}
    for region in sorted(_table().values(), key=lambda r: r.code):
        index.setdefault((_province_key(region.province), region.county), []).append(region)
    return {key: tuple(regions) for key, regions in index.items()}


def _describe(region: Region) -> str:
    # Candidates share their district name, so the prefecture is what tells them
    # apart for the merchant, e.g. 南京市鼓楼区 and 徐州市鼓楼区.
    prefecture = _table().get(region.area_code + "00")
    prefix = prefecture.county if prefecture is not None and prefecture is not region else ""
    return f"{prefix}{region.county} ({region.code})"


def display_name(code: str) -> str | None:
    """A code as people say it: ``'340104'`` → 合肥市蜀山区, ``'3401'`` (a MID area code) →
    安徽省合肥市, ``'110101'`` → 北京市东城区; None for a code not in force.

    Staff read places, not six digits, and the prefecture is what tells two districts of
    the same name apart (南京市鼓楼区, 徐州市鼓楼区).
    """
    cleaned = _clean(code)
    if re.fullmatch(r"[0-9]{4}", cleaned):
        prefecture = _table().get(cleaned + "00")
        province = _province_name(cleaned[:2])
        if province is None:
            return None
        return province + (prefecture.county if prefecture is not None else "")
    region = lookup(cleaned)
    if region is None:
        return None
    prefecture = _table().get(region.area_code + "00")
    if prefecture is region:
        return region.province + region.county
    prefix = prefecture.county if prefecture is not None else region.province
    return prefix + region.county


@functools.cache
def _province_name(digits: str) -> str | None:
    for region in _table().values():
        if region.code.startswith(digits):
            return region.province
    return None


def find(province: str, district: str) -> list[Region]:
    """Units in force named ``district`` in ``province`` (suffix 省/市/自治区 optional)."""
    return list(_by_name().get((_province_key(province), _clean(district)), ()))


def same_province(a: str, b: str) -> bool:
    """Whether two spellings name the same province, e.g. '安徽' and '安徽省'."""
    return _province_key(a) == _province_key(b)


def resolve_area_code(province: str, district: str, region_code: str | None) -> str:
    """The four-digit MID area code of an address, or RegionError.

    A given ``region_code`` wins over the district name, because merchants in
    development zones (高新区, 经开区) write names that GB/T 2260 does not know
    and pick their county from a list instead; only its province is checked.
    """
    if region_code is not None and region_code.strip():
        region = lookup(region_code)
        if region is None:
            raise RegionError("address.region_code.unknown", {"region_code": region_code.strip()})
        if not same_province(region.province, province):
            raise RegionError(
                "address.region_code.mismatch",
                {"region_code": region.code, "province": province.strip()},
            )
        return region.area_code
    candidates = find(province, district)
    if not candidates:
        raise RegionError(
            "address.district.unknown",
            {"province": province.strip(), "district": district.strip()},
        )
    area_codes = sorted({region.area_code for region in candidates})
    if len(area_codes) > 1:
        raise RegionError(
            "address.district.ambiguous",
            {
                "province": province.strip(),
                "district": district.strip(),
                "candidates": "、".join(_describe(region) for region in candidates),
            },
        )
    return area_codes[0]
