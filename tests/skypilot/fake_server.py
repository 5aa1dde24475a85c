#!/usr/bin/env python3
"""A fake SkyPilot API server (managed jobs only), for jobrun's skypilot backend tests.

Follows ../shared/reference/skypilot-api.md (SkyPilot 0.11.2, API 24) field by field: async
requests answered with `null` + X-Skypilot-Request-ID, a request table read through /api/get
(blocking) and /api/status, /jobs/logs streamed with chunked encoding, a managed-job state
machine driven by wall-clock time since each job's creation. Python 3.11 stdlib only.

    python3 tests/skypilot/fake_server.py --port PORT [options]

Prints `fake skypilot listening on 127.0.0.1:PORT` once ready (--port 0 picks a free port).

Options:
  --api-version N      API version reported by /api/health and echoed in headers (default 24)
  --version S          server version (default 0.11.2)
  --no-queue-v2        /jobs/queue/v2 answers 404 (also the case when --api-version < 18)
  --queue-form F       list (0.11, default) or dict (0.10): what /jobs/queue returns
  --token sky_...      require `Authorization: Bearer <token>` (service-account token)
  --basic user:pass    require HTTP Basic auth (both may be given; either credential works)
  --fail-every N       every Nth request gets 503 {"detail":"Server is busy"}, unprocessed
  --drop-every N       every Nth request has its connection closed without a response
  --drop-launch N      the first N /jobs/launch requests are accepted (their request is queued
                       and creates the job) and then have their connection closed before the
                       answer: a launch whose answer is lost
  --state FILE         persist jobs and requests to FILE (atomic rewrite on every change) and
                       load it at start, so a restarted server keeps every job and request
  --tick SECONDS       duration unit of the job state machine (default 0.2)
  --controller-stopped the jobs controller starts stopped (see below)
  --verbose            log each request to stderr

Jobs: PENDING (1 tick) -> STARTING (1 tick) -> RUNNING -> terminal, scripted by the task's envs:
  METTA_ARGS     (with the rest of the environment launch.py set) plays Metta's skypilot_run.sh,
                 which reads the monitors' settings from the environment (metta-origins §3, §7):
                 HEARTBEAT_TIMEOUT below the monitor's 30 s check -> heartbeat_timeout;
                 MAX_RUNTIME_HOURS with TEST_JOB_RESTART=true -> force_restart_test, RECOVERING,
                 then max_runtime_reached (Restart Count 1); MAX_RUNTIME_HOURS alone ->
                 max_runtime_reached; TEST_NCCL=true -> the NCCL test on the first attempt.
                 METTA_ARGS are the tool's overrides: "evaluator.epoch_interval" -> training fails
                 (Exit code 1, job_completed); a token starting with "-" (a launch.py flag sent
                 as a tool argument) -> the tool rejects it (Exit code 2, job_completed);
                 anything else -> job_completed. All end SUCCEEDED; rank 0 prints [SUMMARY].
  FAKE_OUTCOME   succeed | fail | fail_setup | recover | long (1000 ticks) | no_resource
  (neither)      SUCCEEDED after 2 ticks of RUNNING.
Cancelling: CANCELLING for 1 tick, then CANCELLED.

The jobs controller: up at start (or stopped with --controller-stopped), as SkyPilot's auto-stops
when idle. While it is stopped, /jobs/queue[/v2] and /jobs/logs with `refresh: false` fail with
ClusterNotUpError (the logs stream answers 200 and streams the error text; only /api/get tells
the failure); `refresh: true` and /jobs/launch start it again.

Workspaces: a request acts in the `active_workspace` of its override_skypilot_config (default
"default"). A launched job belongs to it; /jobs/cancel skips, without an error, jobs of other
workspaces.

Test hooks (never counted, never authenticated, never failed or dropped):
  GET  /fake/stats        {"requests": {"<METHOD> <path>": count}, "total": N}
  GET  /fake/jobs         every managed job, all users: [{job_id, job_name, user_hash, status, workspace}]
  GET  /fake/tasks        every launch received, in order: [{job_id, body_name, task (the task
                          document as parsed), dag_name, env_vars, override_skypilot_config}]
  POST /fake/reset-stats  zeroes those counts, and with them the --fail-every/--drop-every count
  POST /fake/set          {"controller": "up"|"stopped", "logs_fail": N, "logs_retry": N}: stop or
                          start the jobs controller; make the next N /jobs/logs requests fail
                          (RuntimeError, the error streamed as text) or end with a <retry> line
"""
import argparse
import base64
import hashlib
import json
import os
import re
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PICKLE_NONE = "gAROLg=="  # pickle.dumps(None), base64
COMMIT = "9ca7f44f051ea8f41b8f875a9b3939f603a54e35"
MIN_COMPATIBLE_API_VERSION = 11
SERVER_USER = ("fffffff0", "fakeuser")
CONTROLLER = "sky-jobs-controller-fffffff0"
TERMINAL = {"SUCCEEDED", "FAILED", "FAILED_SETUP", "FAILED_PRECHECKS", "FAILED_NO_RESOURCE",
            "FAILED_CONTROLLER", "CANCELLED"}
REQUEST_TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED"}
SCHEDULE_STATE = {"PENDING": "WAITING", "STARTING": "LAUNCHING", "RUNNING": "ALIVE",
                  "RECOVERING": "ALIVE_WAITING", "CANCELLING": "ALIVE"}
RESET, RED, GREEN, YELLOW, CYAN, BOLD = "\x1b[0m", "\x1b[31m", "\x1b[32m", "\x1b[33m", "\x1b[36m", "\x1b[1m"
TASK_KEYS = {"name", "num_nodes", "resources", "setup", "run", "envs", "secrets", "workdir",
             "file_mounts", "event_callback", "service", "pool", "volumes", "config"}

# sky/utils/schemas.py's resources keys (0.11), and those of resources.job_recovery as a table.
RESOURCE_KEYS = {"infra", "cloud", "region", "zone", "cpus", "memory", "accelerators", "instance_type",
                 "use_spot", "disk_size", "disk_tier", "network_tier", "ports", "image_id", "labels",
                 "job_recovery", "spot_recovery", "accelerator_args", "autostop", "priority", "any_of",
                 "ordered", "_docker_login_config", "_is_image_managed", "_requires_fuse",
                 "_cluster_config_overrides"}
RECOVERY_KEYS = {"strategy", "max_restarts_on_errors", "recover_on_exit_codes"}


class ClusterNotUpError(Exception):
    """sky.exceptions.ClusterNotUpError: the jobs controller is not up."""


def check_resources(resources):
    """Raises ValueError as SkyPilot's schema validation does for a bad resources section."""
    if resources is None:
        return
    for res in resources if isinstance(resources, list) else [resources]:
        if not isinstance(res, dict):
            raise ValueError("Invalid resources YAML: resources must be a mapping")
        unknown = sorted(set(res) - RESOURCE_KEYS)
        if unknown:
            raise ValueError(f"Invalid resources YAML: Additional properties are not allowed "
                             f"({', '.join(repr(k) for k in unknown)} was unexpected)")
        for key in ("any_of", "ordered"):
            if key in res:
                check_resources(res[key])
        recovery = res.get("job_recovery")
        if recovery is not None and not isinstance(recovery, str):
            if not isinstance(recovery, dict) or set(recovery) - RECOVERY_KEYS:
                raise ValueError(f"Invalid resources YAML: job_recovery must be a strategy name or a mapping "
                                 f"of {sorted(RECOVERY_KEYS)}, got {recovery!r}")


