"""`vlcurate train`: train the small DeepSeek-VL-shaped model on a dataset's shards.

    vlcurate train --shards DATASET|LIST|GLOB --stage 1|2|3 --steps N --output CKPT_DIR [--resume]
    torchrun --nproc_per_node=2 -m vlcurate.training.train --shards ... (gloo on CPU, nccl on GPUs)

Stages as in DeepSeek-VL: 1 trains the adaptor; 2 the LM and the adaptor (vision frozen);
3 is SFT on conversations with the LM, the adaptor and the low-resolution branch trained.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import sys
import time

import torch
import torch.distributed as dist

from vlcurate.training.checkpoint import (
    STATE, CheckpointError, load_tensors, read_json, remove_checkpoint, save_tensors, write_json,
)
from vlcurate.training.data import MULTIMODAL_ROUTES, DataConfig, RanDry, check_shards, make_loader, make_plan
from vlcurate.training.images import ImageConfig
from vlcurate.training.mixing import parse_mix
from vlcurate.training.model import ModelConfig, VisionLanguageModel, set_stage
from vlcurate.training.sources import LANGUAGE, NoData

log = logging.getLogger("vlcurate.train")
STAGE_LR = {1: 1e-3, 2: 1e-3, 3: 3e-4}  # the tiny model learns at higher rates than DeepSeek-VL's 7B
STAGE_WARMUP = {1: 0, 2: 200, 3: 0}  # modality warm-up steps: the paper's is in joint pretraining
ROUTES = (*MULTIMODAL_ROUTES, LANGUAGE)


class Refused(Exception):
    """A run that must not start: one line for stderr; ``usage``: the command line's mistake (exit 2)."""

    def __init__(self, message: str, usage: bool = True):
        super().__init__(message)
        self.usage = usage


