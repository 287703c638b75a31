"""Presets: YAML files -> validated, frozen settings for the conductor.

This loader lives in the package `musebridge.presets` itself (presets/__init__.py, next to the YAML
files): a module bridge/presets.py would collide with that package name.

`load_preset(name_or_path)` reads a shipped preset by name (package `musebridge.presets`, files
presets/<name>.yaml) or any YAML file by path (the command line: `serve --preset`).
`load_named_preset(name)` is what /musebridge/preset uses: a name only, looked up among the shipped
presets and then in the user's preset folder (`user_preset_dir()`), never a path; its errors
never carry file content (they name the key and the expected type, never a value). Errors of
`load_preset` quote at most a short value of a key the schema knows, never a whole document.
An unknown key or a wrong type raises PresetError (a UserError) naming the file and the key path, e.g.
    presets/x.yaml: tracks.1.mode: expected one of thru|transfer|continue|interpolate|sample, got 'trnsfer'

Schema (every key optional; defaults shown):

    name: <file stem>            # str
    description: ""              # str
    clock: auto                  # auto | internal | midi | osc
    tempo: 120.0                 # internal clock BPM, 20..400
    meter: "4/4"                 # "N/D" (D in 1,2,4,8,16,32); 6/8 = 3 beats, 7/8 = 3.5 beats per bar
    grid:                        # input quantisation; also sets when a phrase is final
      steps: 4                   #   steps per `per`; 0 = off
      per: beat                  #   beat | bar
    lookahead_ms: 20.0           # with the grid off: how early a phrase is taken and dispatched
    echo_input: true             # default for tracks (below): what you play is heard in model modes too
    output: same                 # same (where the input came from) | midi | osc | both
    genres: [celtic, folk, chorale, renaissance]   # accepted /musebridge/genre values ("" = none)
    models:                      # model name per mode (the engine's registry resolves names);
      transfer: cyclegan         #   rule models for a pipeline check: transpose, blend, thru
      continue: wavenet          #   (crnngan is the other continuation model)
      interpolate: musicvae
      sample: musicvae
    model_options:               # per model name: options for its factory
      transpose: {semitones: 12} #   e.g. cyclegan: {checkpoint: PATH}
    continue:                    # call and response
      silent_bars: 1             #   a call ends after this many silent bars, 1..16
      max_call_bars: 8           #   ... or after this many bars, 1..64
      answer_bars: 0             #   answer length in bars; 0 = as long as the call
      loop: false                #   start with the loop on: the last answer repeats until a new call
      end_call_cc: null          #   CC numbers 0..127 (or null) on the track's channel, consumed in
      loop_cc: null              #   continue mode: end_call (value >= 64 ends the call), loop (>= 64
      mutate_cc: null            #   on, < 64 off), mutate (a press to >= 64: a new answer from the
      temperature_cc: null       #   last one), temperature (0..127 -> 0.1..2.0) and answer_bars
      answer_bars_cc: null       #   (0..127 -> 0..16 bars; 0 = as long as the call); each CC one role
    defaults:                    # every track's settings ...
      mode: thru                 #   thru | transfer | continue | interpolate | sample
      phrase_bars: 4             #   1..64
      genre: ""                  #   one of `genres` or ""
      temperature: 1.0           #   0.01..5.0
      position: 0.5              #   0..1, interpolation point
      echo_input: <echo_input>   #   bool: play the input through in model modes too
      out_channel: null          #   MIDI output channel 1..16, null = the input's channel
    tracks:                      # ... and per-track overrides (same keys as defaults)
      1: {mode: transfer}        #   track ids are ints >= 0; MIDI channel c (1..16) is track c
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from musebridge.core.bars import Grid
from musebridge.core.model_protocol import MODES
from musebridge.core.music import Meter
from musebridge.errors import UserError

CLOCKS = ("auto", "internal", "midi", "osc")
OUTPUTS = ("same", "midi", "osc", "both")
MODEL_MODES = ("transfer", "continue", "interpolate", "sample")
DEFAULT_GENRES = ("celtic", "folk", "chorale", "renaissance")
#: A preset name over OSC: letters, digits, space, _ + - (no dot, no slash: never a path).
PRESET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _+-]{0,63}")
_MAX_VALUE_TEXT = 40  # longest value quoted in an error message


class PresetError(UserError):
    """A preset that cannot be used: names the file and the key path."""


@dataclass(frozen=True, slots=True)
class TrackSettings:
    """Settings of one track."""

    mode: str = "thru"
    phrase_bars: int = 4
    genre: str = ""
    temperature: float = 1.0
    position: float = 0.5
    echo_input: bool = True  # the player hears what they play in model modes too (a musician expects it)
    out_channel: int | None = None  # 0..15 internally (YAML says 1..16); None = the input's channel


@dataclass(frozen=True, slots=True)
class ContinueSettings:
    """Call-and-response settings."""

    silent_bars: int = 1
    max_call_bars: int = 8
    answer_bars: int = 0  # 0 = as long as the call
    loop: bool = False
    end_call_cc: int | None = None
    loop_cc: int | None = None
    mutate_cc: int | None = None
    temperature_cc: int | None = None
    answer_bars_cc: int | None = None

    def cc_roles(self) -> dict[int, str]:
        """Mapped control numbers -> role (end_call | loop | mutate | temperature | answer_bars)."""
        roles = {role: getattr(self, f"{role}_cc") for role in CC_ROLES}
        return {cc: role for role, cc in roles.items() if cc is not None}


CC_ROLES = ("end_call", "loop", "mutate", "temperature", "answer_bars")
CC_TEMPERATURE_RANGE = (0.1, 2.0)  # temperature CC: value 0 -> 0.1, 127 -> 2.0, linear
CC_MAX_ANSWER_BARS = 16  # answer_bars CC: value 0 -> 0 (as long as the call), 127 -> 16 bars


def temperature_from_cc(value: int) -> float:
    """A temperature CC value 0..127 -> temperature 0.1..2.0 (linear)."""
    low, high = CC_TEMPERATURE_RANGE
    return low + (high - low) * min(127, max(0, value)) / 127.0


def answer_bars_from_cc(value: int) -> int:
    """An answer-length CC value 0..127 -> 0..16 bars (0: as long as the call)."""
    return round(min(127, max(0, value)) * CC_MAX_ANSWER_BARS / 127.0)


def _frozen(mapping: Mapping[Any, Any]) -> Mapping[Any, Any]:
    return MappingProxyType(dict(mapping))


_DEFAULT_MODELS = {
    "transfer": "cyclegan",
    "continue": "wavenet",
    "interpolate": "musicvae",
    "sample": "musicvae",
}


@dataclass(frozen=True)
class Preset:
    """A validated preset (see the module docstring for the YAML schema)."""

    name: str = "default"
    description: str = ""
    clock: str = "auto"
    tempo: float = 120.0
    meter: Meter = field(default_factory=Meter)
    grid: Grid = field(default_factory=Grid)
    lookahead_ms: float = 20.0
    output: str = "same"
    genres: tuple[str, ...] = DEFAULT_GENRES
    models: Mapping[str, str] = field(default_factory=lambda: _frozen(_DEFAULT_MODELS))
    model_options: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: _frozen({}))
    continuation: ContinueSettings = field(default_factory=ContinueSettings)
    defaults: TrackSettings = field(default_factory=TrackSettings)
    tracks: Mapping[int, TrackSettings] = field(default_factory=lambda: _frozen({}))
    source: str = "<built-in>"

    def track(self, track: int) -> TrackSettings:
        """Settings of `track`: its override, else the defaults."""
        return self.tracks.get(track, self.defaults)

    def model_for(self, mode: str) -> str:
        """Model name for a mode ('thru' for thru)."""
        return self.models.get(mode, "thru")

    def with_echo(self, echo: bool) -> Preset:
        """The same preset with echo_input set on every track (defaults and overrides)."""
        tracks = {k: dataclasses.replace(v, echo_input=echo) for k, v in self.tracks.items()}
        return dataclasses.replace(
            self, defaults=dataclasses.replace(self.defaults, echo_input=echo), tracks=_frozen(tracks)
        )

    def with_mode(self, mode: str) -> Preset:
        """The same preset with every track (defaults and overrides) in `mode`."""
        if mode not in MODES:
            raise PresetError(f"{self.source}: mode: expected one of {'|'.join(MODES)}, got {mode!r}")
        tracks = {k: dataclasses.replace(v, mode=mode) for k, v in self.tracks.items()}
        return dataclasses.replace(
            self, defaults=dataclasses.replace(self.defaults, mode=mode), tracks=_frozen(tracks)
        )


def _quoted(value: Any) -> str:
    """A value for an error message: its repr, cut short (an error never carries a file's text)."""
    text = repr(value)
    return text if len(text) <= _MAX_VALUE_TEXT else text[: _MAX_VALUE_TEXT - 3] + "..."


class _Reader:
    """Typed access to a YAML mapping that reports errors as `file: key.path: problem`."""

    def __init__(self, source: str, quote_values: bool = True) -> None:
        self.source = source
        self.quote_values = quote_values

    def q(self, value: Any) -> str:
        """`value` for an error message: a short repr, or nothing when values are not quoted."""
        return _quoted(value) if self.quote_values else "(value not shown)"

    def fail(self, path: str, problem: str) -> PresetError:
        return PresetError(f"{self.source}: {path}: {problem}" if path else f"{self.source}: {problem}")

    def mapping(self, value: Any, path: str, allowed: tuple[str, ...] | None) -> dict[Any, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            if not path:  # the whole document: whatever file this is, its text is not echoed
                kind = type(value).__name__
                raise self.fail("", f"not a preset: expected a mapping of settings, got a {kind}")
            raise self.fail(path, f"expected a mapping, got {type(value).__name__} {self.q(value)}")
        if allowed is not None:
            for key in value:
                if key not in allowed:
                    where = f"{path}.{key}" if path else str(key)
                    raise self.fail(where, f"unknown key (known: {', '.join(allowed)})")
        return value

    def string(self, value: Any, path: str, choices: tuple[str, ...] | None = None) -> str:
        if not isinstance(value, str):
            raise self.fail(path, f"expected a string, got {type(value).__name__} {self.q(value)}")
        if choices is not None and value not in choices:
            raise self.fail(path, f"expected one of {'|'.join(choices)}, got {self.q(value)}")
        return value

    def integer(self, value: Any, path: str, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"expected an integer, got {type(value).__name__} {self.q(value)}")
        if not low <= value <= high:
            raise self.fail(path, f"expected {low}..{high}, got {self.q(value)}")
        return value

    def number(self, value: Any, path: str, low: float, high: float) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(path, f"expected a number, got {type(value).__name__} {self.q(value)}")
        if not low <= value <= high:
            raise self.fail(path, f"expected {low:g}..{high:g}, got {self.q(value)}")
        return float(value)

    def boolean(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(path, f"expected true or false, got {type(value).__name__} {self.q(value)}")
        return value


_TOP_KEYS = (
    "name",
    "description",
    "clock",
    "tempo",
    "meter",
    "grid",
    "lookahead_ms",
    "echo_input",
    "output",
    "genres",
    "models",
    "model_options",
    "continue",
    "defaults",
    "tracks",
)
_TRACK_KEYS = ("mode", "phrase_bars", "genre", "temperature", "position", "echo_input", "out_channel")


def _meter(r: _Reader, value: Any, path: str) -> Meter:
    text = r.string(value, path)
    parts = text.split("/")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise r.fail(path, f"expected a meter like '4/4' or '7/8', got {text!r}")
    try:
        return Meter(int(parts[0]), int(parts[1]))
    except ValueError as exc:
        raise r.fail(path, str(exc)) from None


def _track(r: _Reader, value: Any, path: str, base: TrackSettings, genres: tuple[str, ...]) -> TrackSettings:
    data = r.mapping(value, path, _TRACK_KEYS)
    settings = base
    for key, raw in data.items():
        p = f"{path}.{key}"
        if key == "mode":
            settings = dataclasses.replace(settings, mode=r.string(raw, p, MODES))
        elif key == "phrase_bars":
            settings = dataclasses.replace(settings, phrase_bars=r.integer(raw, p, 1, 64))
        elif key == "genre":
            settings = dataclasses.replace(settings, genre=r.string(raw, p, ("", *genres)))
        elif key == "temperature":
            settings = dataclasses.replace(settings, temperature=r.number(raw, p, 0.01, 5.0))
        elif key == "position":
            settings = dataclasses.replace(settings, position=r.number(raw, p, 0.0, 1.0))
        elif key == "echo_input":
            settings = dataclasses.replace(settings, echo_input=r.boolean(raw, p))
        elif key == "out_channel":
            channel = None if raw is None else r.integer(raw, p, 1, 16) - 1
            settings = dataclasses.replace(settings, out_channel=channel)
    return settings


def _continuation(r: _Reader, value: Any) -> ContinueSettings:
    cc_keys = tuple(f"{role}_cc" for role in CC_ROLES)
    cont = r.mapping(value, "continue", ("silent_bars", "max_call_bars", "answer_bars", "loop", *cc_keys))
    ccs: dict[str, int | None] = {}
    owner: dict[int, str] = {}
    for key in cc_keys:
        raw = cont.get(key)
        cc = None if raw is None else r.integer(raw, f"continue.{key}", 0, 127)
        if cc is not None and cc in owner:
            problem = f"CC {cc} is already continue.{owner[cc]}; give each role its own CC"
            raise r.fail(f"continue.{key}", problem)
        if cc is not None:
            owner[cc] = key
        ccs[key] = cc
    return ContinueSettings(
        silent_bars=r.integer(cont.get("silent_bars", 1), "continue.silent_bars", 1, 16),
        max_call_bars=r.integer(cont.get("max_call_bars", 8), "continue.max_call_bars", 1, 64),
        answer_bars=r.integer(cont.get("answer_bars", 0), "continue.answer_bars", 0, 64),
        loop=r.boolean(cont.get("loop", False), "continue.loop"),
        **ccs,  # type: ignore[arg-type]
    )


def parse_preset(data: Any, source: str, default_name: str = "preset", quote_values: bool = True) -> Preset:
    """Validate a parsed YAML document into a Preset; PresetError names `source` and the key path
    (and, with quote_values, a short repr of the wrong value)."""
    r = _Reader(source, quote_values)
    top = r.mapping(data, "", _TOP_KEYS)
    kw: dict[str, Any] = {"source": source, "name": default_name}
    if "name" in top:
        kw["name"] = r.string(top["name"], "name")
    if "description" in top:
        kw["description"] = r.string(top["description"], "description")
    if "clock" in top:
        kw["clock"] = r.string(top["clock"], "clock", CLOCKS)
    if "tempo" in top:
        kw["tempo"] = r.number(top["tempo"], "tempo", 20.0, 400.0)
    if "meter" in top:
        kw["meter"] = _meter(r, top["meter"], "meter")
    if "grid" in top:
        g = r.mapping(top["grid"], "grid", ("steps", "per"))
        steps = r.integer(g.get("steps", 4), "grid.steps", 0, 96)
        per = r.string(g.get("per", "beat"), "grid.per", ("beat", "bar"))
        kw["grid"] = Grid(steps, per)
    if "lookahead_ms" in top:
        kw["lookahead_ms"] = r.number(top["lookahead_ms"], "lookahead_ms", 0.0, 1000.0)
    if "output" in top:
        kw["output"] = r.string(top["output"], "output", OUTPUTS)
    genres = DEFAULT_GENRES
    if "genres" in top:
        if not isinstance(top["genres"], list):
            raise r.fail("genres", f"expected a list of strings, got {r.q(top['genres'])}")
        genres = tuple(r.string(g, f"genres.{i}") for i, g in enumerate(top["genres"]))
    kw["genres"] = genres
    models = dict(_DEFAULT_MODELS)
    for mode, name in r.mapping(top.get("models"), "models", MODEL_MODES).items():
        models[mode] = r.string(name, f"models.{mode}")
    kw["models"] = _frozen(models)
    options: dict[str, Mapping[str, Any]] = {}
    for model, opts in r.mapping(top.get("model_options"), "model_options", None).items():
        p = f"model_options.{model}"
        o = r.mapping(opts, p, None)
        for key, value in o.items():
            if not isinstance(value, str | int | float | bool):
                raise r.fail(f"{p}.{key}", f"expected a number, string or bool, got {r.q(value)}")
        options[str(model)] = _frozen(o)
    if "transpose" in options and "semitones" in options["transpose"]:
        r.integer(options["transpose"]["semitones"], "model_options.transpose.semitones", -127, 127)
    kw["model_options"] = _frozen(options)
    kw["continuation"] = _continuation(r, top.get("continue"))
    echo = r.boolean(top["echo_input"], "echo_input") if "echo_input" in top else True
    defaults = _track(r, top.get("defaults"), "defaults", TrackSettings(echo_input=echo), genres)
    kw["defaults"] = defaults
    tracks: dict[int, TrackSettings] = {}
    for key, value in r.mapping(top.get("tracks"), "tracks", None).items():
        if isinstance(key, bool) or not isinstance(key, int) or key < 0:
            raise r.fail(f"tracks.{key}", "track ids are integers >= 0")
        tracks[key] = _track(r, value, f"tracks.{key}", defaults, genres)
    kw["tracks"] = _frozen(tracks)
    return Preset(**kw)


def preset_names() -> list[str]:
    """Names of the presets shipped in the package."""
    root = importlib.resources.files("musebridge.presets")
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


def load_preset(name_or_path: str) -> Preset:
    """A preset by name (shipped, then the user's folder) or a YAML file by path; PresetError when
    missing or invalid."""
    path = Path(name_or_path)
    looks_like_path = name_or_path.endswith((".yaml", ".yml")) or "/" in name_or_path or "\\" in name_or_path
    if looks_like_path:
        if not path.is_file():
            raise PresetError(f"{name_or_path}: no such preset file")
        source = name_or_path
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PresetError(f"{source}: cannot read: {exc}") from None
        stem = path.stem
    else:
        resource = importlib.resources.files("musebridge.presets") / f"{name_or_path}.yaml"
        if not resource.is_file() and PRESET_NAME.fullmatch(name_or_path):
            return load_named_preset(name_or_path)  # the user's folder, or the list of known names
        if not resource.is_file():
            raise PresetError(
                f"unknown preset {name_or_path!r}; shipped presets: {', '.join(preset_names())} "
                "(or give a .yaml path)"
            )
        source = f"presets/{name_or_path}.yaml"
        text = resource.read_text(encoding="utf-8")
        stem = name_or_path
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise PresetError(f"{source}: {where}not valid YAML ({getattr(exc, 'problem', exc)})") from None
    return parse_preset(data, source, default_name=stem)


def user_preset_dir() -> Path:
    """The user's preset folder: $MUSEBRIDGE_PRESET_DIR, else $XDG_CONFIG_HOME/musebridge/presets
    (default ~/.config/musebridge/presets). It need not exist."""
    explicit = os.environ.get("MUSEBRIDGE_PRESET_DIR")
    if explicit:
        return Path(explicit).expanduser()
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(config) / "musebridge" / "presets"


def user_preset_names() -> list[str]:
    """Names of the presets in the user's folder (files NAME.yaml / NAME.yml with a valid name)."""
    try:
        files = list(user_preset_dir().iterdir())
    except OSError:
        return []
    names = (f.name.rsplit(".", 1)[0] for f in files if f.suffix in (".yaml", ".yml"))
    return sorted(name for name in names if PRESET_NAME.fullmatch(name))


def load_named_preset(name: str) -> Preset:
    """The preset called `name` (OSC's /musebridge/preset): shipped first, then the user's folder.

    Never a path: a name that is not PRESET_NAME (a slash, a dot, '..') is refused before any file
    is touched. PresetError when unknown or invalid; the message names the preset and the problem
    (a key and a type, never the file's text)."""
    shown = _quoted(name)
    if not PRESET_NAME.fullmatch(name):
        raise PresetError(f"preset {shown}: a preset is chosen by name (letters, digits, space, _ + -), "
                          "not by path")
    if name in preset_names():
        return load_preset(name)
    folder = user_preset_dir()
    for suffix in (".yaml", ".yml"):
        path = folder / f"{name}{suffix}"
        if path.is_file():
            source = f"user preset {name}"
            try:
                text = path.read_text(encoding="utf-8")
                data = yaml.safe_load(text)
            except (OSError, UnicodeDecodeError):
                raise PresetError(f"{source}: cannot be read") from None
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                where = f" (line {mark.line + 1})" if mark is not None else ""
                raise PresetError(f"{source}: not valid YAML{where}") from None
            return parse_preset(data, source, default_name=name, quote_values=False)
    known = ", ".join(preset_names() + user_preset_names())
    raise PresetError(f"unknown preset {shown}; presets: {known} (your own: {folder}/NAME.yaml)")