def workspace_of(body):
    config = body.get("override_skypilot_config") or {}
    return config.get("active_workspace") or "default"


# Endpoint -> (request name, function name shown in /api/status, schedule type, body fields).
# A field spec is "<type>[?][!]": ? allows null, ! means required (pydantic "missing" if absent).
COMMON_FIELDS = {"env_vars": "dict", "entrypoint": "str", "entrypoint_command": "str",
                 "using_remote_api_server": "bool", "override_skypilot_config": "dict?",
                 "override_skypilot_config_path": "str?"}
QUEUE_FIELDS = {"refresh": "bool", "skip_finished": "bool", "all_users": "bool", "job_ids": "ints?",
                "user_match": "str?", "workspace_match": "str?", "name_match": "str?",
                "pool_match": "str?", "page": "int?", "limit": "int?", "statuses": "strs?"}
ENDPOINTS = {
    "/jobs/launch": ("sky.jobs.launch", "launch", "long",
                     {"task": "str!", "name": "str?!", "pool": "str?", "num_jobs": "int?"}),
    "/jobs/queue": ("sky.jobs.queue", "queue", "short", QUEUE_FIELDS),
    "/jobs/queue/v2": ("sky.jobs.queue_v2", "queue_v2", "short", {**QUEUE_FIELDS, "fields": "strs?"}),
    "/jobs/cancel": ("sky.jobs.cancel", "cancel", "short",
                     {"name": "str?", "job_ids": "ints?", "all": "bool", "all_users": "bool",
                      "pool": "str?"}),
    "/jobs/logs": ("sky.jobs.logs", "tail_logs", "short",
                   {"name": "str?", "job_id": "int?", "follow": "bool", "controller": "bool",
                    "refresh": "bool", "tail": "int?"}),
}


# ---------------------------------------------------------------- request body validation

TYPE_ERRORS = {"str": ("string_type", "Input should be a valid string"),
               "int": ("int_type", "Input should be a valid integer"),
               "bool": ("bool_type", "Input should be a valid boolean"),
               "dict": ("dict_type", "Input should be a valid dictionary"),
               "list": ("list_type", "Input should be a valid list")}


TRUE_WORDS, FALSE_WORDS = ("true", "1", "yes", "on", "t", "y"), ("false", "0", "no", "off", "f", "n")


def coerce(kind, value):
    """Pydantic-v2 lax coercion of one value; raises TypeError naming the failing base type."""
    if kind == "str" and isinstance(value, str):
        return value
    if kind == "int":
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
            return int(value)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.lower() in TRUE_WORDS + FALSE_WORDS:
            return value.lower() in TRUE_WORDS
    if kind == "dict" and isinstance(value, dict):
        return value
    raise TypeError(kind)


def validate_body(body, fields):
    """Returns (body with coerced values, pydantic-style error list)."""
    errors, out = [], dict(body)

    def error(kind, loc, value):
        etype, msg = TYPE_ERRORS[kind]
        errors.append({"type": etype, "loc": ["body", *loc], "msg": msg, "input": value})

    for name, spec in {**COMMON_FIELDS, **fields}.items():
        kind, nullable, required = spec.rstrip("?!"), "?" in spec, spec.endswith("!")
        if name not in body:
            if required:
                errors.append({"type": "missing", "loc": ["body", name], "msg": "Field required",
                               "input": body})
            continue
        value = body[name]
        if value is None and nullable:
            continue
        if kind in ("ints", "strs"):
            if not isinstance(value, list):
                error("list", [name], value)
                continue
            items = []
            for i, item in enumerate(value):
                try:
                    items.append(coerce(kind[:-1], item))
                except TypeError:
                    error(kind[:-1], [name, i], item)
            out[name] = items
            continue
        try:
            out[name] = coerce(kind, value)
        except TypeError:
            error(kind, [name], value)
            continue
        if name == "env_vars":
            for key, item in value.items():
                if not isinstance(item, str):
                    error("str", [name, key], item)
    return out, errors


# ---------------------------------------------------------------- task YAML (a small subset)

def parse_task(text):
    """The task config from the launch body's YAML: JSON, or `name: x` + `---` + task document."""
    try:
        docs = [json.loads(text)]
    except ValueError:
        docs = [parse_yaml(d) for d in re.split(r"(?m)^---[ \t]*$", text) if d.strip()]
    if not docs:
        raise ValueError("Invalid task YAML: empty document")
    dag_name = docs[0].get("name") if len(docs) > 1 and isinstance(docs[0], dict) else None
    task = docs[1] if len(docs) > 1 else docs[0]
    if not isinstance(task, dict):
        raise ValueError(f"Invalid task YAML: expected a mapping, got {type(task).__name__}")
    unknown = sorted(set(task) - TASK_KEYS)
    if unknown:
        raise ValueError(f"Invalid task YAML: Additional properties are not allowed "
                         f"({', '.join(repr(k) for k in unknown)} was unexpected)")
    return dag_name, task


