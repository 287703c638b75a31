"""Training of the universal translator (`musebridge train umt`; options in bridge/commands/umt.py).

    musebridge train umt --genres celtic folk chorale renaissance --config cpu_small --steps 6000
    musebridge train umt --add-genre jazz=~/midi/jazz --checkpoint models/checkpoints/umt.pt

One step (`UMTTrainer.step`, separable from the loop so a shared trainer can drive it): a batch of
`batch_per_genre` phrases of every genre; each is augmented (augment.py) and encoded by the shared
encoder, and reconstructed (clean) by its own genre's decoder, teacher-forced, binary cross-entropy per
pitch and step. The domain classifier learns the genre from the (detached) latent; the encoder and the
decoders minimise reconstruction + lambda * the classifier's cross-entropy against the uniform
distribution (the paper: - lambda * its cross-entropy with the true genre, Mor et al. 2019 eq. 2-3;
unbounded, it blew the latent up here, see UMTTrainer.step).
With the argmax bottleneck a diversity term (Dieleman et al. 2018) keeps all codes in use.

`--add-genre NAME=DIR` trains only the new genre's decoder: the encoder is frozen (eval mode, no
gradient) and no other parameter is in the optimiser, so the other decoders stay bit-identical.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from musebridge.models.umt.augment import augment_batch
from musebridge.models.umt.model import UniversalTranslator


def diversity_loss(q: torch.Tensor) -> torch.Tensor:
    """Negative normalised entropy of the batch's mean code usage, q [B, K, L] (argmax bottleneck only).

    0 when every code is used equally often, -> 1 when one code takes everything."""
    usage = q.mean(dim=(0, 2))  # [K]
    entropy = -(usage * torch.log(usage + 1e-8)).sum()
    return 1.0 - entropy / float(np.log(q.shape[1]))


class UMTTrainer:
    """One optimisation step at a time; `trainable` genres get their decoder trained.

    new_genres: genres whose decoders alone are trained against the frozen encoder (--add-genre);
    empty = the full model (encoder, all decoders, domain classifier).
    """

    def __init__(
        self, model: UniversalTranslator, seed: int = 0, new_genres: Sequence[str] = (), augment: bool = True
    ) -> None:
        self.model = model
        self.config = model.config
        self.new_genres = tuple(new_genres)
        self.augment = augment and model.config.augment
        self.rng = np.random.default_rng(seed)
        lr = model.config.learning_rate
        if self.new_genres:
            model.requires_grad_(False)
            parameters = []
            for genre in self.new_genres:
                model.decoder(genre).requires_grad_(True)
                parameters += list(model.decoder(genre).parameters())
            self.optimiser = torch.optim.Adam(parameters, lr=lr)
            self.optimiser_classifier = None
        else:
            parameters = list(model.encoder.parameters()) + list(model.decoders.parameters())
            self.optimiser = torch.optim.Adam(parameters, lr=lr)
            self.optimiser_classifier = torch.optim.Adam(model.classifier.parameters(), lr=lr)
        self.steps_done = 0

    def _inputs(self, rolls: np.ndarray) -> torch.Tensor:
        cfg = self.config
        if self.augment:
            rolls = augment_batch(
                rolls, self.rng, segments=cfg.augment_segments, segment_steps=cfg.augment_segment_steps,
                drop=cfg.augment_drop, nudge=cfg.augment_nudge,
            )  # fmt: skip
        return torch.from_numpy(rolls.astype(np.float32))

    def step(self, batches: Mapping[str, np.ndarray]) -> dict[str, float]:
        """One step on clean rolls (B, 64, 84) per genre; returns the losses (floats)."""
        m, cfg = self.model, self.config
        genres = list(batches)
        targets = torch.from_numpy(np.concatenate([batches[g] for g in genres]).astype(np.float32))
        inputs = torch.cat([self._inputs(batches[g]) for g in genres])
        sizes = [len(batches[g]) for g in genres]
        if self.new_genres:
            m.encoder.eval()
            with torch.no_grad():
                latent, q = m.encoder(inputs)
        else:
            m.train()
            latent, q = m.encoder(inputs)
        reconstruction = torch.zeros(())
        correct = 0.0
        for genre, latent_g, target_g in zip(genres, latent.split(sizes), targets.split(sizes), strict=True):
            logits = m.decoder(genre)(target_g, latent_g)
            reconstruction = reconstruction + F.binary_cross_entropy_with_logits(logits, target_g) * len(
                target_g
            )
            correct += float(((logits >= 0).float() == target_g).all(-1).float().sum())
        reconstruction = reconstruction / len(targets)
        losses = {
            "reconstruction": float(reconstruction.detach()),
            "frames_exact": correct / targets[..., 0].numel(),
        }
        loss = reconstruction
        if not self.new_genres:
            labels = torch.tensor([cfg.genres.index(g) for g in genres for _ in range(batches[g].shape[0])])
            # The paper subtracts lambda * CE(classifier, true genre); on an unbounded latent the encoder
            # then wins by blowing the latent up (CE -> 1e25 in 100 steps here). We use the bounded
            # confusion loss of Tzeng et al. 2015: CE against the uniform distribution over genres,
            # minimal exactly when the classifier cannot tell the genres apart.
            log_p = F.log_softmax(m.classifier(latent), dim=1)
            confusion = -log_p.mean(1).mean()
            loss = loss + cfg.confusion_weight * confusion
            losses["confusion"] = float(confusion.detach())
            if q is not None and cfg.diversity_weight > 0:
                diversity = diversity_loss(q)
                loss = loss + cfg.diversity_weight * diversity
                losses["diversity"] = float(diversity.detach())
        self.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        self.optimiser.step()
        if self.optimiser_classifier is not None:
            # the domain classifier: learn the genre from the latent (the encoder's output held fixed)
            logits = m.classifier(latent.detach())
            classifier_loss = F.cross_entropy(logits, labels)
            self.optimiser_classifier.zero_grad(set_to_none=True)
            classifier_loss.backward()
            self.optimiser_classifier.step()
            losses["classifier_accuracy"] = float((logits.argmax(1) == labels).float().mean())
        self.steps_done += 1
        return losses


@torch.no_grad()
def reconstruction_loss(
    model: UniversalTranslator, rolls_by_genre: Mapping[str, np.ndarray], batch_size: int = 128
) -> float:
    """Mean teacher-forced BCE per cell of clean rolls through their own decoder (validation)."""
    model.eval()
    total, count = 0.0, 0
    for genre, rolls in rolls_by_genre.items():
        for i in range(0, len(rolls), batch_size):
            batch = torch.from_numpy(rolls[i : i + batch_size].astype(np.float32))
            logits = model.decoder(genre)(batch, model.encode(batch))
            total += float(F.binary_cross_entropy_with_logits(logits, batch, reduction="sum"))
            count += batch.numel()
    return total / max(1, count)


def choose_threshold(
    model: UniversalTranslator,
    rolls_by_genre: Mapping[str, np.ndarray],
    candidates: Sequence[float] = (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5),
    per_genre: int = 64,
) -> tuple[float, dict[float, float]]:
    """The greedy-generation threshold whose reconstructions (each phrase through its own decoder,
    generated, not teacher-forced) best match the clean phrases: highest F1 of active cells, averaged
    over genres. An autoencoder criterion on valid: the judges never see it. Returns (threshold, F1s)."""
    from musebridge.models.umt.model import generate

    model.eval()
    latents = {
        g: model.encode(torch.from_numpy(r[:per_genre].astype(np.float32))).detach()
        for g, r in rolls_by_genre.items()
        if len(r)
    }
    scores = {}
    for threshold in candidates:
        f1 = []
        for genre, latent in latents.items():
            truth = rolls_by_genre[genre][:per_genre].astype(bool)
            made = generate(model.decoder(genre), latent, threshold).numpy()
            f1.append(2.0 * float((made & truth).sum()) / max(1.0, float(made.sum() + truth.sum())))
        scores[threshold] = float(np.mean(f1))
    return max(scores, key=lambda t: scores[t]), scores


@dataclass
class LoopResult:
    steps: int
    losses: dict[str, float]
    seconds: float


def train_loop(
    trainer: UMTTrainer,
    train: Mapping[str, np.ndarray],
    steps: int,
    seed: int = 0,
    log: Callable[[str], None] = print,
    log_every: int = 50,
    checkpoint: Callable[[int], None] | None = None,
    checkpoint_every: int = 0,
    genres: Sequence[str] | None = None,
) -> LoopResult:
    """`steps` steps of `trainer` on balanced batches of every genre in `genres` (default: all of train)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed + 1)
    genres = list(genres or train)
    size = trainer.config.batch_per_genre
    recent: list[dict[str, float]] = []
    began = time.perf_counter()
    start = trainer.steps_done
    for step in range(start + 1, start + steps + 1):
        batches = {g: train[g][rng.integers(0, len(train[g]), size)] for g in genres}
        recent = (recent + [trainer.step(batches)])[-log_every:]
        if step % log_every == 0 or step == start + steps:
            means = {k: float(np.mean([r[k] for r in recent])) for k in recent[0]}
            rate = (step - start) / (time.perf_counter() - began)
            log(f"step {step} ({rate:.2f} steps/s) " + " ".join(f"{k} {v:.4f}" for k, v in means.items()))
        if checkpoint is not None and checkpoint_every and step % checkpoint_every == 0:
            checkpoint(step)
    means = {k: float(np.mean([r[k] for r in recent])) for k in recent[0]} if recent else {}
    return LoopResult(trainer.steps_done, means, time.perf_counter() - began)


