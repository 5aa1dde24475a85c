-- Credentials, and the one rule for what is shown or stored of them (state.json, plan's output,
-- --json): values of variables named like credentials are "<redacted>", and user:password is
-- dropped from every URL. The real values stay in this process's memory: the jobs get their
-- environment from the plan, and the SkyPilot client its endpoint through reveal().
local secrets = {}

secrets.REDACTED = "<redacted>"

-- The rule (README "Secrets"), on the name in upper case: it contains one of CONTAINS, or ends
-- with one of ENDS. Wide on purpose: a value hidden for nothing costs a look at the suite; a
-- credential shown costs the credential.
local CONTAINS = { "TOKEN", "SECRET", "PASSWORD", "PASSWD", "AUTH", "CREDENTIAL", "PASSPHRASE", "PRIVATE",
                   "COOKIE" }
local ENDS = { "PASS", "KEY", "KEY_ID" }

-- Names a suite declared secret (its `secrets = { … }`), upper case: the rule misses them.
local declared = {}

-- is_secret_name(name): a variable whose value must not be shown (API_TOKEN, db_password,
-- SSH_KEY, …). The answer for each name asked, once: a plan asks it of the same few names for
-- every job.
local secret_names = {}

function secrets.is_secret_name(name)
  local known = secret_names[name]
  if known ~= nil then return known end
  local upper = tostring(name):upper()
  local found = declared[upper] or false
  for _, word in ipairs(CONTAINS) do
    if found then break end
    if upper:find(word, 1, true) then found = true end
  end
  for _, word in ipairs(ENDS) do
    if found then break end
    if upper:sub(-#word) == word then found = true end
  end
  if type(name) == "string" then secret_names[name] = found end
  return found
end

-- declare(names): more secret names (a suite's `secrets` field), for the rest of this process.
-- Kept for the whole process: a name hidden once stays hidden in every later record.
function secrets.declare(names)
  for _, name in ipairs(names or {}) do
    declared[tostring(name):upper()] = true
  end
  secret_names = {}
end

-- The user:password@ (or token@) part of a URL: after "scheme://", up to the first '@' before
-- any '/', blank or quote.
local USERINFO = "(%a[%w+.-]*://)[^/@%s\"']*@"

-- What strip_urls removed, by the text it left: kept in memory only, for reveal().
local originals = {}

-- strip_urls(text) -> text with the credentials of every URL in it dropped, and whether there
-- were any. The original is remembered (in memory) for reveal(stripped).
function secrets.strip_urls(text)
  if type(text) ~= "string" or not text:find("://", 1, true) then return text, false end
  local stripped, n = text:gsub(USERINFO, "%1")
  if n == 0 then return text, false end
  originals[stripped] = text
  return stripped, true
end

-- reveal(text) -> the text strip_urls was given, when this process stripped it; else text.
function secrets.reveal(text)
  return originals[text] or text
end

-- is_secret(name, value) -> true when the variable must not be written anywhere: a secret's
-- name, or a value with URL credentials (as given, or as strip_urls left it in a plan).
function secrets.is_secret(name, value)
  value = tostring(value)
  return secrets.is_secret_name(name) or select(2, secrets.strip_urls(value)) or secrets.reveal(value) ~= value
end

-- redact_env(env) -> a copy fit to show and store: secret names' values "<redacted>", the
-- others without URL credentials.
function secrets.redact_env(env)
  local out = {}
  for k, v in pairs(env or {}) do
    if secrets.is_secret_name(k) then out[k] = secrets.REDACTED
    else out[k] = (secrets.strip_urls(v)) end
  end
  return out
end

-- restore_env(recorded, planned, getenv [, stripped]) -> env, or nil and the name of a variable
-- with no value: the environment to launch a recorded job with. `recorded` is its env as
-- state.json keeps it, `planned` the env the suite gives now (nil: the suite is gone or broken),
-- `stripped` the names whose URLs lost their credentials in the record. Each "<redacted>" value
-- is taken from the suite, else from getenv (jobrun's own environment), and so is each stripped
-- URL (from getenv only when it is that URL): never is the placeholder, or a URL without its
-- credentials, launched in place of the real value.
function secrets.restore_env(recorded, planned, getenv, stripped)
  local env = {}
  for k, v in pairs(planned or recorded or {}) do env[k] = v end
  for k, v in pairs(recorded or {}) do
    if v == secrets.REDACTED then
      local value = planned and planned[k]
      if value == nil or value == secrets.REDACTED then value = getenv(k) end
      if value == nil then return nil, k end
      env[k] = value
    end
  end
  for _, k in ipairs(type(stripped) == "table" and stripped or {}) do
    if recorded and type(recorded[k]) == "string" and not (planned and planned[k] ~= nil) then
      local value = getenv(k)
      if value == nil or secrets.strip_urls(value) ~= recorded[k] then return nil, k end
      env[k] = value
    end
  end
  return env
end

-- options(t) -> t, or a copy of it (nested tables too) without URL credentials when it has
-- any: a backend's options as the plan keeps them, and state.json stores them. The originals
-- stay in memory (reveal). Tables with metatables (markers) keep them.
function secrets.options(t)
  if type(t) ~= "table" then return (secrets.strip_urls(t)) end
  local copy, changed = {}, false
  for k, v in pairs(t) do
    local new = secrets.options(v)
    copy[k] = new
    if new ~= v then changed = true end
  end
  if not changed then return t end
  return setmetatable(copy, getmetatable(t))
end

return secrets
