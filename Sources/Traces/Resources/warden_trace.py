"""Warden's execution tracer: CWM-format traces of Python code, run inside the jail.

The format, as read in facebookresearch/cwm (commit 7930e029):
- PROMPTING_GUIDE.md, "Trace Prediction Tokens" and "Trace Prediction": a trace prompt is
  `<|begin_of_text|><|trace_context_start|>$CONTEXT<|frame_sep|>`; in $CONTEXT the entry point
  is marked with a `# << START_OF_TRACE` comment. Frames are
      <|call_sep|>$LOCALS<|action_sep|>$SOURCE<|frame_sep|>
      <|line_sep|>$LOCALS<|action_sep|>$SOURCE<|frame_sep|>
      <|return_sep|><|action_sep|>$SOURCE<|arg_sep|>$VALUE<|frame_sep|>
      <|exception_sep|><|action_sep|>$SOURCE<|arg_sep|>$VALUE<|frame_sep|>
  $LOCALS is a JSON object whose values are always JSON strings; $VALUE is a JSON-encoded
  string representation. `<|end_of_text|>` ends the execution, when the entry's scope exits.
- demos/cwmdbg.py: locals are written with `json.dumps(local_vars)` (default separators), the
  value with `json.dumps(arg)` (a repr string, so `"3"`); the source line keeps its newline and
  not the START_OF_TRACE marker; locals are "diff-based": a value shown as `..` is the same as
  its last occurrence, looked up backwards and *stopping at the first call or return frame*.
  So this tracer abbreviates a value only when the frame just before is a call or line frame
  of the same function invocation, which is what that decoder can undo.
- demos/README.md: the strawberry example (`count_letters(s, letter)`, tech report Fig B.25).
Not published there, so chosen here: the exception value is `repr(exception)`; a frame left
by an exception gets its exception frame and no return frame; a generator or coroutine gets a
call frame at each start or resume and a return frame (the yielded value) at each yield.

Default reprs' addresses (`<X object at 0x7f...>`) are numbered by first appearance in the
trace (`at 0x1`), so two runs of the same code give the same trace.

Files of the repository are named relative to --root; others by their absolute path.

Scope: only code under --root (minus site-packages and this file) is traced line by line;
a call from traced code into anything else (the standard library, site-packages) is one call
and one return frame. Only the main thread is traced. Python >= 3.12 uses sys.monitoring,
older Pythons sys.settrace. Caps (frames, repr length, bytes, seconds) end a trace early and
mark it `truncated` with the caps that fired, never silently.

Usage (stdout is left to the program; results go to --out):
    python3 warden_trace.py --out DIR [--root DIR] [--max-*] program --file F --entry FUNC [--args JSON]
    python3 warden_trace.py --out DIR [--root DIR] [--max-*] pytest [--instance-id ID] [--test ID]... -- PYTEST_ARGS...
Writes DIR/traces.jsonl (one structured row per trace) and DIR/cwm/NNNN.txt (CWM text).
"""

import argparse
import importlib.util
import inspect
import json
import linecache
import os
import re
import signal
import sys
import sysconfig
import threading
import time

THIS_FILE = os.path.abspath(__file__)
TOKENS = {
    "call": "<|call_sep|>", "line": "<|line_sep|>", "return": "<|return_sep|>", "exception": "<|exception_sep|>",
}
MARKER = "  # << START_OF_TRACE"
ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


class Limits:
    def __init__(self, max_frames=10000, max_repr=200, max_bytes=4 << 20, max_seconds=20.0):
        self.max_frames, self.max_repr, self.max_bytes, self.max_seconds = max_frames, max_repr, max_bytes, max_seconds

    def as_dict(self):
        return {"max_frames": self.max_frames, "max_repr": self.max_repr, "max_bytes": self.max_bytes,
                "max_seconds": self.max_seconds}