# ---------------------------------------------------------------- `musebridge train umt`

DEFAULT_GENRES = ("celtic", "folk", "chorale", "renaissance")


def _parse_add_genre(text: str) -> tuple[str, object]:
    from pathlib import Path

    from musebridge.errors import UserError

    name, sep, folder = text.partition("=")
    if not sep or not name.strip() or not folder.strip():
        raise UserError(f"--add-genre wants NAME=DIR, got {text!r}")
    return name.strip().lower(), Path(folder.strip()).expanduser()


def run(args) -> int:
    """Handler of `musebridge train umt`: the full model, or (--add-genre) one new decoder."""
    from pathlib import Path

    from musebridge.commands.train import command_line
    from musebridge.errors import UserError
    from musebridge.models.cyclegan.train import write_card
    from musebridge.models.umt.data import balanced, folder_rolls, genre_rolls
    from musebridge.models.umt.model import UniversalTranslator, get_config, load_umt, save_umt

    torch.set_num_threads(max(1, args.threads))
    if getattr(args, "threshold_only", False):
        return _threshold_only(args)
    if args.steps < 1:
        raise UserError("--steps must be >= 1")
    rng = np.random.default_rng(args.seed)
    command = command_line()
    try:
        if args.add_genre:
            if args.checkpoint is None:
                raise UserError("--add-genre needs --checkpoint (the trained model whose encoder is kept)")
            model, extra = load_umt(args.checkpoint)
            name, folder = _parse_add_genre(args.add_genre)
            sets = {name: folder_rolls(name, folder)}
            model.add_genre(name)
            new_genres: tuple[str, ...] = (name,)
            history = list(extra.get("history", [])) + [{"add_genre": name, "command": command}]
        else:
            overrides: dict = {"genres": tuple(args.genres)}
            if args.bottleneck:
                overrides["bottleneck"] = args.bottleneck
            if args.no_augment:
                overrides["augment"] = False
            if args.confusion_weight is not None:
                overrides["confusion_weight"] = args.confusion_weight
            config = get_config(args.config, **overrides)
            sets = genre_rolls(args.genres, args.dataset)
            model = UniversalTranslator(config)
            new_genres = ()
            history = [{"command": command}]
    except ValueError as error:
        raise UserError(str(error)) from error
    default_out = Path(f"umt_{new_genres[0]}.pt") if new_genres else Path("models/checkpoints/umt.pt")
    out: Path = (args.output or default_out).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    train = {g: balanced(s["train"], args.max_phrases, rng) for g, s in sets.items()}
    valid = {g: s["valid"][:256] for g, s in sets.items() if len(s["valid"])}
    counts = {g: {k: int(len(v)) for k, v in s.items()} for g, s in sets.items()}
    print("phrases per genre and split: " + ", ".join(f"{g} {c}" for g, c in counts.items()))
    trainer = UMTTrainer(model, seed=args.seed, new_genres=new_genres)
    best = {"step": 0, "valid_reconstruction": float("inf")}

    def save(step: int) -> None:
        loss = reconstruction_loss(model, valid) if valid else float("nan")
        print(f"step {step}: valid reconstruction {loss:.4f} (BCE per cell)")
        extra = {"steps": step, "seed": args.seed, "history": history, "valid_reconstruction": loss}
        save_umt(model, out.with_name(out.stem + ".last.pt"), extra)
        if not loss >= best["valid_reconstruction"]:  # the best on valid is the one kept (NaN: the last)
            best.update(step=step, valid_reconstruction=loss)
            save_umt(model, out, extra)

    result = train_loop(
        trainer, train, args.steps, args.seed, checkpoint=save, checkpoint_every=args.checkpoint_every,
        genres=list(new_genres) or None,
    )  # fmt: skip
    if result.steps % max(1, args.checkpoint_every):
        save(result.steps)
    out.with_name(out.stem + ".last.pt").unlink(missing_ok=True)
    model, extra = load_umt(out)  # the step chosen on valid
    threshold, f1_by_threshold = choose_threshold(model, valid) if valid else (0.5, {})
    model.threshold = threshold
    save_umt(model, out, extra)
    print(f"threshold {threshold} (valid reconstruction F1 by threshold: {f1_by_threshold})")
    write_card(
        out.with_suffix(".yaml"),
        {
            "model": "universal music translation (Mor et al. 2019) on piano rolls, "
            f"config {model.config.name}, bottleneck {model.config.bottleneck}",
            "genres": list(model.genres),
            "data": {
                "source": f"MIDI folder ({new_genres[0]})" if new_genres else "built dataset (genres.yaml)",
                "phrases": "4 bars x 16 steps x 84 pitches (MIDI 24..107), binary, tracks merged; 4/4 only",
                "phrases_per_split": counts,
                "train_phrases_used_per_genre": {g: int(len(r)) for g, r in train.items()},
                "split": "by tune, sha1 of the source id (80/10/10)",
            },
            "config": model.config.to_dict(),
            "parameters": int(sum(p.numel() for p in model.parameters())),
            "seed": args.seed,
            "steps": result.steps,
            "command": command,
            "history": history,
            "selection": f"step {best['step']} of {result.steps}: lowest valid reconstruction "
            f"({best['valid_reconstruction']:.4f} BCE per cell)",
            "threshold": threshold,
            "threshold_selection": "highest F1 of generated (greedy) reconstructions on valid: "
            + ", ".join(f"{k}: {v:.3f}" for k, v in f1_by_threshold.items()),
            "final_losses": result.losses,
            "train_seconds": round(result.seconds),
            "metrics": "run `musebridge eval umt --update-card`",
        },
    )
    print(f"wrote {out} and {out.with_suffix('.yaml')}")
    return 0