def at_least(minimum, kind=int):
    """An argparse type: a number of ``kind`` no smaller than ``minimum`` (so a bad value is the
    parser's one-line error, not a failure deep in the run)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'a whole number' if kind is int else 'a number'}") \
                from None
        if not value >= minimum:  # also refuses NaN
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {text}")
        return value

    return parse


def share(text: str) -> float:
    value = at_least(0.0, float)(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return value


def parser() -> argparse.ArgumentParser:
    from vlcurate.pipelines.flags import ToolParser

    ap = ToolParser(prog="vlcurate train", description=__doc__)
    ap.add_argument("--shards", nargs="+", required=True,
                    help="dataset folder(s) (read through manifest.json), tar paths, globs, comma lists, @FILE, URLs")
    ap.add_argument("--stage", type=int, choices=(1, 2, 3), default=2,
                    help="DeepSeek-VL's stage: 1 the adaptor, 2 joint pretraining, 3 SFT on conversations")
    ap.add_argument("--steps", type=at_least(1), help="train until this step (a resumed run continues to it)")
    ap.add_argument("--output", help="checkpoint folder")
    ap.add_argument("--resume", action="store_true", help="continue from the checkpoint in --output")
    ap.add_argument("--overwrite", action="store_true",
                    help="start over in --output, replacing the checkpoint there (without --resume or --overwrite "
                         "a folder holding a checkpoint is refused)")
    ap.add_argument("--init", help="start from the weights of another run's checkpoint (the previous stage's), "
                    "with its model sizes")
    data = ap.add_argument_group("data")
    data.add_argument("--batch-size", type=at_least(1), default=4, help="samples per step per rank")
    data.add_argument("--mix", help="route weights, e.g. document_ocr=2,web_code=1,text_only=7")
    data.add_argument("--lang-share", type=share, help="target language share (default: text_only's share of "
                      "--mix, else 0.7; stage 1: 0)")
    data.add_argument("--warmup-steps", type=at_least(0), help="modality warm-up from 1.0 (default: 200 in stage 2, else 0)")
    data.add_argument("--warmup-shape", choices=("linear", "cosine"), default="linear",
                      help="how the language share falls from 1.0 to its target during the warm-up")
    data.add_argument("--workers", type=at_least(0), default=2, help="DataLoader worker processes per rank")
    data.add_argument("--seed", type=int, default=0, help="seed of the data order and the model's initial weights")
    data.add_argument("--max-image-pixels", type=at_least(1), default=40_000_000,
                      help="larger images are skipped before decoding")
    data.add_argument("--max-member-bytes", type=at_least(1), default=64 * 1024 * 1024,
                      help="larger tar members (and images) are skipped unread")
    data.add_argument("--max-images", type=at_least(1), default=4, help="images per sample")
    data.add_argument("--check", action="store_true",
                      help="read every shard once as training would, print what is usable and what is skipped, exit")
    opt = ap.add_argument_group("optimisation")
    opt.add_argument("--lr", type=at_least(0.0, float), help="peak learning rate (default by stage: 1e-3, 1e-3, 3e-4)")
    opt.add_argument("--lr-warmup", type=at_least(0), default=20, help="linear learning-rate warm-up steps")
    opt.add_argument("--schedule", choices=("cosine", "step"), default="cosine",
                     help="after the warm-up: cosine to a tenth of the peak, or down 10x at 80%% and at 90%%")
    opt.add_argument("--schedule-steps", type=at_least(1), help="length of the lr schedule (default: --steps)")
    opt.add_argument("--weight-decay", type=at_least(0.0, float), default=0.0, help="AdamW's weight decay")
    opt.add_argument("--model", default="", help="model sizes as KEY=VALUE,... over ModelConfig's defaults "
                     "(e.g. dim=256,layers=4)")
    run = ap.add_argument_group("logging and checkpoints")
    run.add_argument("--log-every", type=at_least(1), default=10, help="steps between log lines")
    run.add_argument("--log-json", help="also write the log lines as JSON lines to this file")
    run.add_argument("--log-samples", help="write each step's sample keys as JSON lines (per rank: FILE.rankR)")
    run.add_argument("--save-every", type=at_least(0), default=0, help="checkpoint every N steps (always at the end)")
    run.add_argument("--threads", type=at_least(0), default=0,
                     help="torch threads per rank (0: the cores left after the data workers, at least 1)")
    return ap


def model_config(text: str) -> ModelConfig:
    """``KEY=VALUE,...`` over ModelConfig's defaults; ValueError says what is wrong."""
    fields = {field.name: field.type for field in dataclasses.fields(ModelConfig)}
    values = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        if name not in fields:
            raise ValueError(f"--model: unknown field {name!r} (have {', '.join(sorted(fields))})")
        try:
            values[name] = float(value) if fields[name] in (float, "float") else int(value)
        except ValueError:
            raise ValueError(f"--model: {name}={value!r} is not a number") from None
    try:
        return ModelConfig(**values)
    except ValueError as error:
        raise ValueError(f"--model: {error}") from None