class Scope:
    """Which files are the repository's own code."""

    def __init__(self, root):
        self.root = os.path.abspath(root) + os.sep
        paths = sysconfig.get_paths()
        self.outside = {os.path.abspath(p) + os.sep for p in (paths["stdlib"], paths["purelib"], paths["platlib"])}
        self.cache = {}

    def name(self, filename):
        """A repository file's path relative to the root: traces of two checkouts compare equal."""
        return os.path.abspath(filename)[len(self.root):]

    def owns(self, filename):
        known = self.cache.get(filename)
        if known is None:
            path = os.path.abspath(filename)
            # `<frozen os>`, `<string>`: frozen standard modules and generated code are not files
            # of the repository, though abspath would put them under it.
            known = (not filename.startswith("<") and path.startswith(self.root) and path != THIS_FILE and "site-packages" not in path
                     and not any(path.startswith(p) for p in self.outside))
            self.cache[filename] = known
        return known


class Trace:
    """One trace: the frames of one entry call, with full locals, and why it stopped early."""

    def __init__(self, entry_code, scope, limits):
        self.entry_code, self.scope, self.limits = entry_code, scope, limits
        self.frames = []
        self.truncated_by = []
        self.bytes = 0
        self.started = time.monotonic()
        self.depth = 0          # > 0 while inside the entry call
        self.done = False
        self.last = None        # (frame object, kind) of the last recorded frame
        self.pending_unwind = {}  # id(frame) -> the exception it last saw, until its next line
        self.skipped_threads = False
        self.addresses = {}

    def cap(self, reason):
        if reason not in self.truncated_by:
            self.truncated_by.append(reason)

    def safe_repr(self, value):
        try:
            text = repr(value)
        except Exception as error:  # a broken __repr__ is a fact about the program
            text = "<repr failed: %s>" % type(error).__name__
        if " at 0x" in text:
            text = ADDRESS.sub(self._address, text)
        if len(text) > self.limits.max_repr:
            self.cap("repr")
            text = text[: self.limits.max_repr] + "..."
        return text

    def _address(self, match):
        """A default repr's address becomes its order of appearance in the trace (` at 0x1`), so
        that the same run traces the same way twice and object identity is still visible."""
        number = self.addresses.setdefault(match.group(0), len(self.addresses) + 1)
        return " at 0x%x" % number

    def record(self, kind, frame, value=None, has_value=False, with_locals=True):
        if self.done:
            return
        if len(self.frames) >= self.limits.max_frames:
            return self.stop("frames")
        if time.monotonic() - self.started > self.limits.max_seconds:
            return self.stop("seconds")
        code = frame.f_code
        owned = self.scope.owns(code.co_filename)
        row = {
            "kind": kind, "file": self.scope.name(code.co_filename) if owned else code.co_filename, "line": frame.f_lineno, "function": code.co_name,
            "source": linecache.getline(code.co_filename, frame.f_lineno) or "\n",
            "locals": {name: self.safe_repr(v) for name, v in frame.f_locals.items()} if with_locals and owned else {},
        }
        if has_value:
            row["value"] = self.safe_repr(value)
        # The row's size as JSON, estimated from its strings (json.dumps per frame cost a third
        # of the tracer's time); escapes make the real size a little larger.
        self.bytes += 96 + len(row["file"]) + len(row["function"]) + len(row["source"]) + sum(
            len(name) + len(text) + 8 for name, text in row["locals"].items()) + len(row.get("value", ""))
        if self.bytes > self.limits.max_bytes:
            return self.stop("bytes")
        row["_frame"] = frame
        self.frames.append(row)

    def stop(self, reason):
        self.cap(reason)
        self.done = True

    # Events, shared by both back ends. `on_start` returns whether `frame` is part of the trace.
    def on_start(self, frame):
        if self.done:
            return False
        if self.depth == 0:
            if frame.f_code is not self.entry_code:
                return False
        elif not self.scope.owns(frame.f_code.co_filename):
            caller = frame.f_back
            if caller is None or not self.scope.owns(caller.f_code.co_filename):
                return False  # inside library code: not a boundary call
        self.depth += 1
        self.record("call", frame)
        return True

    def on_line(self, frame):
        self.pending_unwind.pop(id(frame), None)
        if not self.done and self.scope.owns(frame.f_code.co_filename):
            self.record("line", frame)

    def on_exception(self, frame, exception):
        """An exception raised in, or passing through, a traced frame (caught or not)."""
        self.pending_unwind[id(frame)] = exception
        if not self.done and self.scope.owns(frame.f_code.co_filename):
            self.record("exception", frame, exception, True)

    def on_exit(self, frame, value, unwinding, is_entry):
        """The frame returns (or yields) `value`, or unwinds by the exception `value`.

        A frame of the repository left by an exception already has its exception frame; a
        library frame (a boundary call) gets one here, its only frame after the call."""
        if self.depth == 0:
            return
        if not self.done:
            if not unwinding:
                self.record("return", frame, value, True)
            elif not self.scope.owns(frame.f_code.co_filename):
                self.record("exception", frame, value, True, with_locals=False)
        self.depth -= 1
        if is_entry:
            self.depth = 0
            self.done = True

    def rows(self):
        return [{k: v for k, v in row.items() if k != "_frame"} for row in self.frames]

    def cwm_frames(self):
        """The frames in CWM's text form, with `..` for a value unchanged since the previous
        frame when that frame is a call or line frame of the same invocation."""
        out = []
        previous = None
        for row in self.frames:
            kind = row["kind"]
            if kind in ("call", "line"):
                shown = {}
                same = previous is not None and previous["_frame"] is row["_frame"] and previous["kind"] in ("call", "line")
                for name, value in row["locals"].items():
                    shown[name] = ".." if same and previous["locals"].get(name) == value else value
                out.append(TOKENS[kind] + json.dumps(shown) + "<|action_sep|>" + row["source"] + "<|frame_sep|>")
            else:
                out.append(TOKENS[kind] + "<|action_sep|>" + row["source"] + "<|arg_sep|>" + json.dumps(row["value"])
                           + "<|frame_sep|>")
            previous = row
        return "".join(out)


