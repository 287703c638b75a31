"""Call and response for the bridge: a PhraseModel (mode "continue") over a WaveNet or C-RNN-GAN checkpoint,
plus the checkpoint I/O shared by training and evaluation (export, model cards, loading).

The adapter answers `request.phrase` (the call) with `request.bars` bars in the call's meter:
- wavenet: the call's top voice as melody tokens primes the per-layer caches, `bars` bars of tokens are
  sampled at `request.temperature` times the checkpoint's calibrated temperature (<= 0: argmax), mixed
  with the bar cache (the tokens 1, 2 and 4 bars back) at the checkpoint's `copy_weight`, from its
  nucleus (`sampling: {temperature, top_p, copy_weight}`, chosen on the valid split; absent = 1, 1, 0),
  and decoded with the call's velocities;
- crnngan: the call's tone steps prime the generator, which then runs until the answer is filled;
  `request.temperature` scales the generator's noise around its middle (1.0 = as trained).
Answers are deterministic for a given `request.seed`. On CPU, `generate` runs torch with one intra-op
thread (restored afterwards): on 2 shared cores, 2 threads made a 2-bar answer ~30x slower.
A call with no notes is an empty call: the model then answers from scratch.

Registry factories (device, options) -> PhraseModel: `wavenet_factory`, `crnngan_factory`; option
"checkpoint" picks a file (default: the shipped one in models/checkpoints/).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from musebridge.core.model_protocol import ModelRequest
from musebridge.core.music import Note, Phrase
from musebridge.models import CHECKPOINT_DIR
from musebridge.models.common.checkpoint_io import read_checkpoint
from musebridge.models.common.threads import cpu_threads
from musebridge.models.continuation import crnngan as crnngan_module
from musebridge.models.continuation import wavenet as wavenet_module
from musebridge.models.encoding import melody
from musebridge.models.encoding import tones as tone_encoding
from musebridge.models.training.records import card_training_fields

DEFAULT_CHECKPOINTS = {
    "wavenet": CHECKPOINT_DIR / "wavenet_melody.pt",
    "crnngan": CHECKPOINT_DIR / "crnngan_tones3.pt",
}
MAX_ANSWER_BARS = 64


# ---- checkpoint I/O ----------------------------------------------------------------------------------


def load_checkpoint(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[str, torch.nn.Module, dict]:
    """(kind, model in eval mode, checkpoint dict) of a continuation checkpoint; ValueError if unusable."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint not found: {path}")
    checkpoint = read_checkpoint(path, device, "continuation")
    kind = checkpoint.get("model") if isinstance(checkpoint, dict) else None
    if kind == "wavenet":
        return kind, wavenet_module.model_from_checkpoint(checkpoint, device), checkpoint
    if kind == "crnngan":
        return kind, crnngan_module.model_from_checkpoint(checkpoint, device), checkpoint
    raise ValueError(f"{path} is not a wavenet or crnngan checkpoint (model={kind!r})")


def export_checkpoint(
    model: torch.nn.Module, kind: str, path: str | Path, genres: Sequence[str], training: dict
) -> Path:
    """Write the shipped checkpoint (loadable with torch.load(..., weights_only=True))."""
    module = wavenet_module if kind == "wavenet" else crnngan_module
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(module.checkpoint_dict(model, list(genres), {"training": training}), target)
    return target


CARD_TITLES = {
    "wavenet": "WaveNet-style continuation (van den Oord 2016; Fast WaveNet cache, Paine 2016)",
    "crnngan": "C-RNN-GAN-3 continuation (Mogren 2016)",
}
CARD_ENCODINGS = {
    "wavenet": "melody90: 0 hold, 1 note-off, 2..89 = MIDI 21..108; 16 steps per 4/4 bar",
    "crnngan": "tones: (length, Hz, intensity, time since previous step) x 3 a step, 384 ticks/quarter",
}