def _threshold_only(args) -> int:
    """`train umt --threshold-only --checkpoint X`: choose the greedy threshold of a trained model on
    valid (choose_threshold), store it in the checkpoint and its card; no training step."""
    import yaml

    from musebridge.commands.train import command_line
    from musebridge.errors import UserError
    from musebridge.models.cyclegan.train import write_card
    from musebridge.models.umt.data import genre_rolls
    from musebridge.models.umt.model import load_umt, save_umt

    if args.checkpoint is None or not args.checkpoint.is_file():
        raise UserError("--threshold-only needs --checkpoint, a trained UMT checkpoint")
    try:
        model, extra = load_umt(args.checkpoint)
        sets = genre_rolls(model.genres, args.dataset, splits=("valid",))
    except ValueError as error:
        raise UserError(str(error)) from error
    valid = {g: s["valid"][:256] for g, s in sets.items() if len(s["valid"])}
    threshold, scores = choose_threshold(model, valid)
    model.threshold = threshold
    save_umt(model, args.checkpoint, extra)
    card_path = args.checkpoint.with_suffix(".yaml")
    card = yaml.safe_load(card_path.read_text(encoding="utf-8")) if card_path.is_file() else {}
    card["threshold"] = threshold
    card["threshold_selection"] = (
        "highest F1 of generated (greedy) reconstructions on valid: "
        + ", ".join(f"{k}: {v:.3f}" for k, v in scores.items())
        + f" ({command_line()})"
    )
    write_card(card_path, card)
    print(f"threshold {threshold} (valid reconstruction F1 by threshold: {scores})")
    return 0