def context_for(code):
    """The entry's source file with the START_OF_TRACE marker on its def line."""
    lines = linecache.getlines(code.co_filename)
    index = code.co_firstlineno - 1
    # Decorators come first: the marker goes on the `def` line itself.
    while index < len(lines) and not lines[index].lstrip().startswith(("def ", "async def ")):
        index += 1
    if index < len(lines):
        lines = list(lines)
        lines[index] = lines[index].rstrip("\n") + MARKER + "\n"
    return "".join(lines)


class SettraceBackend:
    name = "sys.settrace"

    def __init__(self, trace):
        self.trace = trace

    def global_hook(self, frame, event, arg):
        trace = self.trace
        is_entry = trace.depth == 0
        if event != "call" or not trace.on_start(frame):
            return None
        # Library frames keep line events (ignored) so that a return right after an exception
        # is known to be an unwind only when no line ran in between.

        def local(frame, event, arg):
            if event == "line":
                trace.on_line(frame)
            elif event == "exception":
                # The StopIteration that ends an awaited coroutine or a `yield from` is the
                # machinery, not the program: sys.monitoring has no RAISE for it either.
                if not issubclass(arg[0], (StopIteration, StopAsyncIteration)):
                    trace.on_exception(frame, arg[1])
            elif event == "return":
                exception = trace.pending_unwind.pop(id(frame), None)
                trace.on_exit(frame, exception if exception is not None else arg, exception is not None, is_entry)
            return local
        return local

    def start(self):
        sys.settrace(self.global_hook)

    def stop(self):
        sys.settrace(None)


