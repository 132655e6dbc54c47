"""``ftdoctor run SCRIPT.py [-- ARGS...]``: the user's own script, with the doctor injected.

The script runs in this process exactly as ``python SCRIPT.py ARGS...`` would
run it (``__name__ == "__main__"``, ``sys.argv``, its directory first on
``sys.path``), its own output untouched. :class:`~ftdoctor.runner.capture.Capture`
reports each optimizer as it is built; the first one over a model starts a
doctor on that model (later ones join it), and every transformers ``Trainer``
gets a ``DoctorCallback``. When the script raises, the doctor is told
(``record_exception``) and the report holds the findings gathered up to the
crash plus the crash itself — as the evidence of the finding that explains it,
or as a ``script-crashed`` finding when none does.
"""

from __future__ import annotations

import dataclasses
import runpy
import sys
import sysconfig
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ftdoctor.catalogue import make_finding
from ftdoctor.errors import FtdoctorError
from ftdoctor.findings import Finding, Report
from ftdoctor.settings import Settings

if TYPE_CHECKING:
    import torch

    from ftdoctor.runner.output import RunOptions
    from ftdoctor.runtime.doctor import Doctor

#: The flat metrics every run report carries (contract); a script reports none of its own.
METRIC_KEYS = ("train_loss", "val_loss", "val_accuracy", "val_macro_f1")


class StepLimitReached(BaseException):
    """Raised from an optimizer step hook to end the script at ``--max-steps``.

    A BaseException, so that the script's own ``except Exception`` does not swallow it.
    """


@dataclass
class Outcome:
    """How the script ended."""

    status: str  # "completed", "crashed", "interrupted" or "stopped" (at --max-steps)
    #: what ended the script early; its traceback keeps the script's frames alive
    error: BaseException | None = None
    #: the globals of a script that ran to its end. Both keep the script's objects
    #: alive until the doctors have detached: freeing a DDP model while the doctor
    #: still watches it can hang the process (seen with gloo).
    namespace: dict[str, Any] | None = None

    @property
    def crashed(self) -> bool:
        return self.status == "crashed"