def parse_yaml(text):
    """Block mappings, `|` literal blocks, scalars and flow collections; enough for task YAML."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    lines = [l.rstrip("\n") for l in text.splitlines() if not l.lstrip().startswith("#")]
    first = next((l for l in lines if l.strip()), "")
    if ":" not in first:
        return yaml_scalar(first.strip())
    value, i = yaml_block(lines, 0, len(first) - len(first.lstrip(" ")))
    if any(l.strip() for l in lines[i:]):
        raise ValueError(f"Invalid task YAML: cannot parse line {lines[i]!r}")
    return value


def yaml_block(lines, i, indent):
    out = {}
    while i < len(lines):
        raw = lines[i]
        depth = len(raw) - len(raw.lstrip(" "))
        if not raw.strip():
            i += 1
            continue
        if depth < indent:
            break
        key, sep, rest = raw.strip().partition(":")
        if depth > indent or not sep or (rest and not rest[0].isspace()) or key.startswith("- "):
            raise ValueError(f"Invalid task YAML: cannot parse line {raw!r}")
        key, rest, i = yaml_scalar(key.strip()), rest.strip(), i + 1
        if rest in ("|", "|-", ">", ">-"):
            block = []
            while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip(" ")) > depth):
                block.append(lines[i])
                i += 1
            margin = min((len(l) - len(l.lstrip(" ")) for l in block if l.strip()), default=0)
            body = [l[margin:] for l in block]
            joined = ("\n" if rest[0] == "|" else " ").join(body).rstrip("\n")
            out[key] = joined if rest.endswith("-") else joined + "\n"
        elif rest:
            out[key] = yaml_scalar(rest)
        else:
            nxt = next((l for l in lines[i:] if l.strip()), "")
            nxt_depth = len(nxt) - len(nxt.lstrip(" "))
            out[key], i = yaml_block(lines, i, nxt_depth) if nxt and nxt_depth > depth else (None, i)
    return out, i


def yaml_scalar(text):
    if text[:1] in "{[":
        value, end = yaml_flow(text, 0)
        if text[end:].strip():
            raise ValueError(f"Invalid task YAML: trailing text in {text!r}")
        return value
    if text[:1] == '"':
        return json.loads(text)
    if text[:1] == "'":
        return text[1:-1].replace("''", "'")
    text = re.sub(r"\s+#.*$", "", text)
    special = {"true": True, "True": True, "false": False, "False": False, "null": None, "~": None, "": None}
    if text in special:
        return special[text]
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def yaml_flow(text, i):
    """Parses a flow collection or scalar at text[i:]; returns (value, index after it)."""
    while text[i:i + 1].isspace():
        i += 1
    if text[i:i + 1] in ("{", "["):
        closing, items, mapping = ("}", [], {}) if text[i] == "{" else ("]", [], None)
        i += 1
        while True:
            while text[i:i + 1].isspace() or text[i:i + 1] == ",":
                i += 1
            if i >= len(text):
                raise ValueError(f"Invalid task YAML: unclosed flow collection in {text!r}")
            if text[i] == closing:
                return (mapping if mapping is not None else items), i + 1
            key, i = yaml_flow(text, i)
            if mapping is not None:
                while text[i:i + 1].isspace():
                    i += 1
                if text[i:i + 1] != ":":
                    raise ValueError(f"Invalid task YAML: expected ':' in {text!r}")
                mapping[key], i = yaml_flow(text, i + 1)
            else:
                items.append(key)
    if text[i:i + 1] in ('"', "'"):
        m = re.compile(r'"(?:[^"\\]|\\.)*"' if text[i] == '"' else r"'(?:[^']|'')*'").match(text, i)
        if not m:
            raise ValueError(f"Invalid task YAML: unterminated string in {text!r}")
        return yaml_scalar(m.group()), m.end()
    m = re.compile(r"[^,:{}\[\]]*(?::[^\s,{}\[\]][^,:{}\[\]]*)*").match(text, i)
    return yaml_scalar(m.group().strip()), m.end()


# ---------------------------------------------------------------- the managed-job script

class Plan:
    """A job's scripted life: phases [(status, offset s)] and log lines [(offset s, text)]."""

    def __init__(self, tick):
        self.tick, self.t, self.phases, self.log = tick, 0.0, [], []
        self.failure_reason = None

    def phase(self, status, ticks=0, lines=()):
        start, span = self.t, ticks * self.tick
        self.phases.append((status, start))
        self.t += span
        for i, line in enumerate(lines):
            self.log.append((start + span * 0.9 * i / max(1, len(lines)), line))


def rank_prefix(job, rank, attempt):
    pid = 4000 + 97 * job["job_id"] + 13 * rank + 500 * attempt
    if job["num_nodes"] == 1:
        return f"(task, pid={pid}) "
    return f"(head, rank=0, pid={pid}) " if rank == 0 else f"(worker{rank}, rank={rank}, pid={pid}) "


def attempt_lines(job, attempt, per_rank):
    """SkyPilot's header line, then every rank's lines interleaved, section by section.

    per_rank(rank) returns that rank's lines, or a list of sections (lists of lines) which all
    ranks go through in step (start-up, training, shutdown), each at its own pace within them."""
    n = job["num_nodes"]
    out = [f"{BOLD}Job started on {n} node{'s' if n > 1 else ''}:{RESET} {job['run_first_line']}"]
    if job["has_setup"]:
        out += [f"(setup pid={3000 + 97 * job['job_id'] + r}) Setup complete." for r in range(n)]
    ranks = [per_rank(r) for r in range(n)]
    ranks = [sections if sections and isinstance(sections[0], list) else [sections] for sections in ranks]
    for k in range(max(len(sections) for sections in ranks)):
        merged = sorted((i / len(sections[k]), r, rank_prefix(job, r, attempt) + line)
                        for r, sections in enumerate(ranks) if k < len(sections)
                        for i, line in enumerate(sections[k]))
        out += [line for _, _, line in merged]
    return out


def recovering_line(job):
    return f"{YELLOW}Managed job {job['job_id']} is recovering: relaunching the cluster.{RESET}"


FAILURE_REASONS = {"fail": "Job failed: user code exited with code 3", "fail_setup": "Setup failed",
                   "no_resource": "Failed to acquire resources"}


def build_plan(job):
    plan = Plan(job["tick"])
    plan.phase("PENDING", 1)
    outcome = job["outcome"]
    plan.failure_reason = FAILURE_REASONS.get(outcome)
    if outcome == "no_resource":
        plan.phase("FAILED_NO_RESOURCE")
        return plan
    plan.phase("STARTING", 1)
    if job.get("metta") is not None:
        metta_plan(plan, job)
        return plan
    name, run = job["job_name"], job["run_first_line"]
    if outcome == "fail":
        traceback = ["Traceback (most recent call last):", '  File "/tmp/job.py", line 3, in <module>',
                     "    raise RuntimeError('boom')", "RuntimeError: boom"]
        lines = attempt_lines(job, 0, lambda r: [f"Running: {run}"] + traceback)
        codes = ", ".join("3" for _ in range(job["num_nodes"]))
        plan.phase("RUNNING", 2, lines + [f"{RED}ERROR: Job 1 failed with return code list: [{codes}]{RESET}"])
        plan.phase("FAILED")
    elif outcome == "fail_setup":
        lines = [f"(setup pid={3000 + 97 * job['job_id'] + r}) setup: exited with code 1"
                 for r in range(job["num_nodes"])]
        plan.phase("RUNNING", 1, lines + [f"{RED}ERROR: Job 1's setup failed with return code list: [1]{RESET}"])
        plan.phase("FAILED_SETUP")
    elif outcome == "recover":
        plan.phase("RUNNING", 1, attempt_lines(job, 0, lambda r: [f"Running: {run}", f"hello from {name}"]))
        plan.phase("RECOVERING", 1, [recovering_line(job)])
        plan.phase("RUNNING", 1, attempt_lines(job, 1, lambda r: [f"Running: {run}", f"hello from {name}",
                                                                  f"{GREEN}done{RESET}"]))
        plan.phase("SUCCEEDED")
    elif outcome == "long":
        steps = lambda r: [f"Running: {run}"] + [f"{CYAN}step {i}{RESET}" for i in range(1, 1000)]
        plan.phase("RUNNING", 1000, attempt_lines(job, 0, steps))
        plan.phase("SUCCEEDED")
    else:  # "succeed" or no FAKE_OUTCOME
        extra = [f"hello from {name}"] if outcome == "succeed" else []
        plan.phase("RUNNING", 2, attempt_lines(job, 0, lambda r: [f"Running: {run}", *extra, f"{GREEN}done{RESET}"]))
        plan.phase("SUCCEEDED")
    return plan


HEARTBEAT_CHECK_INTERVAL = 30  # heartbeat_monitor.sh's