class MonitoringBackend:
    name = "sys.monitoring"

    def __init__(self, trace):
        self.trace = trace
        self.main = threading.main_thread().ident
        self.busy = False
        self.open = {}  # id(frame) -> (frame, is the entry)
        self.lines_of = {}  # code -> {offset: line}, for backward jumps

    def _guard(self, handler):
        def call(*args):
            if self.busy or self.trace.done:
                return None
            if threading.get_ident() != self.main:
                self.trace.skipped_threads = True
                return None
            self.busy = True  # a __repr__ called while recording is not traced
            try:
                return handler(sys._getframe(1), *args)
            finally:
                self.busy = False
        return call

    def _events(self):
        E = sys.monitoring.events
        return {
            E.PY_START: self._start, E.PY_RESUME: self._start, E.JUMP: self._jump, E.PY_RETURN: self._return, E.PY_YIELD: self._return,
            E.PY_UNWIND: self._unwind, E.LINE: self._line, E.RAISE: self._raise, E.RERAISE: self._raise,
        }

    def start(self):
        mon = sys.monitoring
        self.tool = mon.DEBUGGER_ID
        mon.use_tool_id(self.tool, "warden-trace")
        mask = 0
        for event, handler in self._events().items():
            mon.register_callback(self.tool, event, self._guard(handler))
            mask |= event
        mon.set_events(self.tool, mask)

    def stop(self):
        mon = sys.monitoring
        mon.set_events(self.tool, 0)
        for event in self._events():
            mon.register_callback(self.tool, event, None)
        mon.free_tool_id(self.tool)
        mon.restart_events()

    def _start(self, frame, code, offset):
        is_entry = self.trace.depth == 0
        if self.trace.on_start(frame):
            self.open[id(frame)] = (frame, is_entry)

    def _jump(self, frame, code, offset, destination):
        """sys.settrace reports a line on every backward jump, even to the line it is on (a
        one-line loop or generator expression); LINE fires only when the line changes. This
        adds that line frame, so both back ends write the same trace."""
        if not self.trace.scope.owns(code.co_filename):
            return sys.monitoring.DISABLE
        if destination >= offset or not self._traced(frame):
            return None
        lines = self.lines_of.get(code)
        if lines is None:
            lines = {}
            for start, end, line in code.co_lines():
                for at in range(start, end, 2):
                    lines[at] = line
            self.lines_of[code] = lines
        if lines.get(destination) == lines.get(offset):
            self.trace.on_line(frame)
        return None

    def _traced(self, frame):
        known = self.open.get(id(frame))
        return known is not None and known[0] is frame

    def _line(self, frame, code, line):
        if self._traced(frame):
            self.trace.on_line(frame)
        elif not self.trace.scope.owns(code.co_filename):
            return sys.monitoring.DISABLE

    def _raise(self, frame, code, offset, exception):
        if self._traced(frame):
            self.trace.on_exception(frame, exception)

    def _exit(self, frame, value, unwinding):
        if self._traced(frame):
            _, is_entry = self.open.pop(id(frame))
            self.trace.on_exit(frame, value, unwinding, is_entry)

    def _return(self, frame, code, offset, value):
        self._exit(frame, value, False)

    def _unwind(self, frame, code, offset, exception):
        self._exit(frame, exception, True)


def backend_for(trace):
    return MonitoringBackend(trace) if sys.version_info >= (3, 12) else SettraceBackend(trace)


def run_traced(function, args, kwargs, trace):
    """Calls function under the tracer; returns (outcome, reason)."""
    backend = backend_for(trace)
    backend.start()
    try:
        function(*args, **kwargs)
        outcome, reason = "returned", None
    except BaseException as error:  # the program's exception is the trace's outcome
        outcome, reason = "raised", "%s: %s" % (type(error).__name__, error)
    finally:
        backend.stop()
    return outcome, reason, backend.name


class Writer:
    def __init__(self, out):
        self.out = out
        os.makedirs(os.path.join(out, "cwm"), exist_ok=True)
        self.rows = open(os.path.join(out, "traces.jsonl"), "w", encoding="utf-8")
        self.count = 0

    def write(self, trace, entry, outcome, reason, tracer, extra):
        self.count += 1
        name = "%04d.txt" % self.count
        row = dict(extra)
        row.update({
            "entry": entry, "frames": trace.rows() if trace else [], "truncated": bool(trace and trace.truncated_by),
            "truncated_by": trace.truncated_by if trace else [], "limits": trace.limits.as_dict() if trace else None,
            "outcome": outcome, "reason": reason, "tracer": tracer, "threads": "main thread only",
            "other_threads_ran": bool(trace and trace.skipped_threads), "python": sys.version.split()[0],
            "cwm": "cwm/" + name if trace else None,
        })
        if trace:
            text = "<|begin_of_text|><|trace_context_start|>" + context_for(trace.entry_code) + "<|frame_sep|>"
            text += trace.cwm_frames()
            if not trace.truncated_by:
                text += "<|end_of_text|>"
            with open(os.path.join(self.out, "cwm", name), "w", encoding="utf-8") as f:
                f.write(text)
        self.rows.write(json.dumps(row) + "\n")
        self.rows.flush()

    def close(self):
        self.rows.close()