@dataclass
class ScriptSession:
    """The doctors and callbacks injected into one script run."""

    settings: Settings
    options: Any = None
    on_finding: Callable[[Finding], None] | None = None
    doctors: list["Doctor"] = field(default_factory=list)
    trainers: list[tuple["torch.nn.Module", Any]] = field(default_factory=list)  # (model, DoctorCallback)

    # --- what the capture reports ------------------------------------------

    #: the doctor of the script's own loop: every optimizer it builds, every module they train
    loop_doctor: "Doctor | None" = None
    #: doctors made by the Trainer callbacks, one per ``train()`` call, in order
    trainer_doctors: list["Doctor"] = field(default_factory=list)
    #: removers of hooks armed for the first training iteration
    stop_watching_calls: list[Callable[[], None]] = field(default_factory=list)

    def on_optimizer(self, optimizer: "torch.optim.Optimizer") -> None:
        from ftdoctor.runner.capture import find_models, optimizer_parameters

        params = optimizer_parameters(optimizer)
        if self._trained_by_trainer(params):
            return  # the Trainer's own optimizer: its DoctorCallback watches it
        models = find_models(params)
        doctor = self.loop_doctor
        if doctor is None:
            if not models:
                print("ftdoctor: an optimizer was built over parameters of no module; it is not watched", file=sys.stderr)
                return
            doctor = self.loop_doctor = self._start_doctor(models[0], optimizer)
            self._watch_first_iteration(doctor)
        else:
            doctor.add_optimizer(optimizer)  # a second optimizer, or one rebuilt each epoch: the same run
        for model in models:
            doctor.watch_module(model)

    def _watch_first_iteration(self, doctor: "Doctor") -> None:
        """Until the first optimizer step, every module the loop calls with gradients on joins the run
        (a head beside the encoder left out of every optimizer is then named by params-not-in-optimizer)."""
        from ftdoctor.runner.capture import unwrap_parallel, watch_top_level_calls

        def on_call(module: "torch.nn.Module") -> bool:
            if doctor.step or not doctor.attached:
                return False
            doctor.watch_module(unwrap_parallel(module))
            return True

        self.stop_watching_calls.append(watch_top_level_calls(on_call))

    def on_first_forward(self, module: "torch.nn.Module") -> None:
        """The script called a model before building any optimizer (a baseline evaluation): watch it now."""
        from ftdoctor.runner.capture import unwrap_parallel

        if self.loop_doctor is None and not self.trainers:
            self.loop_doctor = self._start_doctor(unwrap_parallel(module), None)

    def on_trainer(self, trainer: Any) -> None:
        """A Trainer was built: watch its model from now on (an ``evaluate()`` before ``train()``
        is seen), until its callback starts the doctor of each ``train()`` call."""
        loop = self.loop_doctor
        if loop is not None and not loop.optimizers and _holds_any(trainer.model, list(loop.model.parameters())):
            loop.detach()  # it only saw this model called before the Trainer existed: the Trainer's doctors take over
            self.loop_doctor = None
        before_training = self._start_doctor(trainer.model, None)
        callback = _announcing_callback(self.on_finding, before_training, self.trainer_doctors)(
            settings=self.settings, options=self.options
        )
        trainer.add_callback(callback)
        self.trainers.append((trainer.model, callback))

    def _start_doctor(self, model: "torch.nn.Module", optimizer: "torch.optim.Optimizer | None") -> "Doctor":
        import ftdoctor

        doctor = ftdoctor.watch(model, optimizer, settings=self.settings, options=self.options)
        if self.on_finding is not None:
            doctor.on_finding.append(self.on_finding)
        self.doctors.append(doctor)
        return doctor

    def _trained_by_trainer(self, params: Sequence["torch.Tensor"]) -> bool:
        return any(_holds_any(model, params) for model, _ in self.trainers)

    # --- the end -----------------------------------------------------------

    def all_doctors(self) -> list["Doctor"]:
        """Every doctor that saw something: the loop's, each Trainer run's, and what a Trainer's
        model did before its first ``train()``."""
        doctors = self.doctors + self.trainer_doctors
        return [doctor for doctor in doctors if doctor.step or any(doctor.observed.values()) or doctor.findings]

    def finish(self, outcome: Outcome) -> tuple[Report, dict[str, Any] | None]:
        """Tell the doctors how the script ended, detach them; the report and the crash's details."""
        doctors = self.all_doctors()
        for doctor in doctors:
            if outcome.crashed:
                assert outcome.error is not None
                doctor.record_exception(outcome.error)
            doctor.detach()
        for stop in self.stop_watching_calls:
            stop()
        for doctor in self.doctors + self.trainer_doctors:
            doctor.detach()  # also those that saw nothing (a Trainer never trained)
        report = _combine([doctor.report() for doctor in doctors])
        if len(doctors) > 1:  # several runs (two train() calls): each stays visible, never merged silently
            report.extra["runs"] = [_run_entry(doctor) for doctor in doctors]
        report.extra["watched"] = [_watched(doctor) for doctor in doctors]
        report.extra["curves"] = _curves(doctors)
        if not doctors:
            print("ftdoctor: the script built no optimizer, so nothing was watched", file=sys.stderr)
        if not outcome.crashed:
            return report, None
        assert outcome.error is not None
        return report, _crash_details(report, doctors, outcome.error, self.settings)


def _curves(doctors: Sequence["Doctor"]) -> dict[str, Any]:
    """Per-step statistics for the text sparklines and the HTML plots: the longest-running doctor's."""
    from ftdoctor.report.report_data import history_columns

    longest = max(doctors, key=lambda doctor: len(doctor.history), default=None)
    return {"train": history_columns(longest.history if longest else []), "evaluations": []}


def _run_entry(doctor: "Doctor") -> dict[str, Any]:
    report = doctor.report()
    return {**_watched(doctor), "steps": doctor.step, "verdict": report.verdict, "coverage": report.coverage,
            "findings": sorted({finding.rule for finding in doctor.findings})}