def write_card(
    checkpoint: str | Path,
    kind: str,
    config: dict,
    genres: Sequence[str],
    training: dict,
    metrics: dict | str | None = None,
) -> Path:
    """The model card (.yaml) beside a checkpoint: model, data, config, seed, command, final log, metrics."""
    import yaml

    checkpoint = Path(checkpoint)
    card = {
        "model": CARD_TITLES[kind],
        "checkpoint": checkpoint.name,
        "encoding": CARD_ENCODINGS[kind],
        "data": {
            "source": "music21 corpus via `musebridge data build` (train/valid/test split by tune)",
            "genres": list(genres),
            "windows": training.get("windows", {}),
        },
        "config": config,
        **card_training_fields(training),
        "metrics": metrics
        or "not measured yet: musebridge eval continue --checkpoint <this .pt> --update-card",
    }
    path = checkpoint.with_suffix(".yaml")
    path.write_text(yaml.safe_dump(card, sort_keys=False, width=100))
    return path


def store_sampling(
    path: str | Path, temperature: float, top_p: float, copy_weight: float = 0.0,
    copy_bars: Sequence[int] = wavenet_module.CACHE_BARS,
) -> dict:
    """Write the calibrated sampling settings into a WaveNet checkpoint (weights untouched) and its card;
    returns them. ValueError for other kinds or values out of range."""
    import yaml

    path = Path(path)
    kind, _model, checkpoint = load_checkpoint(path)
    if kind != "wavenet" or not (temperature > 0 and 0 < top_p <= 1 and 0 <= copy_weight < 1):
        raise ValueError("sampling settings apply to WaveNet checkpoints: temperature > 0, 0 < top_p <= 1, "
                         "0 <= copy_weight < 1")
    checkpoint["sampling"] = {"temperature": float(temperature), "top_p": float(top_p),
                              "copy_weight": float(copy_weight), "copy_bars": [int(b) for b in copy_bars]}
    torch.save(checkpoint, path)
    card = path.with_suffix(".yaml")
    if card.exists():
        document = yaml.safe_load(card.read_text())
        document["sampling"] = checkpoint["sampling"]
        card.write_text(yaml.safe_dump(document, sort_keys=False, width=100))
    return checkpoint["sampling"]


def update_card_metrics(checkpoint: str | Path, metrics: dict) -> Path:
    """Replace the `metrics` section of the card beside `checkpoint` (the card must exist)."""
    import yaml

    path = Path(checkpoint).with_suffix(".yaml")
    card = yaml.safe_load(path.read_text()) if path.exists() else {"checkpoint": Path(checkpoint).name}
    card["metrics"] = metrics
    path.write_text(yaml.safe_dump(card, sort_keys=False, width=100))
    return path


# ---- the adapter -------------------------------------------------------------------------------------


def _check_request(request: ModelRequest) -> None:
    if request.mode != "continue":
        raise ValueError(f"this model answers mode 'continue', not {request.mode!r}")
    if not 1 <= request.bars <= MAX_ANSWER_BARS:
        raise ValueError(f"answer bars must be 1..{MAX_ANSWER_BARS}, got {request.bars}")
    if not np.isfinite(request.temperature):
        raise ValueError(f"temperature must be a finite number, got {request.temperature}")