def metta_plan(plan, job):
    """Metta's skypilot_run.sh (metta-origins.md §7): one RUNNING phase per attempt, the
    monitors set from the environment as launch.py left it, METTA_ARGS given to the tool."""
    metta = job["metta"]
    env, args = metta["env"], metta["args"].split()
    try:
        hb = float(env.get("HEARTBEAT_TIMEOUT") or "inf")
    except ValueError:
        hb = float("inf")
    timed = bool(env.get("MAX_RUNTIME_HOURS"))
    restart = env.get("TEST_JOB_RESTART") == "true"
    flags = [a for a in args if a.startswith("-")]
    if flags:  # launch.py's flags reached the tool: it rejects them
        plan.phase("RUNNING", 2, metta_attempt(job, 0, "job_completed", 2, rejected=flags))
    elif hb < HEARTBEAT_CHECK_INTERVAL:
        plan.phase("RUNNING", 3, metta_attempt(job, 0, "heartbeat_timeout", 0))
    elif timed and restart:
        plan.phase("RUNNING", 2, metta_attempt(job, 0, "force_restart_test", 0))
        plan.phase("RECOVERING", 1, [recovering_line(job)])
        plan.phase("RUNNING", 2, metta_attempt(job, 1, "max_runtime_reached", 0))
    elif timed:
        plan.phase("RUNNING", 2, metta_attempt(job, 0, "max_runtime_reached", 0))
    elif any(a.startswith("evaluator.epoch_interval") for a in args):
        plan.phase("RUNNING", 2, metta_attempt(job, 0, "job_completed", 1))
    else:
        plan.phase("RUNNING", 3, metta_attempt(job, 0, "job_completed", 0))
    plan.phase("SUCCEEDED")


def metta_attempt(job, restart, reason, cmd_exit, rejected=()):
    metta, n = job["metta"], job["num_nodes"]
    env = metta["env"]
    nccl, restart_test = env.get("TEST_NCCL") == "true", env.get("TEST_JOB_RESTART") == "true"
    timed = bool(env.get("MAX_RUNTIME_HOURS"))
    final = 1 if reason == "force_restart_test" else 0
    hb = env.get("HEARTBEAT_TIMEOUT") or "600"

    def rank_lines(rank):
        master = rank == 0
        pid = 6000 + 97 * job["job_id"] + 13 * rank + 500 * restart
        out = ["[CONFIG] Run Configuration:", f"  - NODE_RANK: {rank}",
               f"  - IS_MASTER: {'true' if master else 'false'}", f"  - TOTAL_NODES: {n}",
               f"  - METTA_RUN_ID: {metta['run_id']}", f"  - SKYPILOT_TASK_ID: {job['skypilot_task_id']}",
               f"  - RESTART_COUNT: {restart}"]
        if nccl and restart == 0:
            out += [f"[RUN] Running GPU diagnostics and NCCL tests (node {rank})...", "[SUCCESS] NCCL tests passed"]
        elif nccl:
            out.append(f"[SKIP] Skipping NCCL test on restarted job (RESTART_COUNT={restart})")
        else:
            out.append("[SKIP] Skipping NCCL test (TEST_NCCL=false)")
        out += [f"[INFO] Starting process (node rank: {rank})",
                f"[INFO] Running command: ./devops/run.sh {metta['module']} --args {metta['args']}",
                f"[INFO] Started process with PID: {pid}, PGID: {pid}", "[INFO] Started heartbeat monitor"]
        if master and timed:
            out.append("[INFO] Started timeout monitor")
        out.append("[INFO] Started cluster-stop monitor")
        if master and restart_test and timed:
            out.append("[INFO] Started test job restart monitor")
        train = [f"{GREEN}[TRAIN]{RESET} epoch {e} | step {e * 16384} | {CYAN}{41000 + 37 * e + rank} SPS{RESET}"
                 for e in range(1, 2 if cmd_exit else 4)]
        if rejected:
            train = [f"{RED}tools/run.py: error: unrecognized arguments: {' '.join(rejected)}{RESET}"]
        end = metta_ending(reason, cmd_exit, master, hb) + [f"[INFO] Termination reason: {reason}"]
        if master:
            end += ["[SUMMARY] ===== Job Summary =====", f"[SUMMARY] Metta Run ID: {metta['run_id']}",
                    f"[SUMMARY] Skypilot Task ID: {job['skypilot_task_id']}", f"[SUMMARY] Restart Count: {restart}",
                    f"[SUMMARY] Exit code: {cmd_exit}", f"[SUMMARY] Termination reason: {reason}",
                    "[SUMMARY] ======================"]
        end.append("[INFO] Will exit with code 1 to trigger SkyPilot restart" if final
                   else "[INFO] Will exit with code 0 to prevent SkyPilot restart")
        end.append(f"[INFO] cleanup() complete. Final exit code: {final}")
        return [out, train, end]

    return attempt_lines(job, restart, rank_lines)


def metta_ending(reason, cmd_exit, master, hb):
    if reason == "job_completed":
        done = (f"{RED}[ERROR] Training failed with exit code {cmd_exit}{RESET}" if cmd_exit
                else f"{GREEN}[SUCCESS] Training completed successfully{RESET}")
        return [done, "[SUMMARY] Total runtime: 95 seconds (1 minutes)"]
    cause = {"heartbeat_timeout": f"{YELLOW}[WARNING] No heartbeat for more than {hb} seconds{RESET}",
             "max_runtime_reached": f"{YELLOW}[INFO] Max runtime reached{RESET}",
             "force_restart_test": f"{YELLOW}[INFO] Forcing a job restart (TEST_JOB_RESTART=true){RESET}"}[reason]
    out = [cause] if master or reason == "heartbeat_timeout" else []
    out.append("[SHUTDOWN] Caught INT/TERM/HUP; initiating graceful shutdown...")
    out.append("[SHUTDOWN] Master node signaled all nodes to begin shutdown" if master
               else "[SHUTDOWN] Worker node detected cluster-wide shutdown signal")
    return out


# ---------------------------------------------------------------- job views

def timeline(job, plan):
    """[(status, absolute time)], with a cancellation spliced in."""
    tl = [(status, job["created"] + offset) for status, offset in plan.phases]
    cancel = job.get("cancel_at")
    if cancel is not None:
        tl = [p for p in tl if p[1] < cancel] + [("CANCELLING", cancel), ("CANCELLED", cancel + job["cancel_delay"])]
    return tl


def visible_log(job, plan, now):
    cancel = job.get("cancel_at")
    return [line for offset, line in plan.log
            if job["created"] + offset <= now and (cancel is None or job["created"] + offset < cancel)]


