"""The district list and matching a typed district name against it."""

from __future__ import annotations

import unicodedata

import pytest

from kbang_egov.rules.districts import (
    District,
    DistrictIndex,
    DistrictListError,
    ascii_slug,
    district_key,
    load_districts,
    match_district,
    strip_diacritics,
)

GIA_LAI = [
    "Thành phố Pleiku",
    "Thị xã An Khê",
    "Thị xã Ayun Pa",
    "Huyện Chư Păh",
    "Huyện Chư Prông",
    "Huyện Chư Pưh",
    "Huyện Chư Sê",
    "Huyện Đak Đoa",
    "Huyện Đak Pơ",
    "Huyện Đức Cơ",
    "Huyện Ia Grai",
    "Huyện Ia Pa",
    "Huyện Kbang",
    "Huyện Kông Chro",
    "Huyện Krông Pa",
    "Huyện Mang Yang",
    "Huyện Phú Thiện",
]


@pytest.fixture(scope="module")
def districts():
    return load_districts()


def test_bundled_list(districts):
    names = [d.name for d in districts]
    assert len(names) == 17
    assert names[0] == "Thành phố Pleiku"
    assert names[-1] == "Huyện Phú Thiện"
    assert names == GIA_LAI
    assert all(unicodedata.is_normalized("NFC", n) for n in names)


@pytest.mark.parametrize(("typed", "expected"), [
    ("Kbang", "Huyện Kbang"),
    ("kbang", "Huyện Kbang"),
    ("HUYỆN KBANG", "Huyện Kbang"),
    ("  Huyện   Kbang ", "Huyện Kbang"),
    (unicodedata.normalize("NFD", "Huyện Kbang"), "Huyện Kbang"),
    ("Đak Đoa", "Huyện Đak Đoa"),
    ("huyện đak đoa", "Huyện Đak Đoa"),
    (unicodedata.normalize("NFD", "Huyện Đak Đoa"), "Huyện Đak Đoa"),
    ("Dak Doa", "Huyện Đak Đoa"),          # no diacritics, unique
    ("TP Pleiku", "Thành phố Pleiku"),
    ("TP. Pleiku", "Thành phố Pleiku"),
    ("Thành phố Pleiku", "Thành phố Pleiku"),
    ("Pleiku", "Thành phố Pleiku"),
    ("Thị xã An Khê", "Thị xã An Khê"),
    ("TX An Khê", "Thị xã An Khê"),
    ("Chư Păh", "Huyện Chư Păh"),
    ("Chu Puh", "Huyện Chư Pưh"),
    ("Đức Cơ", "Huyện Đức Cơ"),
])
def test_match_district(districts, typed, expected):
    d = match_district(typed, districts)
    assert d is not None
    assert d.name == expected


@pytest.mark.parametrize("typed", ["Hà Nội", "", "   ", "Huyện", "Kbang Kbang", "Ia"])
def test_match_district_none(districts, typed):
    assert match_district(typed, districts) is None


def test_ambiguous_without_diacritics_is_none(tmp_path):
    """Two names that differ only in diacritics cannot be told apart without them."""
    p = tmp_path / "d.txt"
    p.write_text("Huyện Chư Pưh\nHuyện Chư Păh\n", encoding="utf-8")
    ds = load_districts(p)
    assert match_district("Chu Puh", ds).name == "Huyện Chư Pưh"  # 'chu puh' vs 'chu pah': still unique
    p.write_text("Huyện Chư Pơ\nHuyện Chư Pố\n", encoding="utf-8")
    ds = load_districts(p)
    assert match_district("Chư Pơ", ds).name == "Huyện Chư Pơ"   # exact still works
    assert match_district("Chu Po", ds) is None                  # but without diacritics it is ambiguous


def test_match_district_unaccented_prefix(districts):
    for typed, expected in [("Huyen Kbang", "Huyện Kbang"), ("Huyen Dak Po", "Huyện Đak Pơ"),
                            ("Thanh pho Pleiku", "Thành phố Pleiku"), ("Thi xa An Khe", "Thị xã An Khê")]:
        d = match_district(typed, districts)
        assert d is not None and d.name == expected, typed