def learning_rate(step: int, peak: float, warmup: int, total: int, shape: str) -> float:
    """Linear warm-up, then cosine to a tenth of the peak, or steps down by 10x at 80% and 90%."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    if shape == "cosine":
        return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
    return peak * (0.1 ** (int(progress >= 0.8) + int(progress >= 0.9)))


@dataclasses.dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @classmethod
    def start(cls) -> "Distributed":
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world == 1:
            return cls(device=torch.device("cuda" if torch.cuda.is_available() else "cpu"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.is_available():
            torch.cuda.set_device(local)
            dist.init_process_group("nccl")
            device = torch.device("cuda", local)
        else:
            dist.init_process_group("gloo")
            device = torch.device("cpu")
        return cls(dist.get_rank(), dist.get_world_size(), device)

    def average_gradients(self, parameters) -> None:
        """One all-reduce over every trained gradient (unused ones as zeros, so every rank takes
        the same optimiser step whatever its batch held)."""
        for parameter in parameters:
            if parameter.grad is None:
                parameter.grad = torch.zeros_like(parameter)
        if self.world == 1:
            return
        flat = torch.cat([parameter.grad.reshape(-1) for parameter in parameters])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for parameter in parameters:
            parameter.grad.copy_(flat[offset:offset + parameter.numel()].view_as(parameter))
            offset += parameter.numel()

    def barrier(self):
        if self.world > 1:
            dist.barrier()


def data_config(args, model: ModelConfig) -> DataConfig:
    warmup = args.warmup_steps if args.warmup_steps is not None else STAGE_WARMUP[args.stage]
    return DataConfig(
        stage=args.stage, batch_size=args.batch_size, seed=args.seed, workers=args.workers,
        weights=tuple(sorted(parse_mix(args.mix).items())), lang_share=args.lang_share, warmup_steps=warmup,
        warmup_shape=args.warmup_shape, image=ImageConfig(model.low_size, model.high_size, args.max_image_pixels, args.max_member_bytes),
        image_tokens=model.image_tokens, max_len=model.max_len, max_images=args.max_images,
        max_member_bytes=args.max_member_bytes,
    )


def data_config_from(doc: dict) -> DataConfig:
    doc = dict(doc)
    doc["image"] = ImageConfig(**doc["image"])
    doc["weights"] = tuple(tuple(pair) for pair in doc["weights"])
    return DataConfig(**doc)


def run(argv) -> int:
    ap = parser()
    args = ap.parse_args(argv)
    if not args.check and (args.steps is None or args.output is None):
        ap.error("--steps and --output are required (except with --check)")
    if args.resume and args.overwrite:
        ap.error("--resume continues the checkpoint in --output, --overwrite replaces it: pass one of them")
    try:  # usage mistakes: one line and exit 2, before anything loads
        unknown = sorted(set(parse_mix(args.mix)) - set(ROUTES))
        model_config(args.model)
    except ValueError as error:
        ap.error(str(error))
    if unknown:
        ap.error(f"--mix: {unknown[0]!r} is not a route (routes: {', '.join(ROUTES)})")
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout, force=True)
    try:
        if args.check:
            return _check(args)
        env = Distributed.start()
        try:
            return _train(args, env)
        finally:
            if env.world > 1:
                dist.destroy_process_group()
    except (NoData, Refused) as error:
        print(f"vlcurate train: {error}", file=sys.stderr)
        return 2 if error.usage else 1
    except CheckpointError as error:
        print(f"vlcurate train: unreadable checkpoint: {error}", file=sys.stderr)
        return 1


def _check(args) -> int:
    """--check: read every shard once as training would; non-zero when nothing is usable."""
    dcfg = data_config(args, model_config(args.model))
    plan = make_plan(args.shards, dcfg)
    for note in plan.notes:
        log.info("note: %s", note)
    result = check_shards(plan, dcfg)
    print(json.dumps(result, indent=1, sort_keys=True))
    if not any(result["usable"].values()):
        skipped = ", ".join(f"{reason} {n}" for reason, n in sorted(result["skipped"].items())) or "none"
        raise NoData(f"no usable samples in {', '.join(args.shards)} (skipped: {skipped})")
    return 0


def _checkpoint_state(folder: str, flag: str) -> tuple[dict, ModelConfig, DataConfig]:
    """state.json of the checkpoint in ``folder`` and the configs it holds."""
    path = os.path.join(folder, STATE)
    if not os.path.isfile(path):
        raise Refused(f"{flag}: no checkpoint in {folder} (no {STATE}); pass the folder a `vlcurate train` run wrote")
    state = read_json(path)
    try:
        return state, ModelConfig(**state["model"]), data_config_from(state["data"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: not a checkpoint of this trainer ({type(error).__name__}: {error})") from None


def _check_output(args) -> None:
    """A new run's --output: a folder (or none yet), holding no checkpoint unless --overwrite."""
    if os.path.exists(args.output) and not os.path.isdir(args.output):
        raise Refused(f"--output {args.output} is a file; name a folder for the checkpoint")
    state = os.path.join(args.output, STATE)
    if os.path.exists(state) and not args.overwrite:
        try:
            step = f" (step {read_json(state)['step']})"
        except (CheckpointError, KeyError):
            step = ""
        raise Refused(f"{args.output} holds a checkpoint{step}: pass --resume to continue it, or --overwrite to "
                      "start over and replace it")