def job_record(job, plan, now):
    """The ManagedJobRecord (one task) as /jobs/queue[/v2] returns it."""
    phases = timeline(job, plan)
    seen = [p for p in phases if p[1] <= now] or phases[:1]
    status = seen[-1][0]
    runs = [t for s, t in seen if s == "RUNNING"]
    end = seen[-1][1] if status in TERMINAL else None
    duration = 0.0
    for (s, t0), nxt in zip(seen, seen[1:] + [(None, end if end is not None else now)]):
        if s == "RUNNING" or (s == "CANCELLING" and runs):
            duration += max(0.0, nxt[1] - t0)
    failure = plan.failure_reason if status in TERMINAL and status.startswith("FAILED") else None
    alive = status not in TERMINAL
    res = job["resources"]
    return {
        "_job_id": job["job_id"], "job_id": job["job_id"], "task_id": 0, "job_name": job["job_name"],
        "task_name": job["task_name"], "status": status,
        "schedule_state": SCHEDULE_STATE.get(status, "DONE"), "submitted_at": job["created"],
        "start_at": runs[0] if runs else None, "end_at": end,
        "last_recovered_at": runs[-1] if runs else -1, "job_duration": round(duration, 3),
        "recovery_count": max(0, len(runs) - 1), "failure_reason": failure,
        "details": f"Failure: {failure}" if failure else None,
        "user_name": job["user_name"], "user_hash": job["user_hash"], "workspace": job.get("workspace", "default"),
        "priority": 500, "resources": res["str"], "cluster_resources": res["str"] if alive else "-",
        "cloud": "fake", "region": "fake-region-1", "zone": "fake-region-1a",
        "infra": "fake/fake-region-1", "accelerators": res["accelerators"], "pool": None,
        "current_cluster_name": f"{job['job_name']}-{job['job_id']}" if alive else None,
        "job_id_on_pool_cluster": None, "entrypoint": job["entrypoint"], "metadata": {},
        "run_timestamp": job["run_timestamp"], "controller_pid": os.getpid() if alive else None,
        "dag_yaml_path": f"~/.sky/managed_jobs/{job['job_name']}-{job['job_id']}.yaml",
    }


def describe_resources(resources, num_nodes):
    if isinstance(resources, list):
        resources = resources[0] if resources else {}
    acc = (resources or {}).get("accelerators")
    if isinstance(acc, dict):
        acc = ",".join(f"{k}:{v}" for k, v in acc.items())
    accelerators = {}
    if acc:
        for part in str(acc).split(","):
            name, _, count = part.partition(":")
            accelerators[name.strip()] = float(count) if "." in count else int(count or 1)
    return {"str": f"{num_nodes}x[{acc or 'CPU:1+'}]", "accelerators": accelerators}


# ---------------------------------------------------------------- the server's state

