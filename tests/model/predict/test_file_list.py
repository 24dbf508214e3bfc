"""model.predict.file_list: plain lists and TSVs with a path column, read lazily."""

import pytest

from model.predict import file_list


def test_plain_list_skips_blank_and_comment_lines(tmp_path):
    listing = tmp_path / "files.txt"
    listing.write_text("# clips\n/a.wav\n\n  b.mp3  \n")
    assert [(e.path, e.fields) for e in file_list.iter_file_entries(str(listing))] == [
        ("/a.wav", None), ("b.mp3", None)]


def test_a_tsv_gives_paths_in_clips_and_its_fields(tmp_path):
    (tmp_path / "clips").mkdir()
    tsv = tmp_path / "validated.tsv"
    tsv.write_text("client_id\tpath\tgender\nspk1\tx.mp3\tmale\n\nspk2\ty.mp3\t\n")
    entries = list(file_list.iter_file_entries(str(tsv)))
    assert [e.path for e in entries] == [str(tmp_path / "clips" / "x.mp3"), str(tmp_path / "clips" / "y.mp3")]
    assert entries[0].fields["client_id"] == "spk1" and entries[1].fields["gender"] == ""
    tsv.write_text("client_id\tpath\tgender\nspk1\tx.mp3\n")
    with pytest.raises(file_list.FileListError, match="line 2 has 2 fields, the header 3"):
        list(file_list.iter_file_entries(str(tsv)))


def test_the_list_is_read_lazily(tmp_path):
    listing = tmp_path / "files.txt"
    listing.write_bytes(b"ok.wav\n\xff\xfe.wav\n")
    entries = file_list.iter_file_entries(str(listing))
    assert next(entries).path == "ok.wav"  # the bad line is not read yet
    with pytest.raises(file_list.FileListError, match="line 2 is not UTF-8"):
        next(entries)
