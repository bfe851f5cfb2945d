"""Tests for labor_encoders.taxonomy on small files written in tmp_path, plus the shared ESCO data."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from labor_encoders.taxonomy import Taxonomy, TaxonomyError, load_esco_skills, load_taxonomy, write_taxonomy

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OCCUPATIONS = SHARED_DATA / "esco" / "occupations_en.csv"
SKILLSPAN_LABELS = SHARED_DATA / "skillspan-esco" / "skills_en_label.txt"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8", newline="")
    return path


def test_csv_with_all_columns(tmp_path: Path) -> None:
    path = write(
        tmp_path / "skills.csv",
        "\ufeffid,label,alt_labels,description\n"
        'S1,  Python  ,"python programming\npython coding\n",A language.\n'
        "S2,SQL,structured query language|SQL| sql ,\n"
        "S3,Welding,,Joining metal.\n",
    )
    taxonomy = load_taxonomy(path)
    assert taxonomy == Taxonomy(
        labels=["Python", "SQL", "Welding"],
        ids=["S1", "S2", "S3"],
        alt_labels=[["python programming", "python coding"], ["structured query language", "sql"], []],
        descriptions=["A language.", "", "Joining metal."],
        name="skills",
    )
    assert len(taxonomy) == 3


def test_tsv(tmp_path: Path) -> None:
    path = write(tmp_path / "skills.tsv", "label\tid\nteam work\tT1\ncommunication, oral\tT2\n")
    taxonomy = load_taxonomy(path, name="mine")
    assert taxonomy.labels == ["team work", "communication, oral"]
    assert taxonomy.ids == ["T1", "T2"]
    assert taxonomy.alt_labels == [[], []]
    assert taxonomy.name == "mine"


def test_jsonl_with_list_alt_labels(tmp_path: Path) -> None:
    records = [
        {"uri": "u1", "skill": "Python", "alt_labels": ["py", " python3 ", "", "Python"], "description": "x"},
        {"uri": "u2", "skill": "Git", "alt_labels": "git scm|github"},
    ]
    text = "\n".join(json.dumps(r) for r in records[:1]) + "\n\n" + json.dumps(records[1]) + "\n"
    taxonomy = load_taxonomy(write(tmp_path / "skills.ndjson", text))
    assert taxonomy.labels == ["Python", "Git"]
    assert taxonomy.ids == ["u1", "u2"]
    assert taxonomy.alt_labels == [["py", "python3"], ["git scm", "github"]]
    assert taxonomy.descriptions == ["x", ""]


def test_txt_skips_blank_lines_and_uses_labels_as_ids(tmp_path: Path) -> None:
    taxonomy = load_taxonomy(write(tmp_path / "labels.txt", "manage staff\n\n   \n  use a lathe \r\nbake bread"))
    assert taxonomy.labels == ["manage staff", "use a lathe", "bake bread"]
    assert taxonomy.ids == taxonomy.labels
    assert taxonomy.alt_labels == [[], [], []]
    assert taxonomy.descriptions == ["", "", ""]


def test_format_argument_overrides_suffix(tmp_path: Path) -> None:
    path = write(tmp_path / "skills.data", "label\tid\nwelding\tW\n")
    assert load_taxonomy(path, format="tsv").ids == ["W"]
    with pytest.raises(TaxonomyError, match=r"unknown suffix '\.data'.*--format"):
        load_taxonomy(path)


def test_esco_export_columns_are_detected(tmp_path: Path) -> None:
    path = write(
        tmp_path / "esco.csv",
        "conceptType,conceptUri,preferredLabel,altLabels,description\n"
        'KnowledgeSkillCompetence,http://e/s/1,manage staff,"lead staff\nsupervise staff",Managing.\n'
        "KnowledgeSkillCompetence,http://e/s/2,bake bread,,\n",
    )
    taxonomy = load_taxonomy(path)
    assert taxonomy.labels == ["manage staff", "bake bread"]
    assert taxonomy.ids == ["http://e/s/1", "http://e/s/2"]
    assert taxonomy.alt_labels == [["lead staff", "supervise staff"], []]
    assert taxonomy.descriptions == ["Managing.", ""]


def test_detection_falls_back_to_case_insensitive_names(tmp_path: Path) -> None:
    taxonomy = load_taxonomy(write(tmp_path / "t.csv", "ID,Title,ALTLABELS\n7,Baker,bread maker\n"))
    assert (taxonomy.labels, taxonomy.ids, taxonomy.alt_labels) == (["Baker"], ["7"], [["bread maker"]])
    exact_first = load_taxonomy(write(tmp_path / "u.csv", "LABEL,preferredLabel\nx,Baker\n"))
    assert exact_first.labels == ["Baker"]


def test_explicit_columns_and_separator(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "label,code,term,syn,notes\nignored,C1,Baking,bread; cakes,Oven work\n")
    taxonomy = load_taxonomy(
        path,
        label_column="term",
        id_column="code",
        alt_labels_column="syn",
        description_column="notes",
        alt_labels_separator=";",
    )
    assert taxonomy.labels == ["Baking"]
    assert taxonomy.ids == ["C1"]
    assert taxonomy.alt_labels == [["bread", "cakes"]]
    assert taxonomy.descriptions == ["Oven work"]


def test_unknown_column_error_lists_available_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "conceptUri,preferredLabel,altLabels\nu,baking,\n")
    with pytest.raises(TaxonomyError) as info:
        load_taxonomy(path, label_column="prefLabel")
    message = str(info.value)
    assert f"column 'prefLabel' not found in {path}" in message
    assert "available columns: conceptUri, preferredLabel, altLabels" in message
    assert "did you mean 'preferredLabel'?" in message
    with pytest.raises(TaxonomyError, match="column 'notes' not found.*--description-column"):
        load_taxonomy(path, description_column="notes")


def test_missing_label_column_names_the_flag(tmp_path: Path) -> None:
    with pytest.raises(TaxonomyError) as info:
        load_taxonomy(write(tmp_path / "t.csv", "code,term\nC1,Baking\n"))
    message = str(info.value)
    assert "available columns: code, term" in message
    assert "--label-column" in message


def test_empty_labels_are_skipped_with_one_warning(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", 'id,label,alt_labels\n1,baking,"a\nb"\n2,,"c\nd"\n3,   \n\n4,welding\n')
    with pytest.warns(UserWarning) as record:
        taxonomy = load_taxonomy(path)
    assert len(record) == 1
    assert record[0].filename == __file__  # the warning points at the caller
    assert "skipped 2 rows with an empty label" in str(record[0].message)
    assert "(lines 4, 6)" in str(record[0].message)  # the lines where the rows start
    assert taxonomy.labels == ["baking", "welding"]
    assert taxonomy.ids == ["1", "4"]


def test_duplicates_are_merged_with_one_warning(tmp_path: Path) -> None:
    path = write(
        tmp_path / "t.csv",
        "id,label,alt_labels\na,baking,bread|cakes\nb,welding,\nc, baking ,cakes|pastry|baking\n"
        "d,welding,arc welding\n",
    )
    with pytest.warns(UserWarning) as record:
        taxonomy = load_taxonomy(path)
    assert len(record) == 1
    message = str(record[0].message)
    assert "merged 2 duplicate labels" in message
    assert "'baking' (line 4)" in message
    assert "'welding' (line 5)" in message
    assert taxonomy.labels == ["baking", "welding"]
    assert taxonomy.ids == ["a", "b"]
    assert taxonomy.alt_labels == [["bread", "cakes", "pastry"], ["arc welding"]]


def test_shared_ids_are_allowed_with_a_warning(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "id,label\nX,baking\nX,bread making\nY,welding\n")
    with pytest.warns(UserWarning, match=r"1 ids .* shared by different labels: 'X' \('baking', 'bread making'\)"):
        taxonomy = load_taxonomy(path)
    assert taxonomy.ids == ["X", "X", "Y"]


def test_clean_file_gives_no_warning(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(load_taxonomy(write(tmp_path / "t.csv", "label\na\nb\n"))) == 2


def test_all_empty_labels_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TaxonomyError, match="no non-empty labels in column 'label'"):
        load_taxonomy(write(tmp_path / "t.csv", "id,label\n1,\n2,  \n"))


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    with pytest.raises(TaxonomyError, match="taxonomy file not found") as info:
        load_taxonomy(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"label": "baking"', "line 3: invalid JSON"),
        ('["baking"]', "line 3: expected a JSON object, got a list"),
    ],
)
def test_bad_jsonl_line_is_reported_with_its_number(tmp_path: Path, line: str, expected: str) -> None:
    path = write(tmp_path / "t.jsonl", '{"label": "welding"}\n\n' + line + "\n")
    with pytest.raises(TaxonomyError, match=expected):
        load_taxonomy(path)


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("t.csv", "id,label,alt_labels\n", "has a header but no rows"),
        ("t.tsv", "id\tlabel\n\n", "has a header but no rows"),
        ("t.csv", "", "is empty"),
        ("t.jsonl", "\n \n", "is empty"),
        ("t.txt", "\n  \n", "is empty"),
    ],
)
def test_header_only_or_empty_file_is_an_error(tmp_path: Path, name: str, text: str, expected: str) -> None:
    with pytest.raises(TaxonomyError, match=expected):
        load_taxonomy(write(tmp_path / name, text))


def test_row_with_too_many_cells_suggests_another_format(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", 'label\n"multi\nline"\nbaking, bread\n')
    with pytest.raises(TaxonomyError, match=r"line 4: 2 cells but the header has 1; wrong delimiter\?.*tsv"):
        load_taxonomy(path)


def test_round_trip_through_write_taxonomy(tmp_path: Path) -> None:
    original = Taxonomy(
        labels=["baking", "welding, arc", 'say "hi"', "café"],
        ids=["B", "W", "H", "C"],
        alt_labels=[["bread making", "cake | pastry making"], ["a|b"], [], ["coffee house"]],
        descriptions=["Line one.\nLine two.", "", "Quotes, commas", ""],
        name="round trip",
    )
    path = tmp_path / "out" / "taxonomy.csv"
    write_taxonomy(original, path)
    assert path.read_text(encoding="utf-8").splitlines()[0] == "id,label,alt_labels,description"
    assert load_taxonomy(path, name="round trip") == original


def test_subset(tmp_path: Path) -> None:
    taxonomy = load_taxonomy(write(tmp_path / "t.csv", "id,label,alt_labels\n1,a,x\n2,b,\n3,c,z\n"))
    part = taxonomy.subset([2, 0])
    assert part == Taxonomy(["c", "a"], ["3", "1"], [["z"], ["x"]], ["", ""], "t")
    part.alt_labels[0].append("changed")
    assert taxonomy.alt_labels[2] == ["z"]


def test_mismatched_lengths_are_rejected() -> None:
    with pytest.raises(ValueError, match="same length"):
        Taxonomy(labels=["a", "b"], ids=["a"], alt_labels=[[], []], descriptions=["", ""], name="bad")


@pytest.mark.skipif(not OCCUPATIONS.is_file(), reason=f"shared data not installed: {OCCUPATIONS}")
def test_real_esco_occupations() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        taxonomy = load_taxonomy(OCCUPATIONS, label_column="preferredLabel")
    assert len(taxonomy) == 2942
    assert all(i.startswith("http://data.europa.eu/esco/occupation/") for i in taxonomy.ids)
    assert sum(bool(alts) for alts in taxonomy.alt_labels) > 0.9 * len(taxonomy)
    assert all("\n" not in alt for alts in taxonomy.alt_labels for alt in alts)
    assert all(taxonomy.descriptions)


@pytest.mark.skipif(not SKILLSPAN_LABELS.is_file(), reason=f"shared data not installed: {SKILLSPAN_LABELS}")
def test_real_skillspan_label_list() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the file has neither blank lines nor duplicates
        taxonomy = load_taxonomy(SKILLSPAN_LABELS)
    assert len(taxonomy) == 13896
    assert taxonomy.ids == taxonomy.labels
    assert all(label == label.strip() for label in taxonomy.labels)


def test_load_esco_skills_from_path(tmp_path: Path) -> None:
    path = write(tmp_path / "skills.csv", "id,label,alt_labels,description\nu1,bake bread,bread | cake,Bakes.\n")
    taxonomy = load_esco_skills(path)
    assert taxonomy.name == "ESCO v1.2 skills"
    assert taxonomy.alt_labels == [["bread | cake"]]  # ESCO alt labels are newline-separated only


def _esco_skills_asset() -> tuple[bool, str]:
    """Whether the ESCO skills asset is installed (this test never downloads), and why not."""
    try:
        from labor_encoders.assets import ESCO_SKILLS, asset_status

        status = asset_status()[ESCO_SKILLS]
    except Exception as err:  # the assets module may be missing or unfinished
        return False, f"labor_encoders.assets is not usable ({type(err).__name__}: {err})"
    return status["installed"], f"ESCO skills asset not installed ({status['detail']}); run labor-encoders setup"


ESCO_INSTALLED, ESCO_REASON = _esco_skills_asset()


@pytest.mark.real_weights
@pytest.mark.skipif(not ESCO_INSTALLED, reason=ESCO_REASON)
def test_load_esco_skills_default() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        taxonomy = load_esco_skills()
    assert taxonomy.name == "ESCO v1.2 skills"
    assert len(taxonomy) == 13939
    assert all(i.startswith("http://data.europa.eu/esco/skill/") for i in taxonomy.ids)
    assert sum(bool(alts) for alts in taxonomy.alt_labels) > len(taxonomy) // 2