class Store:
    def __init__(self, args):
        self.args, self.lock = args, threading.RLock()
        self.requests, self.jobs, self.next_job_id, self.plans, self.frozen = {}, {}, 1, {}, {}
        self.stats, self.total = {}, 0
        self.launch_drops = args.drop_launch
        self.tasks, self.controller_up = [], not args.controller_stopped
        self.logs_fail, self.logs_retry = 0, 0
        if args.state and os.path.exists(args.state):
            self.load()

    # persistence
    def load(self):
        with open(self.args.state) as f:
            data = json.load(f)
        self.next_job_id = data["next_job_id"]
        self.jobs = {j["job_id"]: j for j in data["jobs"]}
        self.requests = {r["request_id"]: r for r in data["requests"]}
        for req in self.requests.values():  # a log stream died with the old server
            if req["_kind"] == "logs" and req["status"] not in REQUEST_TERMINAL:
                self.finish(req, "FAILED", error=RuntimeError("Request interrupted by API server restart"))

    def save(self):
        if not self.args.state:
            return
        requests = []
        for rid, req in self.requests.items():  # finished requests never change: encode them once
            text = self.frozen.get(rid) or json.dumps(req)
            if req["status"] in REQUEST_TERMINAL:
                self.frozen[rid] = text
            requests.append(text)
        tmp = f"{self.args.state}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(f'{{"next_job_id": {self.next_job_id}, "jobs": {json.dumps(list(self.jobs.values()))}, '
                    f'"requests": [{", ".join(requests)}]}}')
        os.replace(tmp, self.args.state)

    def plan(self, job):
        if job["job_id"] not in self.plans:
            self.plans[job["job_id"]] = build_plan(job)
        return self.plans[job["job_id"]]

    def record(self, job, now):
        return job_record(job, self.plan(job), now)

    # stats and request numbering (for --fail-every / --drop-every)
    def count(self, method, path):
        with self.lock:
            key = f"{method} {path}"
            self.stats[key] = self.stats.get(key, 0) + 1
            self.total += 1
            return self.total

    def take_launch_drop(self):
        with self.lock:
            if self.launch_drops <= 0:
                return False
            self.launch_drops -= 1
            return True

    # requests
    def new_request(self, path, body, now, status="PENDING"):
        name, func, schedule, _ = ENDPOINTS[path]
        env = body.get("env_vars") or {}
        kind = func if path != "/jobs/logs" else "logs"
        delay = self.args.tick if kind == "launch" else 0.03
        req = {"request_id": str(uuid.uuid4()), "name": name, "entrypoint": func, "request_body": body,
               "status": status, "created_at": now,
               "user_id": env.get("SKYPILOT_USER_ID", SERVER_USER[0]),
               "return_value": None, "error": None, "pid": os.getpid() if status == "RUNNING" else None,
               "schedule_type": "long" if kind == "launch" or body.get("refresh") else schedule,
               "user_name": env.get("SKYPILOT_USER", SERVER_USER[1]), "cluster_name": CONTROLLER,
               "status_msg": None, "should_retry": False, "finished_at": None,
               "_kind": kind, "_start_at": now + min(0.01, delay / 3), "_done_at": now + delay}
        with self.lock:
            self.requests[req["request_id"]] = req
            self.save()
        return req

    def finish(self, req, status, value=None, error=None):
        with self.lock:
            req.update(status=status, return_value=value, finished_at=time.time())
            if error is not None:
                req["error"] = {"object": PICKLE_NONE, "type": type(error).__name__, "message": str(error)}
            self.save()

    def find_request(self, rid):
        """Exact id, else a unique prefix; returns (request, http error or None)."""
        with self.lock:
            if rid in self.requests:
                return self.requests[rid], None
            hits = [r for k, r in self.requests.items() if k.startswith(rid)] if rid else []
        if len(hits) == 1:
            return hits[0], None
        if hits:
            return None, (400, {"detail": f"Request ID prefix '{rid}' matches multiple requests"})
        return None, (404, {"detail": f"Request '{rid}' not found"})

    def advance(self, now):
        """Moves async requests along: PENDING -> RUNNING -> executed (SUCCEEDED or FAILED)."""
        with self.lock:
            started = False
            for req in list(self.requests.values()):
                if req["_kind"] == "logs" or req["status"] in REQUEST_TERMINAL:
                    continue
                if req["status"] == "PENDING" and now >= req["_start_at"]:
                    req.update(status="RUNNING", pid=os.getpid())
                    started = True
                if req["status"] == "RUNNING" and now >= req["_done_at"]:
                    self.execute(req, now)
            if started:
                self.save()

    def execute(self, req, now):
        handler = {"launch": self.do_launch, "queue": self.do_queue, "queue_v2": self.do_queue,
                   "cancel": self.do_cancel}[req["_kind"]]
        try:
            value = handler(req["request_body"], request_user(req["request_body"]), now, req["_kind"])
        except Exception as e:  # the request fails the way SkyPilot's worker would
            self.finish(req, "FAILED", error=e)
        else:
            self.finish(req, "SUCCEEDED", value=value)

    # the operations
    def do_launch(self, body, user, now, _kind):
        dag_name, task = parse_task(body["task"])
        envs = task.get("envs") or {}
        if not isinstance(envs, dict):
            raise ValueError("Invalid task YAML: envs must be a mapping")
        for key, value in envs.items():
            if value is None:
                raise ValueError(f"Environment variable {key!r} is None. Please set a value for it in "
                                 f"task YAML or with --env flag.")
        num_nodes = task.get("num_nodes", 1)
        if not isinstance(num_nodes, int) or isinstance(num_nodes, bool) or num_nodes < 1:
            raise ValueError(f"num_nodes should be a positive integer, got {num_nodes!r}")
        outcome = str(envs.get("FAKE_OUTCOME", "default"))
        if outcome not in ("default", "succeed", "fail", "fail_setup", "recover", "long", "no_resource"):
            raise ValueError(f"fake server: unknown FAKE_OUTCOME {outcome!r}")
        if body.get("pool") is not None:
            raise ValueError(f"Pool {body['pool']!r} does not exist.")
        check_resources(task.get("resources"))
        self.controller_up = True  # a launch starts the jobs controller
        job_id = self.next_job_id
        self.next_job_id += 1
        # The real server names the job from the task YAML (dag_utils) and ignores the body's name.
        name = dag_name or task.get("name") or f"sky-{job_id:04x}-{user[1]}"
        stamp = time.strftime("%Y-%m-%d-%H-%M-%S", time.localtime(now)) + f"-{int(now % 1 * 1e6):06d}"
        job = {"job_id": job_id, "job_name": name, "task_name": task.get("name") or name, "created": now,
               "tick": self.args.tick, "user_hash": user[0], "user_name": user[1], "num_nodes": num_nodes,
               "run_first_line": (str(task.get("run") or "").strip().splitlines() or [""])[0],
               "has_setup": bool(task.get("setup")), "outcome": outcome,
               "resources": describe_resources(task.get("resources"), num_nodes),
               "entrypoint": body.get("entrypoint") or "", "run_timestamp": f"sky-{stamp}",
               "skypilot_task_id": f"sky-managed-{stamp}_{job_id}", "cancel_at": None, "cancel_delay": 0.0,
               "metta": None, "workspace": workspace_of(body)}
        if "METTA_ARGS" in envs:
            job["metta"] = {"args": str(envs["METTA_ARGS"]), "run_id": str(envs.get("METTA_RUN_ID", "")),
                            "module": str(envs.get("METTA_MODULE_PATH", "")),
                            "env": {k: "" if v is None else str(v) for k, v in envs.items()}}
        self.jobs[job_id] = job
        self.tasks.append({"job_id": job_id, "body_name": body.get("name"), "dag_name": dag_name, "task": task,
                           "env_vars": body.get("env_vars"),
                           "override_skypilot_config": body.get("override_skypilot_config")})
        return {"job_id": job_id, "handle": PICKLE_NONE}

    def require_controller(self, body):
        """ClusterNotUpError while the controller is stopped, unless the request refreshes."""
        if self.controller_up:
            return
        if not body.get("refresh"):
            raise ClusterNotUpError(f"Jobs controller {CONTROLLER} is not up (status: STOPPED). "
                                    f"Use refresh to start it.")
        self.controller_up = True

    def do_queue(self, body, user, now, kind):
        self.require_controller(body)
        limit, page = body.get("limit"), body.get("page")
        if limit is not None and limit < 1:
            raise ValueError(f"Limit must be at least 1, got {limit}")
        if limit is None and page is not None:
            raise ValueError("Limit must be specified when page is specified")
        page = page or 1
        if page < 1:
            raise ValueError(f"Page must be at least 1, got {page}")
        rows = [self.record(j, now) for j in sorted(self.jobs.values(), key=lambda j: -j["job_id"])]
        if not body.get("all_users"):
            rows = [r for r in rows if r["user_hash"] == user[0]]
        total_no_filter = len(rows)
        matches = {"user_match": "user_name", "workspace_match": "workspace", "name_match": "job_name",
                   "pool_match": "pool"}
        rows = [r for r in rows
                if (not body.get("job_ids") or r["job_id"] in body["job_ids"])
                and not (body.get("skip_finished") and r["status"] in TERMINAL)
                and all(body.get(k) is None or body[k] in str(r[f] or "") for k, f in matches.items())]
        counts = {}
        for r in rows:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        if body.get("statuses") is not None:
            rows = [r for r in rows if r["status"] in body["statuses"]]
        total = len(rows)
        if limit is not None:
            rows = rows[(page - 1) * limit:page * limit]
        if kind == "queue_v2" and body.get("fields") is not None:
            keep = set(body["fields"]) | {"job_id", "task_id", "status"}
            rows = [{k: v for k, v in r.items() if k in keep} for r in rows]
        if kind == "queue" and self.args.queue_form == "list":
            return rows
        return {"jobs": rows, "total": total, "total_no_filter": total_no_filter, "status_counts": counts}

    def do_cancel(self, body, user, now, _kind):
        job_ids, name, pool = body.get("job_ids") or [], body.get("name"), body.get("pool")
        every, everyone = bool(body.get("all")), bool(body.get("all_users"))
        if sum([bool(job_ids), name is not None, pool is not None, every or everyone]) != 1:
            given = ([f"job_ids={','.join(map(str, job_ids))}"] if job_ids else []) + \
                    ([f"name={name}"] if name is not None else []) + \
                    ([f"pool={pool}"] if pool is not None else []) + \
                    (["all"] if every else []) + (["all_users"] if everyone else [])
            raise ValueError("Can only specify one of JOB_IDS, name, pool, or all/all_users. "
                             f"Provided {' '.join(given)!r}.")
        live = [j for j in self.jobs.values()
                if self.record(j, now)["status"] not in TERMINAL and j["cancel_at"] is None]
        if everyone:
            targets = live
        elif every:
            targets = [j for j in live if j["user_hash"] == user[0]]
        elif job_ids:
            targets = [j for j in live if j["job_id"] in job_ids]
        elif name is not None:
            targets = [j for j in live if j["job_name"] == name]
            if len(targets) > 1:
                raise RuntimeError("Please specify the job ID instead of the job name.")
        else:
            targets = []  # pools are not modelled: none exists
        # Jobs outside the request's active workspace are skipped, without an error.
        targets = [j for j in targets if j.get("workspace", "default") == workspace_of(body)]
        for job in targets:
            job.update(cancel_at=now, cancel_delay=self.args.tick)
        return None


def request_user(body):
    """(user hash, user name) a request runs as; KeyError if env_vars lacks either key."""
    env = body.get("env_vars")
    if env is None:
        return SERVER_USER
    return env["SKYPILOT_USER_ID"], env["SKYPILOT_USER"]


def render_request(req, form):
    """RequestPayload: `get` form (pickles, JSON-string values) or `status` form."""
    out = {k: v for k, v in req.items() if not k.startswith("_")}
    if form == "get":
        out.update(entrypoint=PICKLE_NONE, request_body=PICKLE_NONE,
                   return_value=json.dumps(req["return_value"]), error=json.dumps(req["error"]))
    else:
        out.update(request_body=json.dumps(req["request_body"], separators=(",", ":")),
                   return_value="null", error="null")
    return out


