"""Genre domains: which corpus collections and MIDI folders make up each genre (genres.yaml)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_KEYS = {"corpus", "midi_dirs", "voice", "out_of_domain"}
VOICES = ("all", "top")


@dataclass(frozen=True)
class GenreSpec:
    """One genre: music21 corpus collections and folders of .mid files (relative to the YAML file).

    voice: "all" keeps every part of a score merged (polyphonic genres); "top" keeps only the top part
    of each score (the part with the highest mean pitch: soprano, cantus, first violin, right hand),
    for melodic models. out_of_domain: a held-out genre, never trained on nor used for model selection
    (its train and valid splits refuse to load; evaluate it whole with split=None).
    """

    name: str
    corpus: tuple[str, ...] = ()
    midi_dirs: tuple[Path, ...] = ()
    voice: str = "all"
    out_of_domain: bool = False


def default_genres_path() -> Path:
    """The genres.yaml shipped with the package."""
    return Path(str(resources.files("musebridge.models.data").joinpath("genres.yaml")))


def check_genre_name(name: str) -> str:
    """The name, or ValueError if it is not a plain identifier (letters, digits, _ . -)."""
    if not _NAME.match(name):
        raise ValueError(f"genre name {name!r} must be letters, digits, '_', '.' or '-'")
    return name


def load_genres(path: Path | None = None) -> dict[str, GenreSpec]:
    """Genres from YAML ({genres: {name: {corpus: [...], midi_dirs: [...]}}}); ValueError if malformed."""
    path = Path(path) if path is not None else default_genres_path()
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ValueError(f"cannot read genres file {path}: {error}") from error
    except yaml.YAMLError as error:
        raise ValueError(f"genres file {path} is not valid YAML: {error}") from error
    entries = document.get("genres") if isinstance(document, dict) else None
    if not isinstance(entries, dict) or not entries:
        raise ValueError(f"genres file {path} needs a non-empty 'genres:' mapping")
    genres = {}
    for name, entry in entries.items():
        check_genre_name(str(name))
        entry = entry or {}
        if not isinstance(entry, dict) or set(entry) - _KEYS:
            raise ValueError(f"genre {name!r} in {path}: expected only {', '.join(sorted(_KEYS))}")
        corpus = entry.get("corpus") or []
        dirs = entry.get("midi_dirs") or []
        if not isinstance(corpus, list) or not isinstance(dirs, list) or not (corpus or dirs):
            raise ValueError(f"genre {name!r} ({path}): 'corpus' / 'midi_dirs' must be lists, not both empty")
        folders = tuple((path.parent / Path(str(d)).expanduser()).resolve() for d in dirs)
        voice = str(entry.get("voice", "all"))
        if voice not in VOICES:
            raise ValueError(f"genre {name!r} ({path}): voice must be one of {', '.join(VOICES)}")
        held_out = entry.get("out_of_domain", False)
        if not isinstance(held_out, bool):
            raise ValueError(f"genre {name!r} ({path}): out_of_domain must be true or false")
        genres[str(name)] = GenreSpec(str(name), tuple(str(c) for c in corpus), folders, voice, held_out)
    return genres


def parse_midi_dir_option(text: str) -> tuple[str, Path]:
    """NAME=DIR from the command line; ValueError for anything else."""
    name, sep, folder = text.partition("=")
    if not sep or not name or not folder:
        raise ValueError(f"--midi-dir expects NAME=DIR, got {text!r}")
    return check_genre_name(name), Path(folder).expanduser().resolve()