def _watched(doctor: "Doctor") -> dict[str, Any]:
    return {"model": type(doctor.model).__name__, "optimizers": [type(o).__name__ for o in doctor.optimizers]}


def _announcing_callback(
    on_finding: Callable[[Finding], None] | None, before_training: "Doctor", runs: list["Doctor"]
) -> type:
    """``DoctorCallback`` whose doctor (made at ``on_train_begin``) announces its findings and joins
    ``runs``; the doctor that watched the model ``before_training`` hands over to it."""
    from ftdoctor.integrations import DoctorCallback

    class AnnouncingDoctorCallback(DoctorCallback):
        def on_train_begin(self, *args: Any, **kwargs: Any) -> None:
            before_training.detach()
            super().on_train_begin(*args, **kwargs)
            doctor = self.doctor
            if doctor is None:
                return
            if on_finding is not None and on_finding not in doctor.on_finding:
                doctor.on_finding.append(on_finding)
            if not any(doctor is run for run in runs):
                runs.append(doctor)

    return AnnouncingDoctorCallback


def _holds_any(model: "torch.nn.Module", params: Sequence["torch.Tensor"]) -> bool:
    wanted = {id(param) for param in params}
    return any(id(param) in wanted for param in model.parameters())


def run_script(path: str | Path, args: Sequence[str], options: "RunOptions") -> int:
    """``ftdoctor run SCRIPT.py -- ARGS``: diagnose the script, print and save the report, return the exit code.

    Findings are announced on stderr as they are established; the script keeps
    stdout and stderr for its own output (no live panel drawn over it).
    """
    from ftdoctor.runner.display import PlainDisplay
    from ftdoctor.runner.output import finish_run

    report = diagnose_script(
        path, args, settings=options.settings, max_steps=options.max_steps, seed=options.seed,
        on_finding=PlainDisplay(sys.stderr).on_finding,
    )
    status = report.extra["script"]["status"]
    return finish_run(report, options, interrupted=status == "interrupted", crashed=status == "crashed")


def diagnose_script(
    path: str | Path,
    args: Sequence[str] = (),
    *,
    settings: Settings | None = None,
    options: Any = None,
    max_steps: int | None = None,
    seed: int | None = None,
    on_finding: Callable[[Finding], None] | None = None,
) -> Report:
    """Run the script at ``path`` with ``args`` under the doctor; the report of what it found.

    ``options`` are the doctor's thresholds (``DoctorOptions``); ``max_steps``
    ends the script after that many optimizer steps; ``seed`` seeds Python's,
    NumPy's and torch's generators first; ``on_finding`` is called as each
    finding is established. ``report.extra["script"]`` says how the script
    ended (``status``: completed, crashed, interrupted, stopped) and, after a
    crash, where and why (``crash``).
    """
    from ftdoctor.runner.builtins import BuiltinModels
    from ftdoctor.runner.capture import Capture

    script = _checked_script(Path(path))
    session = ScriptSession(settings=settings or Settings(), options=options, on_finding=on_finding)
    if seed is not None:
        _seed_everything(seed)
    with Capture(session.on_optimizer, session.on_trainer, session.on_first_forward), _step_limit(max_steps), \
            BuiltinModels():
        outcome = _execute(script, [str(path), *args])  # argv[0] as the user typed it, like python does
    report, crash = session.finish(outcome)
    report.extra["script"] = {
        "path": display_path(script), "args": list(args), "status": outcome.status,
        "watched": report.extra.pop("watched"),
    }
    if crash is not None:
        report.extra["script"]["crash"] = crash
    return report