# ---------------------------------------------------------------- HTTP

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "uvicorn"
    sys_version = ""
    store: Store = None

    def version_string(self):
        return self.server_version

    def log_message(self, fmt, *args):
        if self.store.args.verbose:
            sys.stderr.write("fake skypilot: " + fmt % args + "\n")

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_DELETE(self):
        self.dispatch("DELETE")

    # plumbing
    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def send(self, code, payload, content_type="application/json", headers=()):
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in list(headers) + self.version_headers():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def version_headers(self):
        if not getattr(self, "echo_versions", False):
            return []
        return [("X-SkyPilot-API-Version", str(self.store.args.api_version)),
                ("X-SkyPilot-Version", self.store.args.version)]

    def dispatch(self, method):
        self.echo_versions = False
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query, keep_blank_values=True)
        if path.startswith("/fake/"):
            return self.fake_hook(method, path)
        args = self.store.args
        n = self.store.count(method, path)
        raw = self.read_body()
        if args.drop_every and n % args.drop_every == 0:
            self.close_connection = True
            return
        if args.fail_every and n % args.fail_every == 0:
            return self.send(503, {"detail": "Server is busy"})
        if not self.check_versions():
            return
        identity, denial = self.authenticate()
        if path == "/api/health" and method == "GET":
            return self.health(identity, denial)
        if denial:
            return self.send(*denial)
        routes = {("GET", "/api/get"): lambda: self.api_get(query),
                  ("GET", "/api/status"): lambda: self.api_status(query)}
        for endpoint in ENDPOINTS:
            if endpoint != "/jobs/queue/v2" or (not args.no_queue_v2 and args.api_version >= 18):
                routes[("POST", endpoint)] = lambda e=endpoint: self.async_post(e, raw, identity)
        if (method, path) in routes:
            return routes[(method, path)]()
        if any(p == path for _, p in routes) or path == "/api/health":
            return self.send(405, {"detail": "Method Not Allowed"})
        self.send(404, {"detail": "Not Found"})

    def check_versions(self):
        api, version = self.headers.get("X-SkyPilot-API-Version"), self.headers.get("X-SkyPilot-Version")
        if api is None or version is None:
            return True
        try:
            client_api = int(api)
        except ValueError:
            self.send(500, b"Internal Server Error", "text/plain; charset=utf-8")
            return False
        if client_api < MIN_COMPATIBLE_API_VERSION:
            self.send(400, {"error": "version_mismatch", "message": (
                f"Your SkyPilot client (version {version}, API version {client_api}) is too old for the "
                f"SkyPilot API server (version {self.store.args.version}, API version "
                f"{self.store.args.api_version}); the oldest compatible client is 0.10.0 (API version "
                f"{MIN_COMPATIBLE_API_VERSION}). Upgrade your client with: pip install -U skypilot")})
            return False
        self.echo_versions = True
        return True

    def authenticate(self):
        """(identity (hash, name) or None, denial (code, body bytes or object, [type, headers]) or None).

        Bodies as SkyPilot's BearerTokenMiddleware and BasicAuthMiddleware write them."""
        args = self.store.args
        if not args.token and not args.basic:
            return None, None
        auth = self.headers.get("Authorization", "")
        scheme, _, cred = auth.partition(" ")
        scheme, cred = scheme.lower(), cred.strip()
        if args.token and scheme == "bearer":
            if cred == args.token:
                return ("sa-" + hashlib.md5(args.token.encode()).hexdigest()[:8], "fake-service-account"), None
            if cred.startswith("sky_") or self.headers.get("X-Skypilot-Auth-Mode") == "token":
                return None, (401, {"detail": "Invalid or expired service account token"})
        if not args.basic or (args.token and scheme == "bearer"):
            return None, (401, {"detail": "Authentication required"})
        try:
            given = base64.b64decode(cred, validate=True).decode() if scheme == "basic" else None
        except ValueError:
            given = ""
        if given == args.basic:
            user = given.split(":", 1)[0]
            return (hashlib.md5(user.encode()).hexdigest()[:8], user), None
        message = ("Authentication required" if not auth else "Invalid authentication method" if given is None
                   else "Invalid basic auth" if ":" not in given else "Invalid credentials")
        return None, (401, json.dumps(message).encode(), "application/json",
                      [("WWW-Authenticate", 'Basic realm="SkyPilot"')])

    # endpoints
    def health(self, identity, denial):
        args = self.store.args
        if denial:
            api = self.headers.get("X-SkyPilot-API-Version")
            if api is None or self.headers.get("X-SkyPilot-Version") is None:
                return self.send(200, {"status": "healthy"})
            if int(api) < 14:
                return self.send(*denial)
        self.send(200, {
            "status": "needs_auth" if denial else "healthy", "api_version": str(args.api_version),
            "version": args.version, "version_on_disk": args.version, "commit": COMMIT,
            "basic_auth_enabled": bool(args.basic),
            "user": {"id": identity[0], "name": identity[1]} if identity else None,
            "service_account_token_enabled": bool(args.token), "ingress_basic_auth_enabled": False})

    def async_post(self, path, raw, identity):
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError as e:
            return self.send(422, {"detail": [{"type": "json_invalid", "loc": ["body", e.pos],
                                               "msg": "JSON decode error", "input": {},
                                               "ctx": {"error": e.msg}}]})
        if body is None:
            return self.send(422, {"detail": [{"type": "missing", "loc": ["body"], "msg": "Field required",
                                               "input": None}]})
        if not isinstance(body, dict):
            return self.send(422, {"detail": [{"type": "model_attributes_type", "loc": ["body"], "input": body,
                                               "msg": "Input should be a valid dictionary or object to "
                                                      "extract fields from"}]})
        body, errors = validate_body(body, ENDPOINTS[path][3])
        if errors:
            return self.send(422, {"detail": errors})
        if identity:  # the server rewrites the caller's identity to the authenticated one
            body["env_vars"] = {**(body.get("env_vars") or {}), "SKYPILOT_USER_ID": identity[0],
                                "SKYPILOT_USER": identity[1]}
        if path == "/jobs/logs":
            return self.stream_logs(body)
        req = self.store.new_request(path, body, time.time())
        if path == "/jobs/launch" and self.store.take_launch_drop():
            self.close_connection = True  # accepted, but the answer is lost
            return
        self.send(200, b"null", headers=self.request_id_headers(req))

    def request_id_headers(self, req):
        old = self.store.args.api_version < 18  # servers up to 0.10 also sent X-Request-ID
        return [("X-Skypilot-Request-ID", req["request_id"])] + ([("X-Request-ID", req["request_id"])] if old else [])

    def api_get(self, query):
        rid = (query.get("request_id") or [None])[0]
        if rid is None:
            return self.send(422, {"detail": [{"type": "missing", "loc": ["query", "request_id"],
                                               "msg": "Field required", "input": None}]})
        req, err = self.store.find_request(rid)
        if err:
            return self.send(*err)
        while req["status"] not in REQUEST_TERMINAL:
            time.sleep(0.05)
        with self.store.lock:
            payload = render_request(req, "get")
        if req["status"] == "FAILED":
            return self.send(500, {"detail": payload})
        self.send(200, payload)

    def api_status(self, query):
        ids = query.get("request_ids") or []
        all_status = (query.get("all_status") or ["false"])[0].lower() in TRUE_WORDS
        limit = (query.get("limit") or [None])[0]
        fields = query.get("fields")
        with self.store.lock:
            reqs = sorted(self.store.requests.values(), key=lambda r: -r["created_at"])
            if ids:
                reqs = [r for r in reqs if any(r["request_id"].startswith(i) for i in ids if i)]
            elif not all_status:
                reqs = [r for r in reqs if r["status"] not in REQUEST_TERMINAL]
            rows = [render_request(r, "status") for r in reqs]
        if limit and limit.isdigit():
            rows = rows[:int(limit)]
        if fields:
            rows = [{k: v for k, v in r.items() if k in fields} for r in rows]
        self.send(200, rows)

    def fake_hook(self, method, path):
        self.last_body = self.read_body()
        if method == "GET" and path == "/fake/stats":
            with self.store.lock:
                return self.send(200, {"requests": dict(self.store.stats), "total": self.store.total})
        if method == "GET" and path == "/fake/jobs":
            now = time.time()
            with self.store.lock:
                rows = [self.store.record(j, now) for j in sorted(self.store.jobs.values(), key=lambda j: j["job_id"])]
            return self.send(200, [{k: r[k] for k in ("job_id", "job_name", "user_hash", "status", "workspace")}
                                   for r in rows])
        if method == "GET" and path == "/fake/tasks":
            with self.store.lock:
                return self.send(200, self.store.tasks)
        if method == "POST" and path == "/fake/set":
            try:
                settings = json.loads(self.last_body or b"{}")
            except ValueError:
                return self.send(400, {"detail": "not JSON"})
            with self.store.lock:
                if "controller" in settings:
                    self.store.controller_up = settings["controller"] == "up"
                self.store.logs_fail = int(settings.get("logs_fail", self.store.logs_fail))
                self.store.logs_retry = int(settings.get("logs_retry", self.store.logs_retry))
            return self.send(200, settings)
        if method == "POST" and path == "/fake/reset-stats":
            with self.store.lock:
                self.store.stats, self.store.total = {}, 0
            return self.send(200, {"requests": {}, "total": 0})
        self.send(404, {"detail": "Not Found"})

    # /jobs/logs: the POST response is the stream
    def stream_logs(self, body):
        req = self.store.new_request("/jobs/logs", body, time.time(), status="RUNNING")
        self.send_response(200)
        headers = [("Content-Type", "text/plain; charset=utf-8"), ("Transfer-Encoding", "chunked"),
                   ("Cache-Control", "no-cache, no-transform"), ("X-Accel-Buffering", "no")]
        for key, value in headers + self.request_id_headers(req) + self.version_headers():
            self.send_header(key, value)
        self.end_headers()
        try:
            try:
                code = self.tail_job(body)
            except (BrokenPipeError, ConnectionResetError):
                raise
            except Exception as e:
                self.chunk(f"{RED}{type(e).__name__}: {e}{RESET}\n")
                self.store.finish(req, "FAILED", error=e)
            else:
                self.store.finish(req, "SUCCEEDED", value=code)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):  # a disconnect cancels the request
            self.close_connection = True
            if req["status"] not in REQUEST_TERMINAL:
                self.store.finish(req, "CANCELLED")

    def chunk(self, text):
        data = text.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def find_job(self, body, user):
        jobs = sorted(self.store.jobs.values(), key=lambda j: -j["job_id"])
        if body.get("job_id") is not None:
            return self.store.jobs.get(body["job_id"]), "No managed job found."
        if body.get("name") is not None:
            hits = [j for j in jobs if j["job_name"] == body["name"]]
            return (hits or [None])[0], f"No running managed job found with name {body['name']!r}."
        hits = [j for j in jobs if j["user_hash"] == user[0]]
        return (hits or [None])[0], "No managed job found."

    def tail_job(self, body):
        """Streams one job's log; returns the JobExitCode."""
        self.chunk('<sky-payload>"<rich_init>Waiting for logs</rich_init>"</sky-payload>\n'
                   '<sky-payload>"<heartbeat></heartbeat>"</sky-payload>\n')
        user = request_user(body)
        tail, follow = body.get("tail"), body.get("follow", True)
        assert tail is None or tail > 0, f"tail must be None or a positive integer, got {tail}"
        if body.get("name") is not None and body.get("job_id") is not None:
            raise ValueError("Cannot specify both name and job_id.")
        with self.store.lock:
            if self.store.logs_retry > 0:
                self.store.logs_retry -= 1
                self.chunk('<sky-payload>"<retry></retry>"</sky-payload>\n')
                raise RuntimeError("Request interrupted; please retry")
            if self.store.logs_fail > 0:
                self.store.logs_fail -= 1
                raise RuntimeError("Failed to tail the logs: the connection to the jobs controller was lost")
            self.store.require_controller(body)
            job, missing = self.find_job(body, user)
        if job is None:
            self.chunk(f"{YELLOW}{missing}{RESET}\n")
            return 102
        sent, last_write, heartbeat = None, time.time(), max(1.0, 2 * self.store.args.tick)
        while True:
            now = time.time()
            with self.store.lock:
                plan = self.store.plan(job)
                lines, status = visible_log(job, plan, now), job_record(job, plan, now)
                status, failure = status["status"], status["failure_reason"]
            if sent is None:
                sent = max(0, len(lines) - tail) if tail else 0
            if lines[sent:]:
                self.chunk("".join(line + "\n" for line in lines[sent:]))
                sent, last_write = len(lines), now
            if status in TERMINAL or status == "CANCELLING" or not follow:
                break
            if now - last_write >= heartbeat:
                self.chunk('<sky-payload>"<heartbeat></heartbeat>"</sky-payload>\n')
                last_write = now
            time.sleep(0.05)
        if status == "CANCELLING":
            self.chunk(f"{YELLOW}Job {job['job_id']} is being cancelled.{RESET}\n")
            return 103
        if status not in TERMINAL:
            return 0  # follow=false on an unfinished job (reference §4)
        if not plan.log or not lines:
            reason = f" Failure reason: {failure}" if failure else ""
            self.chunk(f"Job {job['job_id']} is already in terminal state {status}. Logs will not be shown.{reason}\n")
        colour = GREEN if status == "SUCCEEDED" else YELLOW if status == "CANCELLED" else RED
        self.chunk(f"{colour}✓ Job finished (status: {status}).{RESET}\n")
        return 0 if status == "SUCCEEDED" else 103 if status == "CANCELLED" else 100


class Server(ThreadingHTTPServer):
    request_queue_size = 128  # clients open many connections at once


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-version", type=int, default=24)
    parser.add_argument("--version", default="0.11.2")
    parser.add_argument("--no-queue-v2", action="store_true")
    parser.add_argument("--queue-form", choices=("list", "dict"), default="list")
    parser.add_argument("--token")
    parser.add_argument("--basic")
    parser.add_argument("--fail-every", type=int, default=0)
    parser.add_argument("--drop-every", type=int, default=0)
    parser.add_argument("--drop-launch", type=int, default=0)
    parser.add_argument("--state")
    parser.add_argument("--tick", type=float, default=0.2)
    parser.add_argument("--controller-stopped", action="store_true")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    Handler.store = store = Store(args)
    server = Server(("127.0.0.1", args.port), Handler)

    def scheduler():
        while True:
            store.advance(time.time())
            time.sleep(0.01)

    threading.Thread(target=scheduler, daemon=True).start()
    print(f"fake skypilot listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
