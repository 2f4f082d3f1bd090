#!/usr/bin/env python3
"""The training job's child process: trains an Ultralytics model and exports the best
checkpoint to ONNX. The server embeds this file, writes it to the run's folder and runs

  YOLO_OFFLINE=1 YOLO_CONFIG_DIR=<run>/config OMP_NUM_THREADS=<n> \
      <trainer python> train.py --spec spec.json          # cwd: the run's folder

with the trainer venv's python (scripts/setup-trainer.sh; scripts/trainer/requirements.txt).

spec.json:
  task     detect | segment | pose | obb | classify
  data     detect..obb: an Ultralytics data.yaml; classify: a folder with train/ and val/, each
           with a folder of images per class
  model    a .pt checkpoint to start from, or an Ultralytics yaml name ("yolo11n.yaml") for
           random weights
  epochs, imgsz, batch, patience, device ("cpu", "cuda", "cuda:0"), workers, threads, seed
  out      the folder the run writes to (<out>/train/weights/best.pt, last.pt, best.onnx, ...)
  export   {"opset": 17, "imgsz": 160}

Progress: one line per event on stdout, "LSMLB " and compact JSON (ASCII only):
  {"event":"start","epochs":N,"model":...,"device":...,"task":...}
  {"event":"epoch","epoch":k,"epochs":N,"metrics":{"train/box_loss":...,"metrics/mAP50(B)":...}}
  {"event":"exported","onnx":...,"checkpoint":...,"epochs_run":k,"metrics":{...}}
           (metrics: Ultralytics' validation of the exported checkpoint, best.pt)
  {"event":"error","message":...}                                   and exit status 1
Everything else on stdout and stderr is Ultralytics' own log.

It never touches the network: Ultralytics would fetch fonts, AMP-check weights, datasets and
named weights ("yolo11n.pt"), so those checks are turned off, the inputs are checked here
first, and any connection that is still tried fails at once (a line on stderr says so).
"""
import argparse
import json
import math
import os
import socket
import sys

PREFIX = "LSMLB "
TASKS = ("detect", "segment", "pose", "obb", "classify")
IMAGE_SUFFIXES = {".bmp", ".dng", ".jpeg", ".jpg", ".mpo", ".png", ".tif", ".tiff", ".webp", ".pfm", ".heic", ".avif", ".jp2"}


class UserError(Exception):
    """A problem with the job's inputs, told to the user as it is."""