def limits_from(options):
    return Limits(options.max_frames, options.max_repr, options.max_bytes, options.max_seconds)


def program_mode(options):
    path = os.path.abspath(options.file)
    writer = Writer(options.out)
    try:
        spec = importlib.util.spec_from_file_location("__warden_program__", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        function = getattr(module, options.entry)
    except BaseException as error:  # a program that does not load is a recorded outcome
        writer.write(None, options.entry, "error", "cannot load %s: %s: %s" % (options.file, type(error).__name__, error),
                     None, {})
        writer.close()
        return 0
    args = json.loads(options.args) if options.args else []
    positional, named = (args, {}) if isinstance(args, list) else ([], args)
    code = inspect.unwrap(function).__code__
    trace = Trace(code, Scope(options.root), limits_from(options))
    outcome, reason, tracer = run_traced(function, positional, named, trace)
    writer.write(trace, options.entry, outcome, reason, tracer, {})
    writer.close()
    return 0


class TimedOut(BaseException):
    pass


def unittest_to_node(test):
    """`test_x (tests.test_mod.Class.test_x)`, unittest's id, as pytest's node id."""
    match = re.match(r"^(\w+) \(([\w.]+)\)$", test)
    if not match:
        return test
    parts = match.group(2).split(".")
    if len(parts) < 3:
        return test
    return "/".join(parts[:-2]) + ".py::" + parts[-2] + "::" + parts[-1]


class PytestPlugin:
    """Traces the call phase of each test; the outcome comes from pytest's own report."""

    def __init__(self, options, writer):
        self.options, self.writer = options, writer
        self.scope = Scope(options.root)
        self.current = None  # (nodeid, trace, tracer)
        self.outcomes = {}
        self.reasons = {}
        self.seen = []  # node ids with a row
        self.requested = []
        self.seconds = {}  # node id -> seconds its call phase took
        self.alias = {}  # node id -> the id it was asked for by (a unittest id)

    def pytest_collection_modifyitems(self, session, config, items):
        if not self.requested:
            return
        keep = [item for item in items if wanted(item.nodeid, self.requested)]
        dropped = [item for item in items if not wanted(item.nodeid, self.requested)]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
        items[:] = keep

    def pytest_runtest_call(self, item):
        """Traces the call phase of any item whose test function pytest knows (plain tests and
        unittest TestCase methods alike); recording starts when that function is entered."""
        function = getattr(item, "obj", None)
        code = getattr(inspect.unwrap(function), "__code__", None) if function is not None else None
        if code is None:
            yield
            return
        nodeid = item.nodeid
        trace = Trace(code, self.scope, limits_from(self.options))
        backend = backend_for(trace) if not self.options.untraced else None
        self.current = (nodeid, trace, backend.name if backend else None)

        def alarm(signum, frame):
            trace.stop("seconds")
            self.reasons[nodeid] = "hang: the test ran past %s s" % self.options.test_timeout
            raise TimedOut(self.reasons[nodeid])

        previous = signal.signal(signal.SIGALRM, alarm)
        signal.setitimer(signal.ITIMER_REAL, self.options.test_timeout)
        started = time.monotonic()
        if backend:
            backend.start()
        try:
            yield
        finally:
            if backend:
                backend.stop()
            self.seconds[nodeid] = time.monotonic() - started
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or report.outcome != "passed":
            status = "skipped" if report.skipped else report.outcome
            if report.when != "call" and report.outcome == "failed":
                status = "error"
            self.outcomes.setdefault(report.nodeid, (status, report.when, self._reason(report)))

    def _reason(self, report):
        if report.passed:
            return None
        text = getattr(report, "longreprtext", "") or ""
        return text.strip().splitlines()[-1][:500] if text.strip() else None

    def pytest_runtest_logfinish(self, nodeid, location):
        status, when, reason = self.outcomes.get(nodeid, ("error", "call", "no report"))
        reason = self.reasons.get(nodeid, reason)
        current = self.current if self.current and self.current[0] == nodeid else None
        trace = current[1] if current else None
        tracer = current[2] if current and len(current) > 2 else None
        extra = {"test_id": self.alias.get(nodeid, nodeid)}
        if self.options.instance_id:
            extra = {"instance_id": self.options.instance_id, "test_id": self.alias.get(nodeid, nodeid)}
        extra["seconds"] = self.seconds.get(nodeid)
        if self.options.untraced:
            trace = None
        entry = trace.entry_code.co_name if trace else nodeid.split("::")[-1]
        self.writer.write(trace, entry, status, reason, tracer, extra)
        self.seen.append(nodeid)
        self.current = None

    def pytest_collectreport(self, report):
        if report.failed:
            extra = {"test_id": report.nodeid}
            if self.options.instance_id:
                extra = {"instance_id": self.options.instance_id, "test_id": report.nodeid}
            text = (getattr(report, "longreprtext", "") or "").strip().splitlines()
            self.writer.write(None, report.nodeid, "error", "collection failed: " + (text[-1][:500] if text else "?"),
                              None, extra)
            self.seen.append(report.nodeid)


def wanted(nodeid, tests):
    return any(nodeid == t or nodeid.startswith(t + "::") or nodeid.startswith(t + "[") or nodeid.split("::")[0] == t
               for t in tests)


def mark_wrapper(plugin_class):
    import pytest
    plugin_class.pytest_runtest_call = pytest.hookimpl(wrapper=True)(plugin_class.pytest_runtest_call)


def pytest_mode(options):
    """Runs pytest on the files of the requested tests and deselects the rest, so that one
    unknown id is a row of its own instead of pytest's "not found" for the whole run."""
    import pytest
    mark_wrapper(PytestPlugin)
    writer = Writer(options.out)
    plugin = PytestPlugin(options, writer)
    requested = options.test or []
    tests = [unittest_to_node(test) for test in requested]
    plugin.alias = {node: test for node, test in zip(tests, requested) if node != test}
    files = []
    for test in tests:
        path = test.split("::")[0]
        if os.path.exists(path) and path not in files:
            files.append(path)
    plugin.requested = tests
    # A file that fails to collect (a syntax error) is its own row; the other files still run.
    arguments = ["--continue-on-collection-errors"] + [a for a in options.pytest_args if a != "--"] + files
    status = pytest.main(arguments, plugins=[plugin]) if files or not tests else None
    for test in tests:
        if not any(wanted(node, [test]) or node == test.split("::")[0] for node in plugin.seen):
            extra = {"test_id": plugin.alias.get(test, test)}
            if options.instance_id:
                extra = {"instance_id": options.instance_id, "test_id": test}
            why = "no such test file" if test.split("::")[0] not in files else "no such test"
            writer.write(None, test.split("::")[-1], "error", "%s (pytest exit %s)" % (why, status), None, extra)
    writer.close()
    return 0


def main(argv):
    parser = argparse.ArgumentParser(prog="warden_trace")
    parser.add_argument("--out", required=True)
    parser.add_argument("--root", default=os.getcwd(), help="the repository: code under it is traced line by line")
    parser.add_argument("--max-frames", type=int, default=10000)
    parser.add_argument("--max-repr", type=int, default=200)
    parser.add_argument("--max-bytes", type=int, default=4 << 20)
    parser.add_argument("--max-seconds", type=float, default=20.0)
    modes = parser.add_subparsers(dest="mode", required=True)
    program = modes.add_parser("program")
    program.add_argument("--file", required=True)
    program.add_argument("--entry", required=True)
    program.add_argument("--args")
    tests = modes.add_parser("pytest")
    tests.add_argument("--instance-id")
    tests.add_argument("--test-timeout", type=float, default=60.0)
    tests.add_argument("--test", action="append", help="a test id to trace (repeatable)")
    tests.add_argument("--untraced", action="store_true", help="run the tests the same way without tracing (a baseline)")
    tests.add_argument("pytest_args", nargs=argparse.REMAINDER)
    options = parser.parse_args(argv)
    return program_mode(options) if options.mode == "program" else pytest_mode(options)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
