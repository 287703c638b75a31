"""`musebridge data build`: cache, failure log, splits by tune, windows, the CLI."""

from __future__ import annotations

import os
from pathlib import Path

import mido
import numpy as np
import pytest

from musebridge.cli import main
from musebridge.core.music import Meter
from musebridge.models.data import (
    TuneDataset,
    melody_windows,
    roll_phrase_windows,
    roll_windows,
    split_of,
    tone_windows,
    tune_windows,
)
from musebridge.models.data.build import FAILURE_LOG_NAME, build_dataset, plan_sources
from musebridge.models.data.genres import GenreSpec
from musebridge.models.data.tunes import Tune, make_bars, make_notes
from musebridge.models.encoding import melody


def write_scale(path: Path, first_pitch: int, bars: int = 4) -> None:
    """A 4/4 file of quarter notes rising from first_pitch, `bars` bars long."""
    midi = mido.MidiFile(ticks_per_beat=96)
    track = mido.MidiTrack([mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0)])
    for step in range(bars * 4):
        track.append(mido.Message("note_on", note=first_pitch + step, velocity=40 + step, time=0))
        track.append(mido.Message("note_off", note=first_pitch + step, velocity=0, time=96))
    midi.tracks.append(track)
    midi.save(path)


@pytest.fixture()
def midi_folder(tmp_path) -> Path:
    folder = tmp_path / "jazz"
    (folder / "sub").mkdir(parents=True)
    write_scale(folder / "a.mid", 48)
    write_scale(folder / "sub" / "b.mid", 60, bars=6)
    (folder / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06not midi at all")
    (folder / "notes.txt").write_text("not a midi file, not listed")
    return folder


def test_build_logs_a_corrupt_file_goes_on_and_second_build_uses_the_cache(tmp_path, midi_folder):
    sources = plan_sources({}, midi_dirs=[("jazz", midi_folder)])
    assert sorted(s.source for s in sources) == ["jazz/a.mid", "jazz/broken.mid", "jazz/sub/b.mid"]
    cache = tmp_path / "cache"
    first = build_dataset(sources, cache, jobs=1, progress=False)
    assert first.tunes == 2 and first.notes == 16 + 24 and first.files_from_cache == 0
    assert len(first.failed_files) == 1 and "jazz/broken.mid" in first.failed_files[0]
    log = (cache / FAILURE_LOG_NAME).read_text()
    assert log.startswith("1 of 3 files failed to parse") and "jazz/broken.mid" in log

    built = (cache / "dataset.npz").stat().st_mtime_ns
    second = build_dataset(sources, cache, jobs=1, progress=False)  # nothing changed: nothing to do
    assert second.up_to_date and second.files_from_cache == 3 and second.files_parsed == 0
    assert second.tunes == 2 and len(second.failed_files) == 1
    assert (cache / "dataset.npz").stat().st_mtime_ns == built
    data = TuneDataset.load(cache)
    assert data.genres == ("jazz",) and data.info["failed_files"] == 1 and data.info["files"] == 3
    assert sorted(t.source_id for t in data.tunes) == ["jazz/a.mid", "jazz/sub/b.mid"]
    a = next(t for t in data.tunes if t.source_id == "jazz/a.mid")
    assert a.notes["velocity"].tolist() == list(range(40, 56))

    later = os.stat(midi_folder / "a.mid").st_mtime_ns + 10**9
    os.utime(midi_folder / "a.mid", ns=(later, later))
    third = build_dataset(sources, cache, jobs=2, progress=False)  # the pool path, the file's batch re-parsed
    assert not third.up_to_date and third.files_from_cache == 0 and third.tunes == 2
    assert third.files_per_second > 0


def test_build_from_the_corpus_with_a_limit(tmp_path):
    genres = {"chorale": GenreSpec("chorale", corpus=("bach",))}
    sources = plan_sources(genres, limit=2)
    assert len(sources) == 2 and all(s.source.startswith("bach/") for s in sources)
    report = build_dataset(sources, tmp_path, jobs=1, progress=False)
    assert report.tunes == 2 and report.failed_files == []
    with pytest.raises(ValueError, match="unknown genre"):
        plan_sources(genres, ["jazz"])


def test_split_is_stable_by_tune_and_about_80_10_10():
    ids = [f"essenFolksong/file{i // 300}.abc#{i}" for i in range(20000)]
    splits = [split_of(i) for i in ids]
    assert splits == [split_of(i) for i in ids]
    shares = {s: splits.count(s) / len(ids) for s in ("train", "valid", "test")}
    assert shares["train"] == pytest.approx(0.8, abs=0.015)
    assert shares["valid"] == pytest.approx(0.1, abs=0.01)
    assert shares["test"] == pytest.approx(0.1, abs=0.01)
    assert split_of("bach/bwv1.6.mxl") == split_of("bach/bwv1.6.mxl")


def synthetic_tune(source_id: str = "x#1", genre: str = "folk") -> Tune:
    """Pickup (1 beat of 4/4), 3 bars 4/4, 2 bars 3/4, then 2 bars of 2/4; a note on every beat."""
    bars = [(0.0, 1.0, 4, 4), (1.0, 4.0, 4, 4), (5.0, 4.0, 4, 4), (9.0, 4.0, 4, 4)]
    bars += [(13.0, 3.0, 3, 4), (16.0, 3.0, 3, 4), (19.0, 2.0, 2, 4), (21.0, 2.0, 2, 4)]
    notes = [(60 + (b % 12), 80, float(b), 1.0) for b in range(23)]
    return Tune(source_id, "test", genre, notes=make_notes(notes), bars=make_bars(bars))


def test_windows_are_whole_bars_of_one_meter():
    tune = synthetic_tune()
    assert [(i, s, str(m)) for i, s, m in tune_windows(tune, 2)] == [
        (1, 1.0, "4/4"),
        (2, 5.0, "4/4"),
        (4, 13.0, "3/4"),
        (6, 19.0, "2/4"),
    ]
    assert [s for _i, s, _m in tune_windows(tune, 2, hop_bars=2)] == [1.0, 13.0, 19.0]
    assert tune_windows(tune, 4) == []
    # 2/4 regrouped into 4/4: two 2/4 bars make one 4/4 bar
    regrouped = tune_windows(tune, 1, meter=Meter(4, 4), regroup=True)
    assert [(i, s) for i, s, _m in regrouped] == [(1, 1.0), (2, 5.0), (3, 9.0), (6, 19.0)]
    assert all(m == Meter(4, 4) for _i, _s, m in regrouped)
    assert [s for _i, s, _m in tune_windows(tune, 1, meter=Meter(3, 4))] == [13.0, 16.0]


def test_melody_windows_never_mix_splits_and_encode_the_tune():
    tunes = [synthetic_tune(f"tune#{i}", genre="folk" if i % 2 else "celtic") for i in range(40)]
    data = TuneDataset(tunes)
    seen = {}
    for split in ("train", "valid", "test"):
        windows = melody_windows(data, bars=2, split=split, min_notes=1)
        assert windows.tokens.shape == (len(windows), 32)
        for tune_index in windows.tune_index.tolist():
            assert data.splits[tune_index] == split
            assert seen.setdefault(tune_index, split) == split
    train = melody_windows(data, bars=2, split="train", min_notes=1)
    assert len(train) == 2 * data.splits.count("train")
    expected = np.array([61 - 19, 0, 0, 0, 62 - 19, 0, 0, 0, 63 - 19, 0, 0, 0, 64 - 19, 0, 0, 0])
    assert np.array_equal(train.tokens[0][:16], expected)  # the bar after the pickup
    assert set(train.genre.tolist()) <= {0, 1} and train.genres == ("celtic", "folk")
    decoded = melody.decode_tokens(train.tokens[0])
    assert decoded.bars == 2 and len(decoded.notes) == 8
    with pytest.raises(ValueError, match="not in this dataset"):
        melody_windows(data, genres=["jazz"])


def test_cli_build_and_info(tmp_path, midi_folder, capsys):
    cache = tmp_path / "cli-cache"
    args = ["data", "build", "--genre", "jazz", "--midi-dir", f"jazz={midi_folder}", "--cache", str(cache)]
    assert main([*args, "--jobs", "1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "2 tunes" in out and "1 files and 0 tunes failed" in out
    assert main(["data", "info", "--cache", str(cache)]) == 0
    out = capsys.readouterr().out
    assert "jazz" in out and "2-bar" in out
    assert main(["data", "build", "--genre", "nope", "--cache", str(cache), "--quiet"]) == 2
    assert "unknown genre" in capsys.readouterr().err
    assert main(["data", "info", "--cache", str(tmp_path / "empty")]) == 2
    assert "musebridge data build" in capsys.readouterr().err


def long_tune(source_id: str) -> Tune:
    """8 bars of 4/4, 4 bars of 3/4, 2 bars of 4/2; a quarter note on every beat."""
    bars = [(4.0 * i, 4.0, 4, 4) for i in range(8)]
    bars += [(32.0 + 3.0 * i, 3.0, 3, 4) for i in range(4)]
    bars += [(44.0 + 8.0 * i, 8.0, 4, 2) for i in range(2)]
    notes = [(48 + (b % 24), 80, float(b), 1.0) for b in range(60)]
    return Tune(source_id, "test", "folk", notes=make_notes(notes), bars=make_bars(bars))


def test_roll_and_tone_windows_handle_every_meter():
    data = TuneDataset([long_tune(f"long#{i}") for i in range(6)])
    windows = roll_phrase_windows(data, split=None)
    per_tune = sorted((str(w.meter), w.bars, w.start) for w in windows if w.tune_index == 0)
    assert per_tune == [("3/4", 4, 32.0), ("4/2", 2, 44.0), ("4/4", 4, 0.0), ("4/4", 4, 16.0)]
    rolls = roll_windows(data, split=None)
    assert rolls.array.shape == (24, 64, 84) and rolls.array.dtype == bool
    three_four = [i for i, w in enumerate(windows) if str(w.meter) == "3/4"][0]
    assert rolls.array[three_four, :48].any(axis=1).all() and not rolls.array[three_four, 48:].any()
    assert len(roll_windows(data, split=None, limit=5)) == 5
    tone_sets = tone_windows(data, bars=2, split=None, meter=Meter(4, 4))
    assert tone_sets.lengths.tolist() == [8] * (7 * 6)
    assert tone_sets.array.shape == (42, 8, 12) and tone_sets.array[0, 1, 3] == 384.0


def test_a_parser_process_that_dies_loses_only_its_file(tmp_path, midi_folder, monkeypatch):
    from musebridge.models.data import build

    real_parse = build.parse_source

    def crashing_parse(source):
        if source.path.name == "a.mid":
            os._exit(3)  # a segfault or the OOM killer, as the pool sees it
        return real_parse(source)

    monkeypatch.setattr(build, "parse_source", crashing_parse)
    sources = plan_sources({}, midi_dirs=[("jazz", midi_folder)])
    report = build_dataset(sources, tmp_path / "cache", jobs=2, progress=False)
    assert report.tunes == 1
    failed = sorted(line.split("\t")[1:] for line in report.failed_files)
    assert failed == [["jazz/a.mid", "the parser process died"], ["jazz/broken.mid", failed[1][1]]]
    monkeypatch.setattr(build, "parse_source", real_parse)
    again = build_dataset(sources, tmp_path / "cache", jobs=2, progress=False)
    assert again.tunes == 2 and not again.up_to_date  # the lost file is parsed next time


def test_unknown_collection_and_missing_folder_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="no score files"):
        plan_sources({"x": GenreSpec("x", corpus=("noSuchCollection",))})
    with pytest.raises(ValueError, match="does not exist"):
        plan_sources({}, midi_dirs=[("jazz", tmp_path / "nowhere")])
    assert main(["data", "build", "--midi-dir", "jazz", "--cache", str(tmp_path)]) == 2


def test_midi_files_in_several_shards_build_the_same_dataset_as_one(tmp_path, monkeypatch):
    from musebridge.models.data import build

    folder = tmp_path / "pop"
    folder.mkdir()
    for i in range(7):
        write_scale(folder / f"song{i}.mid", 40 + i, bars=1 + i % 3)
    sources = plan_sources({}, midi_dirs=[("pop", folder)])
    whole = build_dataset(sources, tmp_path / "one", jobs=1, progress=False)
    monkeypatch.setattr(build, "MIDI_BATCH", 2)
    assert len(build.plan_shards(sources, tmp_path, batch=2)) == 4
    sharded = build_dataset(sources, tmp_path / "four", jobs=2, progress=False)
    assert (
        (whole.tunes, whole.notes)
        == (sharded.tunes, sharded.notes)
        == (7, sum(4 * (1 + i % 3) for i in range(7)))
    )
    one, four = TuneDataset.load(tmp_path / "one"), TuneDataset.load(tmp_path / "four")
    assert [t.source_id for t in one.tunes] == [t.source_id for t in four.tunes]
    for a, b in zip(one.tunes, four.tunes, strict=True):
        assert (
            np.array_equal(a.notes, b.notes)
            and np.array_equal(a.bars, b.bars)
            and a.genre == b.genre == "pop"
        )


def test_genres_from_a_csv_of_paths(tmp_path, midi_folder, capsys):
    listing = tmp_path / "lists" / "collection.csv"
    listing.parent.mkdir()
    a = midi_folder / "a.mid"
    listing.write_text(
        f"path,genre\n{a},jazz\n../jazz/sub/b.mid,blues\nmissing.mid,blues\n", encoding="utf-8"
    )
    sources = plan_sources({}, midi_lists=[listing])
    assert [(s.genre, s.source) for s in sources] == [
        ("jazz", f"collection/{a.as_posix()}"),
        ("blues", "collection/../jazz/sub/b.mid"),
        ("blues", "collection/missing.mid"),
    ]
    cache = tmp_path / "cache"
    args = [
        "data",
        "build",
        "--genre",
        "blues",
        "--genre",
        "jazz",
        "--midi-csv",
        str(listing),
        "--cache",
        str(cache),
    ]
    assert main([*args, "--jobs", "1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "2 tunes" in out and "files/s" in out and "1 files failed" in out
    assert "collection/missing.mid\tno such file" in (cache / FAILURE_LOG_NAME).read_text()
    assert TuneDataset.load(cache).genres == ("blues", "jazz")
    assert main([*args, "--quiet"]) == 0
    assert capsys.readouterr().out.startswith("up to date: nothing changed in 3 files")
    listing.write_text("path\nonly-a-path.mid\n", encoding="utf-8")
    assert main([*args, "--quiet"]) == 2
    assert "expected 'path,genre'" in capsys.readouterr().err


def test_a_file_too_long_to_lay_bars_for_is_a_logged_failure(tmp_path) -> None:
    from smf_builders import notes_track, smf

    folder = tmp_path / "jazz"
    folder.mkdir()
    write_scale(folder / "a.mid", 48)
    gap = 0x0FFFFFE6  # 1 PPQN: 67 million bars
    (folder / "long.mid").write_bytes(smf([notes_track([(60, 80, 0, 1), (62, 80, gap, gap + 1)])], 1))
    report = build_dataset(plan_sources({}, midi_dirs=[("jazz", folder)]), tmp_path / "c", 1, progress=False)
    assert report.tunes == 1 and len(report.failed_files) == 1
    assert "jazz/long.mid" in report.failed_files[0] and "too long" in report.failed_files[0]


def test_build_options_are_checked_up_front_and_an_empty_dataset_is_not_written(
    tmp_path, midi_folder, capsys
) -> None:
    from musebridge.cli import main

    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    base = ["data", "build", "--midi-dir", f"jazz={midi_folder}", "--genre", "jazz", "--quiet"]
    for extra, words in (
        (["--cache", str(tmp_path / "afile")], "a file, not a folder"),
        (["--cache", str(tmp_path / "c"), "--output", str(tmp_path / "adir")], "a folder; give a file name"),
        (["--cache", str(tmp_path / "c"), "--output", str(tmp_path / "afile" / "x.npz")], "a file, not a"),
        (["--jobs", "0"], "--jobs must be >= 1"),
    ):
        assert main([*base, *extra]) == 2
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.mid").write_bytes(b"MThd\x00\x00\x00\x06not midi at all")
    cache = tmp_path / "c2"
    assert main([*base, "--cache", str(cache)]) == 0  # a real dataset first
    kept = (cache / "dataset.npz").read_bytes()
    assert main(["data", "build", "--midi-dir", f"jazz={broken}", "--genre", "jazz", "--quiet",
                 "--cache", str(cache)]) == 2
    assert "no tunes to write" in capsys.readouterr().err
    assert (cache / "dataset.npz").read_bytes() == kept