def _seed_everything(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy
    except ImportError:
        return
    numpy.random.seed(seed)


def _checked_script(path: Path) -> Path:
    if not path.exists():
        raise FtdoctorError(f"script {path} does not exist")
    if not path.is_file() or path.suffix != ".py":
        raise FtdoctorError(f"{path} is not a Python script; `ftdoctor run` takes a .py file (or --config CFG.yaml)")
    _check_syntax(path)
    return path.resolve()


def _check_syntax(path: Path) -> None:
    """A script that does not parse is the user's input error (exit 2), not a training crash."""
    try:
        source = path.read_bytes()
        compile(source, str(path), "exec", dont_inherit=True)
    except SyntaxError as error:
        raise FtdoctorError(_syntax_message(path, error)) from None
    except (OSError, ValueError) as error:  # unreadable, or null bytes
        raise FtdoctorError(f"cannot read {path} as a Python script: {error}") from None


def _syntax_message(path: Path, error: SyntaxError) -> str:
    where = f"{path}:{error.lineno}" if error.lineno else str(path)
    message = f"{where}: the script does not parse, so it was not run: {error.msg}"
    if not error.text:
        return message
    code = error.text.rstrip("\r\n")
    stripped = code.lstrip()
    caret = " " * max((error.offset or 1) - 1 - (len(code) - len(stripped)), 0) + "^"
    return f"{message}\n    {stripped}\n    {caret}"


def _execute(script: Path, argv: list[str]) -> Outcome:
    try:
        with _as_main_program(script, argv):
            namespace = runpy.run_path(str(script), run_name="__main__")
    except SystemExit as exc:
        if exc.code in (None, 0):
            return Outcome("completed")
        return Outcome("crashed", exc)
    except StepLimitReached as exc:
        return Outcome("stopped", exc)
    except KeyboardInterrupt as exc:
        return Outcome("interrupted", exc)
    except Exception as exc:  # the script's own failure: reported, never re-raised
        _print_script_traceback(exc, script)
        return Outcome("crashed", exc)
    return Outcome("completed", namespace=namespace)


def _print_script_traceback(error: BaseException, script: Path) -> None:
    """The traceback Python would have printed, starting at the script (not at runpy or ftdoctor)."""
    tb = error.__traceback__
    while tb is not None and Path(tb.tb_frame.f_code.co_filename) != script:
        tb = tb.tb_next
    traceback.print_exception(type(error), error, tb or error.__traceback__, file=sys.stderr)


@contextmanager
def _as_main_program(script: Path, argv: list[str]) -> Iterator[None]:
    """``sys.argv`` and ``sys.path`` as ``python SCRIPT ARGS`` sets them; restored afterwards.

    Modules imported from the script's folder are forgotten afterwards, so that
    a second run in the same process imports the user's helpers afresh.
    """
    saved_argv, saved_path = sys.argv, list(sys.path)
    before = set(sys.modules)
    sys.argv = list(argv)
    sys.path.insert(0, str(script.parent))
    try:
        yield
    finally:
        sys.argv = saved_argv
        sys.path[:] = saved_path
        library = _library_folders()  # ftdoctor's own modules may live below the script's folder too
        for name in set(sys.modules) - before:
            file = getattr(sys.modules[name], "__file__", None)
            if _is_under(file, script.parent) and not any(_is_under(file, folder) for folder in library):
                del sys.modules[name]


def _is_under(file: str | None, folder: Path) -> bool:
    return file is not None and Path(file).resolve().is_relative_to(folder)


@contextmanager
def _step_limit(max_steps: int | None) -> Iterator[None]:
    """End the script after ``max_steps`` steps of any one optimizer."""
    if max_steps is None:
        yield
        return
    from torch.optim.optimizer import register_optimizer_step_post_hook

    steps: dict[int, int] = {}

    def count(optimizer: Any, args: Any, kwargs: Any) -> None:
        steps[id(optimizer)] = steps.get(id(optimizer), 0) + 1
        if steps[id(optimizer)] >= max_steps:
            raise StepLimitReached

    handle = register_optimizer_step_post_hook(count)
    try:
        yield
    finally:
        handle.remove()


# --- the report ----------------------------------------------------------------


def _combine(reports: list[Report]) -> Report:
    """One report for the run; usually one doctor, two when a script trains two models."""
    if not reports:
        return Report(mode="run", metrics={key: None for key in METRIC_KEYS})
    combined = reports[0]
    for other in reports[1:]:
        combined.findings.extend(other.findings)
        combined.steps += other.steps
        combined.coverage = _merged_coverage(combined.coverage, other.coverage)
        combined.extra.update({key: value for key, value in other.extra.items() if key not in combined.extra})
    for key in METRIC_KEYS:
        combined.metrics.setdefault(key, None)
    return combined


def _merged_coverage(first: dict[str, Any] | None, second: dict[str, Any] | None) -> dict[str, Any] | None:
    """A signal seen by any run was seen; a rule could not run when it could not in any run."""
    if first is None or second is None:
        return first or second
    observed = {key: first["observed"][key] or second["observed"].get(key, False) for key in first["observed"]}
    in_both = {entry["rule"] for entry in first["not_run"]} & {entry["rule"] for entry in second["not_run"]}
    not_run = [entry for entry in first["not_run"] if entry["rule"] in in_both]
    return {"observed": observed, "not_run": not_run}


def _crash_details(report: Report, doctors: Sequence["Doctor"], error: BaseException, settings: Settings) -> dict[str, Any]:
    """Describe the crash; mark the findings that explain it, or add ``script-crashed`` when none does.

    A rule explains a crash when it fired and the error matches its
    ``explains_crashes`` (see :meth:`RuntimeRule.explains`).
    """
    crash = describe_crash(error)
    explaining = {rule.slug for doctor in doctors for rule in doctor.rules if rule.explains(error)}
    explaining &= {finding.rule for finding in report.findings}  # an ignored rule explains nothing
    crash["explained_by"] = sorted(explaining)
    summary = f"{crash['type']}: {crash['message']}"
    report.findings = [
        _with_evidence(finding, explains_crash=summary) if finding.rule in explaining else finding
        for finding in report.findings
    ]
    if not explaining:
        report.findings.extend(settings.apply([_crash_finding(crash, report.steps)]))
    return crash


def _with_evidence(finding: Finding, **evidence: Any) -> Finding:
    return dataclasses.replace(finding, evidence={**(finding.evidence or {}), **evidence})


def describe_crash(error: BaseException) -> dict[str, Any]:
    """Type, message and the innermost frame of user code (not torch, not ftdoctor, not the stdlib)."""
    frame = _innermost_user_frame(error.__traceback__)
    crash = {
        "type": type(error).__name__,
        "message": str(error).strip() or type(error).__name__,
        "path": display_path(Path(frame.filename)) if frame else None,
        "line": frame.lineno if frame else None,
        "code": frame.line if frame else None,
    }
    if isinstance(error, SystemExit):
        crash.update(message=f"exit status {error.code}", exit_status=error.code)
    return crash


def _innermost_user_frame(tb: TracebackType | None) -> traceback.FrameSummary | None:
    library = _library_folders()
    user = [
        frame for frame in traceback.extract_tb(tb)
        if not frame.filename.startswith("<") and not any(_is_under(frame.filename, folder) for folder in library)
    ]
    return user[-1] if user else None


def _library_folders() -> list[Path]:
    import ftdoctor

    paths = sysconfig.get_paths()
    folders = {Path(paths[key]).resolve() for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    folders.add(Path(ftdoctor.__file__).resolve().parent)
    return sorted(folders)


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it (as ``check`` reports paths)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _crash_finding(crash: dict[str, Any], steps: int) -> Finding:
    where = f" at {crash['path']}:{crash['line']}" if crash.get("path") else ""
    if "exit_status" in crash:
        what = f"exited with status {crash['exit_status']}"
    else:
        what = f"raised {crash['type']}: {crash['message']}"
    return make_finding(
        "script-crashed",
        f"the script {what}{where}, and no finding explains it",
        "fix the failing line (the script's traceback is on stderr above the report) and rerun",
        path=crash["path"],
        line=crash["line"],
        step=steps,
        evidence={key: crash[key] for key in ("type", "message") if crash.get(key) is not None},
    )