def emit(event, **fields):
    line = PREFIX + json.dumps({"event": event, **fields}, separators=(",", ":"), ensure_ascii=True)
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def plain(value):
    """A JSON-safe float (None for NaN and infinities)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


# ---------------------------------------------------------------- offline


def block_network():
    """Fails every connection and name lookup that leaves this machine, at once."""
    told = set()

    def local(host):
        if isinstance(host, bytes):
            host = host.decode(errors="replace")
        host = str(host or "")
        return host in ("", "localhost", "::1", "0.0.0.0") or host.startswith("127.")

    def refuse(host):
        if host not in told:
            told.add(host)
            print(f"trainer: no network access (tried {host}); the trainer runs offline", file=sys.stderr, flush=True)

    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def getaddrinfo(host, *args, **kwargs):
        if not local(host):
            refuse(host)
            raise socket.gaierror(socket.EAI_NONAME, f"no network access in the trainer ({host})")
        return real_getaddrinfo(host, *args, **kwargs)

    def outside(sock, address):
        return sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple) and not local(address[0])

    def connect(self, address):
        if outside(self, address):
            refuse(address[0])
            raise ConnectionRefusedError(f"no network access in the trainer ({address[0]})")
        return real_connect(self, address)

    def connect_ex(self, address):
        if outside(self, address):
            refuse(address[0])
            return 111  # ECONNREFUSED
        return real_connect_ex(self, address)

    socket.getaddrinfo = getaddrinfo
    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex


def quiet_ultralytics():
    """Turns off what in Ultralytics goes online: font downloads (its data checks fetch
    Arial.ttf even with plots=False), the CUDA AMP check (downloads yolo26n.pt), analytics,
    and the hub and logger integrations."""
    import re

    import ultralytics.data.utils as data_utils
    import ultralytics.engine.trainer as engine_trainer
    from ultralytics.utils import SETTINGS

    data_utils.check_font = lambda *args, **kwargs: None

    def check_amp(model):
        # Ultralytics' check runs a downloaded yolo26n.pt in FP16 and FP32; keep only its list of
        # GPUs known to break AMP.
        import torch

        device = next(model.parameters()).device
        if device.type != "cuda":
            return False
        bad = re.compile(r"(nvidia|geforce|quadro|tesla).*?(1660|1650|1630|t400|t550|t600|t1000|t1200|t2000|k40m)", re.I)
        return not bad.search(torch.cuda.get_device_name(device))

    engine_trainer.check_amp = check_amp
    off = {k: False for k in ("sync", "hub", "clearml", "comet", "dvc", "mlflow", "neptune", "raytune", "tensorboard", "wandb")
           if isinstance(SETTINGS.get(k), bool) and SETTINGS.get(k)}
    if off:
        SETTINGS.update(off)


# ---------------------------------------------------------------- inputs


def count_images(folder):
    n = 0
    for _, _, files in os.walk(folder, followlinks=True):
        n += sum(1 for f in files if os.path.splitext(f)[1].lower() in IMAGE_SUFFIXES)
    return n


def check_spec(spec):
    missing = [k for k in ("task", "data", "model", "epochs", "imgsz", "out") if k not in spec]
    if missing:
        raise UserError(f"the job spec lacks {', '.join(missing)}")
    if spec["task"] not in TASKS:
        raise UserError(f"unknown task {spec['task']!r} (expected one of {', '.join(TASKS)})")
    model = str(spec["model"])
    if model.endswith(".pt") and not os.path.isfile(model):
        raise UserError(f"the base model {model} does not exist (the trainer downloads nothing)")
    if not model.endswith((".pt", ".yaml", ".yml")):
        raise UserError(f"the model must be a .pt checkpoint or an Ultralytics .yaml, not {model!r}")
    if int(spec["epochs"]) < 1:
        raise UserError("epochs must be at least 1")
    if spec["task"] == "classify":
        check_classify_data(spec["data"])
    else:
        check_yaml_data(spec["data"])


def check_classify_data(root):
    if not os.path.isdir(root):
        raise UserError(f"the dataset folder {root} does not exist")
    for split in ("train", "val"):
        folder = os.path.join(root, split)
        if split == "val" and not os.path.isdir(folder):
            folder = next((os.path.join(root, s) for s in ("validation", "test") if os.path.isdir(os.path.join(root, s))), folder)
        if not os.path.isdir(folder):
            raise UserError(f"the dataset has no {split}/ folder (in {root})")
        classes = [c for c in os.listdir(folder) if os.path.isdir(os.path.join(folder, c))]
        if not classes:
            raise UserError(f"the dataset's {split}/ folder has no class folders")
        if count_images(folder) == 0:
            raise UserError(f"the dataset has no {split} images")


def check_yaml_data(path):
    import yaml

    if not os.path.isfile(path):
        raise UserError(f"the dataset file {path} does not exist")
    try:
        data = yaml.safe_load(open(path, encoding="utf-8"))
    except Exception as e:
        raise UserError(f"the dataset file {path} is not valid YAML: {e}")
    if not isinstance(data, dict):
        raise UserError(f"the dataset file {path} is not a mapping")
    if not data.get("names") and not data.get("nc"):
        raise UserError("the dataset has no class names")
    base = os.path.dirname(os.path.abspath(path))
    root = data.get("path") or base
    if not os.path.isabs(root):
        root = os.path.join(base, root)
    for split in ("train", "val"):
        entries = data.get(split)
        if not entries:
            raise UserError(f"the dataset file names no {split} images")
        n = 0
        for entry in entries if isinstance(entries, list) else [entries]:
            p = entry if os.path.isabs(entry) else os.path.join(root, entry)
            if os.path.isdir(p):
                n += count_images(p)
            elif os.path.isfile(p) and p.endswith(".txt"):
                n += sum(1 for line in open(p, encoding="utf-8") if line.strip())
            elif os.path.isfile(p):
                n += 1
            else:
                raise UserError(f"the dataset's {split} images are missing ({p} does not exist)")
        if n == 0:
            raise UserError(f"the dataset has no {split} images")


# ---------------------------------------------------------------- training


def train(spec):
    import torch
    from ultralytics import YOLO

    task = spec["task"]
    threads = int(spec.get("threads") or 0)
    if threads > 0:
        torch.set_num_threads(threads)
    epochs = int(spec["epochs"])
    device = str(spec.get("device") or "cpu")
    model = YOLO(spec["model"], task=task)
    state = {"epochs_run": 0, "in_epoch": False, "best": {}}

    def on_train_epoch_end(trainer):
        state["in_epoch"] = True

    def on_fit_epoch_end(trainer):
        # Ultralytics calls this after each epoch's validation, and once more after training
        # for its validation of best.pt (with epoch + 1): that one goes with the export.
        if not state["in_epoch"]:
            state["best"] = {str(k): plain(v) for k, v in (trainer.metrics or {}).items()}
            return
        state["in_epoch"] = False
        metrics = {}
        if trainer.tloss is not None:
            metrics.update(trainer.label_loss_items(trainer.tloss, prefix="train"))
        metrics.update(trainer.metrics or {})
        metrics.update(getattr(trainer, "lr", None) or {})
        state["epochs_run"] = trainer.epoch + 1
        emit("epoch", epoch=trainer.epoch + 1, epochs=trainer.epochs, metrics={str(k): plain(v) for k, v in metrics.items()})

    model.add_callback("on_train_epoch_end", on_train_epoch_end)
    model.add_callback("on_fit_epoch_end", on_fit_epoch_end)
    emit("start", epochs=epochs, model=str(spec["model"]), device=device, task=task)
    model.train(
        data=spec["data"],
        epochs=epochs,
        imgsz=int(spec["imgsz"]),
        batch=int(spec.get("batch", 16)),
        patience=int(spec.get("patience", 50)),
        device=device,
        workers=int(spec.get("workers", 0)),
        seed=int(spec.get("seed", 0)),
        deterministic=True,
        plots=False,
        project=os.path.abspath(spec["out"]),
        name="train",
        exist_ok=True,
        verbose=True,
    )
    trainer = model.trainer
    checkpoint = trainer.best if trainer.best.exists() else trainer.last
    if not checkpoint.exists():
        raise UserError("training wrote no checkpoint")
    export = spec.get("export") or {}
    onnx = YOLO(str(checkpoint), task=task).export(
        format="onnx",
        opset=int(export.get("opset", 17)),
        imgsz=export.get("imgsz", spec["imgsz"]),
        simplify=True,
        dynamic=False,
        device="cpu",
    )
    if not onnx or not os.path.isfile(onnx):
        raise UserError("the ONNX export wrote no file")
    emit("exported", onnx=os.path.abspath(onnx), checkpoint=os.path.abspath(str(checkpoint)), epochs_run=state["epochs_run"],
         metrics=state["best"])


def one_line(e):
    text = " ".join(str(e).split())
    for mark in ("❌", "✅", "⚠️", "⚠"):
        text = text.replace(mark, "")
    text = " ".join(text.split())
    if isinstance(e, UserError):
        return text
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spec", required=True)
    args = parser.parse_args()
    try:
        sys.stdout.reconfigure(line_buffering=True)
        os.environ.setdefault("YOLO_OFFLINE", "1")
        os.environ.pop("ULTRALYTICS_API_KEY", None)
        block_network()
        try:
            spec = json.load(open(args.spec, encoding="utf-8"))
        except Exception as e:
            raise UserError(f"cannot read the job spec {args.spec}: {e}")
        check_spec(spec)
        quiet_ultralytics()
        train(spec)
    except BaseException as e:  # noqa: B036 - every failure is reported as an event
        if isinstance(e, SystemExit) and e.code in (0, None):
            raise
        if not isinstance(e, UserError):
            import traceback

            traceback.print_exc()
        sys.stdout.write("\n")  # a progress bar may have left its line open
        emit("error", message="cancelled" if isinstance(e, KeyboardInterrupt) else one_line(e))
        sys.exit(1)


if __name__ == "__main__":
    main()
