"""pipeline.attributes: attribute TSVs found beside validated.tsv, keyed by the job's clip ids."""

import pytest

from pipeline import attributes

HEADER = "client_id\tpath\tsentence\tup_votes\tdown_votes\tage\tgender\taccents\tlocale\tsegment\n"


def _locale(root, name, emotion_rows=None, extra=None):
    folder = root / name
    (folder / "clips").mkdir(parents=True)
    (folder / "validated.tsv").write_text(HEADER + "c1\ta.mp3\thi\t2\t0\t\tmale_masculine\t\tam\t\n")
    (folder / "train.tsv").write_text(HEADER)  # Common Voice's own TSV: never an attribute table
    if emotion_rows is not None:
        (folder / "emotion.tsv").write_text("path\temotion\tspeaker\n" + "".join(emotion_rows))
    for filename, text in (extra or {}).items():
        (folder / filename).write_text(text)
    return folder


def test_tables_beside_validated_tsv_are_found_for_a_root_or_a_locale(tmp_path):
    am = _locale(tmp_path, "am-ased", ["a.mp3\tangry\t01\n", "b.mp3\tsad\t02\n"],
                 {"notes.tsv": "what\twhy\nx\ty\n"})  # no path column: not an attribute table
    _locale(tmp_path, "pl", ["c.mp3\thappy\t01\n"], {"mic.tsv": "path\tmicrophone\nc.mp3\tphone\n"})
    assert attributes.attribute_tsvs(str(am)) == [str(am / "emotion.tsv")]
    table = attributes.load_attributes([str(tmp_path)])
    assert table == {"am-ased/a.mp3": {"emotion": "angry"}, "am-ased/b.mp3": {"emotion": "sad"},
                     "pl/c.mp3": {"emotion": "happy", "microphone": "phone"}}
    assert attributes.load_attributes([str(am)]) == {k: v for k, v in table.items() if k.startswith("am-ased/")}


def test_explicit_tables_add_to_found_ones_and_blank_values_are_left_out(tmp_path):
    _locale(tmp_path, "en", ["a.mp3\tangry\t01\n", "b.mp3\t\t01\n"])
    extra = tmp_path / "elsewhere" / "en"
    extra.mkdir(parents=True)
    (extra / "loud.tsv").write_text("speaker\tpath\tlevel\n01\ta.mp3\tquiet\n")
    table = attributes.load_attributes([str(tmp_path)], [str(extra / "loud.tsv")])
    assert table["en/a.mp3"] == {"emotion": "angry", "level": "quiet"}
    assert table["en/b.mp3"] == {}  # listed, but its only attribute is blank
    columns = attributes.attribute_columns(table, ["en/b.mp3", "en/a.mp3", "en/zzz.mp3"])
    assert columns == {"emotion": ["(none)", "angry", "(none)"], "level": ["(none)", "quiet", "(none)"]}


def test_a_table_without_path_or_attribute_columns_is_named_in_the_error(tmp_path):
    (tmp_path / "en").mkdir()
    no_path = tmp_path / "en" / "a.tsv"
    no_path.write_text("clip\temotion\nx\ty\n")
    with pytest.raises(attributes.AttributeTableError, match=r"a\.tsv: no 'path' column"):
        attributes.read_attribute_tsv(str(no_path))
    only_ids = tmp_path / "en" / "b.tsv"
    only_ids.write_text("path\tspeaker\nx.mp3\t01\n")
    with pytest.raises(attributes.AttributeTableError, match=r"b\.tsv: no attribute column"):
        attributes.read_attribute_tsv(str(only_ids))
