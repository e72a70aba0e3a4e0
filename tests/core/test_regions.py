from __future__ import annotations

import pytest

from poshub.core.regions import Region, RegionError, find, lookup, resolve_area_code


def test_lookup_uses_the_current_name() -> None:
    region = lookup("340104")
    assert region == Region(code="340104", province="安徽省", county="蜀山区")
    assert region.area_code == "3401"


def test_lookup_unknown_abolished_and_malformed_codes() -> None:
    assert lookup("999999") is None
    # 崇文区 was merged into 东城区 in 2010.
    assert lookup("110103") is None
    # 市辖区 is a heading in the code table, not a place.
    assert lookup("340101") is None
    assert lookup("3401") is None
    assert lookup("abcdef") is None


def test_lookup_tolerates_full_width_digits_and_spaces() -> None:
    assert lookup(" ３４０１０４ ") == lookup("340104")


def test_find_tolerates_missing_province_suffix() -> None:
    assert find("安徽", "蜀山区") == find("安徽省", "蜀山区") == [lookup("340104")]
    assert [r.code for r in find("广西", "青秀区")] == ["450103"]
    assert [r.code for r in find("内蒙古", "新城区")] == ["150102"]


def test_find_does_not_cross_provinces() -> None:
    # 长春 also has a 朝阳区, in 吉林省.
    assert [r.code for r in find("北京市", "朝阳区")] == ["110105"]
    assert [r.code for r in find("吉林", "朝阳区")] == ["220104"]


def test_find_simplified_names_where_the_data_is_traditional() -> None:
    assert [r.code for r in find("黑龙江省", "加格达奇区")] == ["232761"]


def test_find_undivided_prefecture_city() -> None:
    assert [r.code for r in find("广东省", "东莞市")] == ["441900"]
    assert resolve_area_code("广东省", "东莞市", None) == "4419"


def test_resolve_by_name() -> None:
    assert resolve_area_code("安徽省", "蜀山区", None) == "3401"
    assert resolve_area_code("北京市", "朝阳区", None) == "1101"
    assert resolve_area_code("北京", "朝阳区", "") == "1101"


def test_resolve_ignores_stale_hubei_rows() -> None:
    assert resolve_area_code("湖北省", "随州市", None) == "4213"
    assert resolve_area_code("湖北省", "神农架林区", None) == "4290"


def test_resolve_by_region_code_wins_over_unknown_district() -> None:
    # Development zones are not GB/T 2260 units: the merchant picks the county.
    assert resolve_area_code("安徽省", "高新区", "340104") == "3401"


def test_unknown_district() -> None:
    with pytest.raises(RegionError) as info:
        resolve_area_code("安徽省", "高新区", None)
    assert info.value.code == "address.district.unknown"
    assert info.value.params == {"province": "安徽省", "district": "高新区"}


def test_unknown_region_code() -> None:
    with pytest.raises(RegionError) as info:
        resolve_area_code("安徽省", "蜀山区", "999999")
    assert info.value.code == "address.region_code.unknown"
    assert info.value.params == {"region_code": "999999"}


def test_region_code_in_another_province() -> None:
    with pytest.raises(RegionError) as info:
        resolve_area_code("安徽省", "朝阳区", "110105")
    assert info.value.code == "address.region_code.mismatch"
    assert info.value.params == {"region_code": "110105", "province": "安徽省"}


def test_ambiguous_district() -> None:
    # 南京 and 徐州 both have a 鼓楼区.
    with pytest.raises(RegionError) as info:
        resolve_area_code("江苏省", "鼓楼区", None)
    assert info.value.code == "address.district.ambiguous"
    assert "320106" in info.value.params["candidates"]
    assert "320302" in info.value.params["candidates"]
    assert "南京市" in info.value.params["candidates"]
    assert resolve_area_code("江苏省", "鼓楼区", "320302") == "3203"


def test_same_name_with_same_area_code_is_not_ambiguous() -> None:
    assert len({r.area_code for r in find("福建", "鼓楼区")}) == 1
    assert resolve_area_code("福建省", "鼓楼区", None) == "3501"
