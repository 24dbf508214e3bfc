import pytest

from pipeline import common_voice as cv
from pipeline import features

OLD = "client_id\tpath\tsentence\tup_votes\tdown_votes\tage\tgender\taccent\tlocale\tsegment\n"
NEW = (
    "client_id\tpath\tsentence_id\tsentence\tsentence_domain\tup_votes\tdown_votes\tage\tgender\t"
    "accents\tvariant\tlocale\tsegment\n"
)


def parse(text: str, locale_dir: str = "/data/en"):
    return list(cv.parse_validated_tsv(text, locale_dir))


def test_old_schema_with_quotes_and_all_gender_values():
    text = OLD + (
        'a\t1.mp3\tHe said "hi" and \'left\t2\t0\tthirties\tmale\tus\ten\t\n'
        "b\t2.mp3\tx\t2\t0\t\tfemale\t\ten\t\n"
        "c\t3.mp3\tx\t2\t0\t\t\t\ten\t\n"
        "d\t4.mp3\tx\t2\t0\t\tother\t\ten\t\n"
    )
    items = parse(text)
    clips = [i for i in items if isinstance(i, cv.Clip)]
    assert [(c.clip_id, c.label, c.age, c.accent) for c in clips] == [
        ("en/1.mp3", features.MALE, "thirties", "us"),
        ("en/2.mp3", features.FEMALE, "", ""),
    ]
    assert clips[0].audio_path == "/data/en/clips/1.mp3" and clips[0].speaker_id == "a"
    assert [(r.item, r.reason) for r in items if isinstance(r, cv.Rejection)] == [
        ("en/3.mp3", cv.GENDER_BLANK),
        ("en/4.mp3", "gender_other"),
    ]


def test_new_schema_crlf_and_non_binary_values():
    rows = [
        ("a", "1.mp3", "male_masculine"),
        ("b", "2.mp3", "female_feminine"),
        ("c", "3.mp3", "intersex"),
        ("d", "4.mp3", "transgender"),
        ("e", "5.mp3", "non-binary"),
        ("f", "6.mp3", "do_not_wish_to_say"),
        ("g", "7.mp3", "unexpected"),
    ]
    text = NEW.replace("\n", "\r\n") + "".join(
        f"{c}\t{p}\tsid\tA \"quoted\" sentence\tgeneral\t2\t0\t\t{g}\tindia\t\tde\t\r\n" for c, p, g in rows
    )
    items = parse(text, "gs://bucket/cv/de/")
    clips = [i for i in items if isinstance(i, cv.Clip)]
    assert [(c.clip_id, c.label, c.accent) for c in clips] == [
        ("de/1.mp3", features.MALE, "india"),
        ("de/2.mp3", features.FEMALE, "india"),
    ]
    assert clips[0].audio_path == "gs://bucket/cv/de/clips/1.mp3"
    reasons = [r.reason for r in items if isinstance(r, cv.Rejection)]
    assert reasons == [
        "gender_intersex", "gender_transgender", "gender_non_binary", "gender_do_not_wish_to_say",
        cv.GENDER_UNKNOWN,
    ]


def test_malformed_rows_are_rejected_with_their_line():
    text = OLD + "short\trow\n" + "\t5.mp3\tx\t2\t0\t\tmale\t\ten\t\n" + "\n"
    items = parse(text)
    assert [(r.item, r.reason) for r in items] == [
        ("/data/en/validated.tsv:2", cv.MALFORMED_ROW),
        ("/data/en/validated.tsv:3", cv.MALFORMED_ROW),
    ]


@pytest.mark.parametrize("text", ["", "client_id\tpath\tsentence\n"])
def test_tsv_without_needed_columns_is_one_rejection(text):
    items = parse(text + "a\tb\tc\n" if text else text)
    assert len(items) == 1 and items[0].reason == cv.MISSING_COLUMNS
    assert items[0].item == "/data/en/validated.tsv"


def test_official_split_tsv_lists_clip_ids():
    assert list(cv.parse_split_tsv(OLD + "a\t1.mp3\tx\t2\t0\t\tmale\t\ten\t\n", "/d/en")) == ["en/1.mp3"]


def test_speaker_split_is_stable_seeded_and_follows_fractions():
    speakers = [f"speaker-{i}" for i in range(4000)]
    splits = [cv.speaker_split(s, 7, (0.8, 0.1, 0.1)) for s in speakers]
    assert splits == [cv.speaker_split(s, 7, (0.8, 0.1, 0.1)) for s in speakers]
    assert splits != [cv.speaker_split(s, 8, (0.8, 0.1, 0.1)) for s in speakers]
    share = {s: splits.count(s) / len(splits) for s in features.SPLITS}
    assert share["train"] == pytest.approx(0.8, abs=0.03)
    assert share["validation"] == pytest.approx(0.1, abs=0.02)
    assert share["test"] == pytest.approx(0.1, abs=0.02)