def _train(args, env: Distributed) -> int:
    say = log.info if env.rank == 0 else log.debug
    start, positions, seen = 0, {}, {"language": 0, "samples": 0}
    if args.resume:
        state, mcfg, dcfg = _checkpoint_state(args.output, "--resume")
        if state.get("world") != env.world:
            raise Refused(f"--resume: the checkpoint was written by {state.get('world')} ranks, this run has "
                          f"{env.world}")
        data_state = read_json(os.path.join(args.output, f"data-rank{env.rank}.json"))
        if data_state.get("step") != state.get("step"):
            raise CheckpointError(f"the data position of rank {env.rank} is from step {data_state.get('step')}, "
                                  f"not {state.get('step')}")
        start, positions, seen = state["step"], data_state["streams"], data_state["seen"]
        for name, value in state["optim"].items():  # the run's schedule, not today's defaults
            setattr(args, name, value)
        say("resuming from step %d (%s)", start, args.output)
    else:
        _check_output(args)
        if args.init:
            mcfg = _checkpoint_state(args.init, "--init")[1]
        else:
            mcfg = model_config(args.model)
        dcfg = data_config(args, mcfg)
    plan = make_plan(args.shards, dcfg)  # before anything is built or written: it may refuse the data
    # Data workers need cores too; an oversubscribed OpenMP pool spins and can run several times
    # slower than one thread.
    cores = max(1, (os.cpu_count() or 1) // env.world)
    torch.set_num_threads(args.threads or max(1, cores - dcfg.workers))
    torch.manual_seed(dcfg.seed)
    model = VisionLanguageModel(mcfg).to(env.device)
    trained_groups = set_stage(model, dcfg.stage)
    trained = [p for p in model.parameters() if p.requires_grad]
    peak = args.lr if args.lr is not None else STAGE_LR[dcfg.stage]
    optimizer = torch.optim.AdamW(trained, lr=peak, betas=(0.9, 0.95), weight_decay=args.weight_decay)
    if args.resume:
        load_tensors(args.output, model, optimizer)
    elif args.init:
        load_tensors(args.init, model, None)  # weights only: a new stage starts a new optimiser
        say("initialised from %s", args.init)
    json_log, samples_log = _open_logs(args, env)
    if args.overwrite and env.rank == 0:  # after --init read its weights: it may be the same folder
        remove_checkpoint(args.output)
    try:
        os.makedirs(args.output, exist_ok=True)
    except OSError as error:
        raise Refused(f"cannot make the checkpoint folder {args.output}: {error.strerror}", usage=False) from None
    env.barrier()
    say("stage %d: training %s (%d parameters of %d); %d shards; routes %s; language share %.2f -> %.2f over %d "
        "steps (%s); %d ranks x %d workers", dcfg.stage, "+".join(trained_groups), sum(p.numel() for p in trained),
        sum(p.numel() for p in model.parameters()), len(plan.shards),
        ", ".join(f"{r}:{w:g}" for r, w in plan.weights.items()), plan.schedule.share(0), plan.schedule.target,
        plan.schedule.warmup_steps, plan.schedule.shape, env.world, dcfg.workers)
    for note in plan.notes:
        say("note: %s", note)
    loader = make_loader(plan, dcfg, env.rank, env.world, start, positions)
    optim = {"lr": peak, "lr_warmup": args.lr_warmup, "schedule": args.schedule,
             "schedule_steps": args.schedule_steps, "weight_decay": args.weight_decay}
    total = args.schedule_steps or args.steps
    streams, counts = dict(positions), {}
    window = {"loss": 0.0, "steps": 0, "samples": 0, "language": 0, "wait": 0.0, "start": time.perf_counter()}
    step = start
    iterator = iter(loader)
    model.train()
    try:
        while step < args.steps:
            waited = time.perf_counter()
            try:
                batch = next(iterator)
            except RanDry:  # rebuilt by the DataLoader from a worker's traceback: the words are ours
                raise NoData("no usable samples left in the shards: every shard or sample was skipped "
                             f"(`vlcurate train --check --shards {' '.join(args.shards)}` counts them by reason)") \
                    from None
            window["wait"] += time.perf_counter() - waited
            assert batch["step"] == step, (batch["step"], step)  # the loader's order is the step order
            lr = learning_rate(step, peak, args.lr_warmup, total, args.schedule)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss = model(batch["ids"].to(env.device), batch["labels"].to(env.device),
                         batch["low"].to(env.device), batch["high"].to(env.device))
            if loss.requires_grad:  # a language batch in stage 1 touches nothing that trains
                loss.backward()
            env.average_gradients(trained)
            torch.nn.utils.clip_grad_norm_(trained, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            size = len(batch["keys"])
            streams[str(batch["stream"])] = batch["state"]
            counts[str(batch["stream"])] = batch["state"]["counts"]
            seen["samples"] += size
            seen["language"] += size if batch["language"] else 0
            window["loss"] += loss.item()
            window["steps"] += 1
            window["samples"] += size
            window["language"] += size if batch["language"] else 0
            if samples_log:
                samples_log.write(json.dumps({"step": step, "rank": env.rank, "language": batch["language"],
                                              "keys": batch["keys"], "loss": loss.item()}) + "\n")
            step += 1
            if step % args.log_every == 0 or step == args.steps:
                _log_line(step, lr, window, seen, counts, env, say, json_log)
                window = {"loss": 0.0, "steps": 0, "samples": 0, "language": 0, "wait": 0.0,
                          "start": time.perf_counter()}
            if step == args.steps or (args.save_every and step % args.save_every == 0):
                try:
                    _save(args.output, step, model, optimizer, mcfg, dcfg, optim, streams, seen, env)
                except OSError as error:
                    raise Refused(f"cannot write the checkpoint of step {step} to {args.output}: {error.strerror}",
                                  usage=False) from None
    finally:
        for handle in (json_log, samples_log):
            if handle:
                handle.close()
    say("done: step %d, checkpoint in %s", step, args.output)
    return 0


def _open_logs(args, env: Distributed):
    """The --log-json and --log-samples files (None where not asked), opened before the run starts."""
    paths = (args.log_json if env.rank == 0 else None,
             args.log_samples if env.world == 1 or not args.log_samples else f"{args.log_samples}.rank{env.rank}")
    handles = []
    for flag, path in zip(("--log-json", "--log-samples"), paths):
        try:
            handles.append(open(path, "a", encoding="utf-8") if path else None)
        except OSError as error:
            raise Refused(f"{flag} {path}: cannot write it ({error.strerror})") from None
    return handles


def _log_line(step, lr, window, seen, counts, env, say, json_log):
    elapsed = max(1e-9, time.perf_counter() - window["start"])
    skipped: dict[str, int] = {}
    for stream_counts in counts.values():
        for reason, n in stream_counts.items():
            skipped[reason] = skipped.get(reason, 0) + n
    line = {
        "step": step,
        "loss": window["loss"] / max(1, window["steps"]),
        "lr": lr,
        "lang_share": window["language"] / max(1, window["samples"]),
        "lang_share_total": seen["language"] / max(1, seen["samples"]),
        "samples_per_s": window["samples"] * env.world / elapsed,
        "data_wait": window["wait"] / elapsed,
        "skipped": skipped,
    }
    say("step %d  loss %.4f  lr %.2e  samples/s %.1f  language %.2f (total %.2f)  data wait %.0f%%%s", step,
        line["loss"], lr, line["samples_per_s"], line["lang_share"], line["lang_share_total"],
        100 * line["data_wait"], "  skipped " + json.dumps(skipped, sort_keys=True) if skipped else "")
    if json_log:
        json_log.write(json.dumps(line, sort_keys=True) + "\n")
        json_log.flush()


def _save(folder, step, model, optimizer, mcfg, dcfg, optim, streams, seen, env):
    os.makedirs(folder, exist_ok=True)
    write_json(os.path.join(folder, f"data-rank{env.rank}.json"), {"step": step, "streams": streams, "seen": seen})
    if env.rank == 0:
        save_tensors(folder, model, optimizer)
    env.barrier()  # every rank's position is on disk before state.json says the checkpoint is whole
    if env.rank == 0:
        write_json(os.path.join(folder, STATE), {
            "step": step, "world": env.world, "model": dataclasses.asdict(mcfg), "data": dataclasses.asdict(dcfg),
            "optim": optim,
        })
    env.barrier()


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