class ContinuePhraseModel:
    """PhraseModel for call and response over a loaded continuation model (wavenet or crnngan)."""

    modes = frozenset({"continue"})

    @property
    def conditions_on_genre(self) -> bool:
        """True when a request's genre changes the answer (a WaveNet trained with genre embeddings)."""
        return bool(getattr(self.model.config, "num_genres", 0))

    def __init__(
        self,
        kind: str,
        model: torch.nn.Module,
        genres: Sequence[str] = (),
        device: str = "cpu",
        name: str = "",
        single_thread: bool = True,
        sampling: Mapping[str, float] | None = None,
    ) -> None:
        if kind not in ("wavenet", "crnngan"):
            raise ValueError(f"kind must be 'wavenet' or 'crnngan', got {kind!r}")
        sampling = dict(sampling or {})
        self.temperature_scale = float(sampling.get("temperature", 1.0))
        self.top_p = float(sampling.get("top_p", 1.0))
        self.copy_weight = float(sampling.get("copy_weight", 0.0))
        self.copy_bars = tuple(int(b) for b in sampling.get("copy_bars", wavenet_module.CACHE_BARS))
        if not (self.temperature_scale > 0 and 0 < self.top_p <= 1 and 0 <= self.copy_weight < 1):
            raise ValueError(f"bad sampling settings {sampling}: need temperature > 0, 0 < top_p <= 1, "
                             "0 <= copy_weight < 1")
        self.kind = kind
        self.name = name or kind
        self.model = model.to(device).eval()
        self.genres = tuple(genres)
        self.device = torch.device(device)
        self.single_thread = single_thread

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "cpu", name: str = "") -> ContinuePhraseModel:
        kind, model, checkpoint = load_checkpoint(path, device)
        sampling = checkpoint.get("sampling") if kind == "wavenet" else None
        return cls(kind, model, checkpoint.get("genres", ()), device, name, sampling=sampling)

    def generate(self, request: ModelRequest) -> Phrase:
        """The answer: `request.bars` bars in the call's meter, starts from the answer's downbeat."""
        _check_request(request)
        with cpu_threads(self.device, 1 if self.single_thread else 0):
            if self.kind == "wavenet":
                return self._answer_wavenet(request)
            return self._answer_crnngan(request)

    def generate_batch(self, requests: Sequence[ModelRequest]) -> list[Phrase]:
        """Each request's answer: WaveNet answers whose calls have the same length in tokens (and the
        same answer length, meter grid, temperature and genre) are generated together, one
        autoregressive pass for the group ([B, steps] tokens), drawing with one generator seeded by
        the group's first request (so an answer is a draw from the same distribution as alone, not
        the same draw). C-RNN-GAN answers run one by one. ValueError for a bad request."""
        for request in requests:
            _check_request(request)
        if self.kind != "wavenet" or len(requests) < 2:
            return [self.generate(request) for request in requests]
        inputs = [self._wavenet_input(request) for request in requests]
        groups: dict[tuple, list[int]] = {}
        for index, (tokens, steps, steps_per_bar, request) in enumerate(inputs):
            key = (len(tokens), steps, steps_per_bar, request.temperature, request.genre)
            groups.setdefault(key, []).append(index)
        answers: list[Phrase | None] = [None] * len(requests)
        model: wavenet_module.MelodyWaveNet = self.model
        with cpu_threads(self.device, 1 if self.single_thread else 0):
            for (_length, steps, steps_per_bar, temperature, genre), indices in groups.items():
                calls = torch.as_tensor(np.stack([inputs[i][0] for i in indices]), device=self.device)
                index = self._genre_index(genre)
                generated = model.generate(
                    calls.reshape(len(indices), -1),
                    steps,
                    steps_per_bar,
                    temperature=temperature * self.temperature_scale,
                    genre=None if index is None else index.expand(len(indices)),
                    generator=torch.Generator(device=self.device).manual_seed(int(requests[indices[0]].seed)),
                    top_p=self.top_p,
                )
                for row, i in zip(generated.cpu().numpy(), indices, strict=True):
                    call = requests[i].phrase
                    source = call if call.notes else None
                    answers[i] = melody.decode_tokens(row, call.meter, velocity_source=source)
        return [answer for answer in answers if answer is not None]

    def _genre_index(self, genre: str) -> torch.Tensor | None:
        if not genre or not self.model.config.num_genres or genre not in self.genres:
            return None
        return torch.tensor([self.genres.index(genre)], device=self.device)

    def _wavenet_input(self, request: ModelRequest) -> tuple[np.ndarray, int, int, ModelRequest]:
        """(call tokens the model can see, answer steps, steps a bar, request); ValueError for a
        meter off the 16th grid."""
        model: wavenet_module.MelodyWaveNet = self.model
        call = request.phrase
        steps_per_bar = melody.steps_per_bar(call.meter)  # ValueError for meters off the 16th grid
        if steps_per_bar > wavenet_module.MAX_STEPS_PER_BAR:
            raise ValueError(
                f"meter {call.meter} has more than {wavenet_module.MAX_STEPS_PER_BAR} steps a bar"
            )
        tokens = melody.encode_phrase(call)
        keep_bars = max(1, -(-model.config.receptive_field // steps_per_bar))  # context the model can see
        tokens = tokens[-keep_bars * steps_per_bar :] if call.bars > keep_bars else tokens
        if not call.notes:
            tokens = tokens[:0]
        return tokens, request.bars * steps_per_bar, steps_per_bar, request

    def _answer_wavenet(self, request: ModelRequest) -> Phrase:
        model: wavenet_module.MelodyWaveNet = self.model
        call = request.phrase
        tokens, _steps, steps_per_bar, _request = self._wavenet_input(request)
        generator = torch.Generator(device=self.device).manual_seed(int(request.seed))
        answer = model.generate(
            torch.as_tensor(tokens, device=self.device).unsqueeze(0),
            request.bars * steps_per_bar,
            steps_per_bar,
            temperature=request.temperature * self.temperature_scale,
            genre=self._genre_index(request.genre),
            generator=generator,
            top_p=self.top_p,
            cache_weight=self.copy_weight,
            cache_bars=self.copy_bars,
        )
        return melody.decode_tokens(
            answer[0].cpu().numpy(), call.meter, velocity_source=call if call.notes else None
        )

    def _answer_crnngan(self, request: ModelRequest) -> Phrase:
        model: crnngan_module.CRNNGAN = self.model
        call = request.phrase
        call_length = call.length_beats if call.notes else 0.0
        answer_length = request.bars * call.meter.beats_per_bar
        call_tones = tone_encoding.encode_notes(call.notes, model.config.tones_per_step)
        # at most one onset a sixteenth, plus slack for steps the model places inside the call
        max_steps = int(np.ceil(answer_length * 4)) + 8
        steps = model.continue_tones(
            call_tones, max_steps, seed=request.seed, noise_scale=max(0.0, request.temperature)
        )[0]
        last_onset = (
            float(np.sum(call_tones[:, 3])) / tone_encoding.TICKS_PER_QUARTER if len(call_tones) else 0.0
        )
        notes: list[Note] = []
        for note in tone_encoding.decode_notes(steps, model.config.tones_per_step, offset_beats=last_onset):
            start = note.start - call_length
            if 0 <= start < answer_length - 1e-9:
                notes.append(
                    Note(note.pitch, note.velocity, start, min(note.duration, answer_length - start))
                )
        return Phrase(notes=tuple(notes), bars=request.bars, meter=call.meter)


def _factory(kind: str, device: str, options: Mapping[str, Any]) -> ContinuePhraseModel:
    from musebridge.registry import require_checkpoint

    path = require_checkpoint(options.get("checkpoint") or DEFAULT_CHECKPOINTS[kind], model=kind)
    try:
        return ContinuePhraseModel.from_checkpoint(path, device, name=kind)
    except ValueError as error:
        from musebridge.errors import UserError

        raise UserError(f"model {kind!r}: {error}") from error


def wavenet_factory(device: str, options: Mapping[str, Any]) -> ContinuePhraseModel:
    """Registry factory for the model name "wavenet"."""
    return _factory("wavenet", device, options)


def crnngan_factory(device: str, options: Mapping[str, Any]) -> ContinuePhraseModel:
    """Registry factory for the model name "crnngan"."""
    return _factory("crnngan", device, options)