@pytest.mark.parametrize("path, outside", [
    ("common_voice_en_1.mp3", False), ("sub/dir/a.mp3", False), ("a..b.mp3", False),
    ("../x.wav", True), ("../../etc/passwd", True), ("/etc/passwd", True), ("sub/../../x.mp3", True),
    ("gs://other/x.mp3", True), ("C:\\x.mp3", True), ("..", True),
])
def test_tsv_paths_must_stay_inside_clips(path, outside):
    assert cv.escapes_clips_dir(path) is outside
    text = "client_id\tpath\tgender\nspk\t" + path + "\tmale\n"
    [item] = list(cv.parse_validated_tsv(text, "/data/en"))
    assert isinstance(item, cv.Rejection) is outside
    if outside:
        assert item.reason == cv.PATH_OUTSIDE_CLIPS and item.item == "/data/en/validated.tsv:2"


def test_an_empty_path_or_client_id_is_named_as_such():
    text = OLD + "a\t\tx\t2\t0\t\tmale\t\ten\t\n" + "\tb.mp3\tx\t2\t0\t\tmale\t\ten\t\n"
    assert [r.detail for r in parse(text)] == ["line 2: the path field is empty", "line 3: the client_id field is empty"]


def test_a_latin1_byte_costs_its_row_only():
    import io

    good = "a\t1.mp3\tx\t2\t0\t\tmale\t\ten\t\n"
    data = (OLD + good).encode() + "b\t2.mp3\tcaf\xe9\t2\t0\t\tfemale\t\ten\t\n".encode("latin-1") + good.replace(
        "1.mp3", "3.mp3").encode()
    items = list(cv.parse_validated_tsv(io.BytesIO(data), "/data/en"))
    assert [i.clip_id for i in items if isinstance(i, cv.Clip)] == ["en/1.mp3", "en/3.mp3"]
    [bad] = [i for i in items if isinstance(i, cv.Rejection)]
    assert (bad.item, bad.reason) == ("/data/en/validated.tsv:3", cv.MALFORMED_ROW)
    assert bad.detail == "line 3: not UTF-8 text (byte 0xe9 at column 12)"


def test_lines_are_read_with_a_bound(monkeypatch):
    import io

    monkeypatch.setattr(cv, "MAX_LINE_BYTES", 1000)
    data = (OLD + "a\t1.mp3\t" + "y" * 5000 + "\t2\t0\t\tmale\t\ten\t\n" + "b\t2.mp3\tx\t2\t0\t\tfemale\t\ten\t\n").encode()

    class Counting(io.BytesIO):
        largest = 0

        def readline(self, size=-1):
            line = super().readline(size)
            Counting.largest = max(Counting.largest, len(line))
            return line

    items = list(cv.parse_validated_tsv(Counting(data), "/data/en"))
    assert Counting.largest <= 1001  # never more than one bounded piece of a line in memory
    assert [(type(i).__name__, getattr(i, "detail", "")) for i in items] == [
        ("Rejection", "line 2: 5,024 bytes long, over the 1,000 a row may have"), ("Clip", "")]
    # A file with no newline at all is one over-long line, read in bounded pieces.
    assert [r.reason for r in cv.parse_validated_tsv(Counting(OLD.encode() + b"z" * 10_000), "/d/en")] == [
        cv.MALFORMED_ROW]


def test_without_a_gender_column_labelling_treats_every_row_as_unlabelled():
    text = "client_id\tpath\nspk\ta.mp3\n"
    [clip] = list(cv.parse_validated_tsv(text, "/data/en", include_unlabelled=True))
    assert clip.label == features.UNLABELLED and clip.clip_id == "en/a.mp3"
    [rejection] = list(cv.parse_validated_tsv(text, "/data/en"))
    assert rejection.reason == cv.MISSING_COLUMNS and "no column(s) gender" in rejection.detail


def test_a_split_tsv_without_a_usable_header_is_one_rejection_and_bad_lines_are_listed():
    import io

    [missing] = list(cv.parse_split_tsv("client_id\tsentence\na\tb\n", "/d/en", "dev.tsv"))
    assert (missing.item, missing.reason) == ("/d/en/dev.tsv", cv.MISSING_COLUMNS)
    [unreadable] = list(cv.parse_split_tsv(io.BytesIO(b"\xffpath\na.mp3\n"), "/d/en", "test.tsv"))
    assert (unreadable.item, unreadable.reason) == ("/d/en/test.tsv", cv.UNREADABLE_TSV)
    assert unreadable.detail == "the header: line 1: not UTF-8 text (byte 0xff at column 1)"
    items = list(cv.parse_split_tsv(io.BytesIO(b"path\na.mp3\ncaf\xe9.mp3\n"), "/d/en", "train.tsv"))
    assert items[0] == "en/a.mp3" and (items[1].item, items[1].reason) == ("/d/en/train.tsv:3", cv.MALFORMED_ROW)
    [empty] = list(cv.parse_split_tsv("", "/d/en", "train.tsv"))
    assert empty.reason == cv.MISSING_COLUMNS


def test_a_validated_tsv_whose_header_is_not_utf8_says_so():
    import io

    [item] = list(cv.parse_validated_tsv(io.BytesIO(b"client_id\tpath\tgend\xe9r\nx\ty.mp3\tmale\n"), "/d/en"))
    assert (item.item, item.reason) == ("/d/en/validated.tsv", cv.UNREADABLE_TSV)
    assert "not UTF-8" in item.detail