@pytest.mark.parametrize(("name", "slug"), [
    ("Huyện Đak Đoa", "Huyen_Dak_Doa"),
    ("Thành phố Pleiku", "Thanh_pho_Pleiku"),
    ("Huyện Chư Păh", "Huyen_Chu_Pah"),
    ("Huyện Đức Cơ", "Huyen_Duc_Co"),
    ("Thị xã An Khê", "Thi_xa_An_Khe"),
    (unicodedata.normalize("NFD", "Huyện Đak Đoa"), "Huyen_Dak_Doa"),
    ("  Huyện  Kbang! ", "Huyen_Kbang"),
    ("", "don_vi"),
    ("??", "don_vi"),
])
def test_ascii_slug(name, slug):
    assert ascii_slug(name) == slug


def test_slugs_of_bundled_list_are_ascii_and_unique(districts):
    slugs = [d.slug for d in districts]
    assert len(set(slugs)) == 17
    assert all(s.isascii() for s in slugs)
    assert slugs[7] == "Huyen_Dak_Doa"


@pytest.mark.parametrize(("text", "key"), [
    ("Huyện Kbang", "kbang"),
    ("Thành phố Pleiku", "pleiku"),
    ("tp.Pleiku", "pleiku"),
    ("Thị xã An Khê", "an khê"),
    ("H. Kbang", "kbang"),
    ("Kbang", "kbang"),
])
def test_district_key(text, key):
    assert district_key(text) == key


def test_strip_diacritics():
    assert strip_diacritics("Đak Đoa đức") == "Dak Doa duc"
    assert strip_diacritics("Chư Păh Phú Thiện") == "Chu Pah Phu Thien"


def test_duplicate_names_the_line(tmp_path):
    p = tmp_path / "d.txt"
    p.write_text("# list\nHuyện Kbang\n\nKbang\n", encoding="utf-8")
    with pytest.raises(DistrictListError) as exc:
        load_districts(p)
    msg = str(exc.value)
    assert "dòng 4" in msg
    assert "dòng 2" in msg
    assert "'Kbang'" in msg


def test_duplicate_differing_in_case_and_spaces(tmp_path):
    p = tmp_path / "d.txt"
    p.write_text("Huyện Đak Đoa\nHUYỆN   ĐAK ĐOA\n", encoding="utf-8")
    with pytest.raises(DistrictListError, match="dòng 2"):
        load_districts(p)


def test_only_comments(tmp_path):
    p = tmp_path / "d.txt"
    p.write_text("# nothing here\n\n   \n# still nothing\n", encoding="utf-8")
    with pytest.raises(DistrictListError, match="không có tên đơn vị nào"):
        load_districts(p)


def test_missing_file(tmp_path):
    with pytest.raises(DistrictListError, match="không đọc được"):
        load_districts(tmp_path / "none.txt")


def test_not_utf8(tmp_path):
    p = tmp_path / "d.txt"
    p.write_bytes("Huyện Kbang\n".encode("utf-16"))
    with pytest.raises(DistrictListError, match="không phải văn bản UTF-8"):
        load_districts(p)


def test_bom_file_loads(tmp_path):
    p = tmp_path / "d.txt"
    p.write_bytes("\ufeffHuyện Kbang\r\nHuyện Đak Đoa\r\n".encode("utf-8"))
    ds = load_districts(p)
    assert [d.name for d in ds] == ["Huyện Kbang", "Huyện Đak Đoa"]
    assert match_district("kbang", ds).name == "Huyện Kbang"


def test_bom_before_comment(tmp_path):
    p = tmp_path / "d.txt"
    p.write_bytes("\ufeff# comment\nHuyện Kbang\n".encode("utf-8"))
    assert [d.name for d in load_districts(p)] == ["Huyện Kbang"]


def test_custom_list_is_normalised(tmp_path):
    p = tmp_path / "d.txt"
    p.write_text(unicodedata.normalize("NFD", "  Huyện   Kbang  \n"), encoding="utf-8")
    ds = load_districts(p)
    assert [d.name for d in ds] == ["Huyện Kbang"]
    assert unicodedata.is_normalized("NFC", ds[0].name)


def test_index_matches_like_the_list_and_scales(districts):
    """The index answers as match_district over the list does, by key lookup rather than a scan."""
    index = DistrictIndex(districts)
    for typed in ["Huyen Kbang", "TP Pleiku", "chư  păh", "Đà Lạt", "", "Chu Pah"]:
        assert index.match(typed) == match_district(typed, districts), typed
    national = DistrictIndex([District(f"Huyện Số {i}") for i in range(20000)] + districts)
    assert national.match("Huyen So 19999").name == "Huyện Số 19999"
    assert national.match("Kbang").name == "Huyện Kbang"
