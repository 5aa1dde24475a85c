---@meta jobrun
-- Lua language server annotations for `require "jobrun"` in scripts (`jobrun script FILE.lua`,
-- lua/jobrun/script/api.lua). Written by hand beside the generated jobrun-meta.lua, whose classes
-- (jobrun.Suite, jobrun.Result, jobrun.Status) it uses; tests/unit/meta.lua checks that every
-- function of the API is here.

---What jobrun.job takes: a job's name and any field of a suite but the matrix (`backend`,
---`run`, `setup`, `env`, `nodes`, `timeout`, `max_restarts`, `expect`, `slurm`, `skypilot`, …).
---@class jobrun.JobSpec: jobrun.Suite
---@field name string the job's name, unique in the script's run

---A job's result (README "Jobs, statuses and results"), as `job:result()`, `job:wait()` and `jobrun.all` return it.
---@class jobrun.JobResult: jobrun.Result
---@field backend string the backend that ran it
---@field native_id string? its id there (a Slurm job id, a managed job id, a pid)
---@field native_status string? its status in the backend's words
---@field pending_reason string? why the scheduler has not started it (Slurm's pending reason)
---@field nodes string? where it ran (Slurm's NodeList)
---@field backend_exit_code integer? the backend's own code for how it ended
---@field attempt integer which attempt this is (1, then 2 after a resume or a rerun…)
---@field submitted_at string? ISO 8601 UTC
---@field started_at string?
---@field ended_at string?
---@field duration_s number?
---@field verdict "pass"|"fail"|"pending" whether it ended as expected
---@field mismatches string[] what was not as expected
---@field attempts table[]? the earlier attempts, when there were any
---@field git {commit: string, branch: string?, dirty: boolean}? the commit this attempt ran
---@field nodes string[]? the nodes it ran on (local: the host name)
---@field command_line string[]? the jobrun command line that started it (secrets redacted)

---A job a script declared: started by submit (or wait, or jobrun.all), in the script's run.
---@class jobrun.Job
---@field name string
local Job = {}

---Starts the job and returns at once (with --resume, a job that passed is not started again).
---@return jobrun.Job self
function Job:submit() end

---True once the job has ended and its verdict is known.
---@return boolean
function Job:done() end

---Its result so far (nil before submit).
---@return jobrun.JobResult?
function Job:result() end

---Its log so far ("" before it has one).
---@return string
function Job:logs() end

---Starts it if needed and waits until it has ended; `stream = true` prints its log as it grows.
---@param options? { stream?: boolean }
---@return jobrun.JobResult
function Job:wait(options) end

---Cancels it: "killed", "already completed", …
---@return string?
function Job:cancel() end

---A suite file run as one step of the script; its jobs join the script's run.
---@class jobrun.SuiteStep
local SuiteStep = {}

---Launches its jobs (at most max_parallel at once) and returns.
---@return jobrun.SuiteStep self
function SuiteStep:launch() end

---Launches it if needed and waits until every job has ended.
---@return jobrun.JobResult[]
function SuiteStep:wait() end

---True once every job has ended.
---@return boolean
function SuiteStep:done() end

---True once launched and every job passed.
---@return boolean
function SuiteStep:passed() end

---Its jobs' results, in the plan's order.
---@return jobrun.JobResult[]
function SuiteStep:results() end

---One of its jobs, once launched.
---@param name string
---@return jobrun.Job?
function SuiteStep:job(name) end

local jobrun = {}

---Declares a job (not started yet).
---@param spec jobrun.JobSpec
---@return jobrun.Job
function jobrun.job(spec) end

---A suite file as one step: `set` replaces axes' values, `only` and `tag` choose jobs.
---@param path string
---@param options? { set?: table<string, any>|string[]|string, only?: string[]|string, tag?: string[]|string }
---@return jobrun.SuiteStep
function jobrun.suite(path, options) end

---Starts and waits for several at once: jobs, suite steps, and functions (run as coroutines on
---the same loop). Returns their results in order (a suite's: a list; a function's: its value).
---@param list (jobrun.Job|jobrun.SuiteStep|fun(): any)[]
---@param options? { stream?: boolean }
---@return any[]
function jobrun.all(list, options) end

---Sleeps while the run's jobs are followed (logs streamed, state saved).
---@param seconds number
function jobrun.sleep(seconds) end

---The id of the script's run.
---@return string
function jobrun.run_id() end

return jobrun
