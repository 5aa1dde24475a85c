-- jobrun.base.secrets: the rule for credentials in what is shown or stored.
local tap = require "tap"
local secrets = require "jobrun.base.secrets"

tap.test("names like credentials", function()
  for _, name in ipairs({ "API_TOKEN", "db_password", "AWS_SECRET_ACCESS_KEY", "MY_API_KEY", "Passwd" }) do
    tap.ok(secrets.is_secret_name(name), name .. " is secret")
  end
  for _, name in ipairs({ "PATH", "METTA_RUN_ID", "NODES" }) do
    tap.ok(not secrets.is_secret_name(name), name .. " is not")
  end
end)

tap.test("issue 21: the usual set of credential names", function()
  for _, name in ipairs({ "SSH_KEY", "ENCRYPTION_KEY", "X_KEY_ID", "AUTH", "PASSPHRASE", "GPG_PASSPHRASE",
                          "AZURE_CREDENTIALS", "PRIVATE_PEM", "SESSION_COOKIE", "DB_PASS", "HF_TOKEN",
                          "BASIC_AUTH_HEADER", "apikey", "aws_access_key_id" }) do
    tap.ok(secrets.is_secret_name(name), name .. " is secret")
  end
  for _, name in ipairs({ "PATH", "HOME", "KEYS_DIR", "PASSES", "CUDA_VISIBLE_DEVICES", "LANG" }) do
    tap.ok(not secrets.is_secret_name(name), name .. " is not")
  end
end)

tap.test("issue 21: a suite's `secrets` names join the rule", function()
  tap.ok(not secrets.is_secret_name("MY_ODD_VAR"), "not by the rule")
  tap.is(secrets.redact_env({ MY_ODD_VAR = "x" }), { MY_ODD_VAR = "x" }, "shown before it is declared")
  secrets.declare({ "my_odd_var" })
  tap.ok(secrets.is_secret_name("MY_ODD_VAR"), "declared (case aside): secret")
  tap.is(secrets.redact_env({ MY_ODD_VAR = "x" }), { MY_ODD_VAR = "<redacted>" }, "redacted once declared")
end)

tap.test("issue 21: restore_env never gives the placeholder as a value", function()
  local getenv_none = function() return nil end
  local rec = { GH_TOKEN = "<redacted>", N = "1" }
  tap.is({ secrets.restore_env(rec, nil, getenv_none) }, { nil, "GH_TOKEN" }, "no suite, no environment: missing")
  tap.is({ secrets.restore_env(rec, { N = "1" }, getenv_none) }, { nil, "GH_TOKEN" },
    "a suite that no longer gives it: missing")
  tap.is(secrets.restore_env(rec, { GH_TOKEN = "real", N = "1" }, getenv_none), { GH_TOKEN = "real", N = "1" },
    "from the suite")
  tap.is(secrets.restore_env(rec, nil, function(k) return k == "GH_TOKEN" and "from-env" or nil end),
    { GH_TOKEN = "from-env", N = "1" }, "from jobrun's environment")
  local url = { DB = "pg://h/x" }
  tap.is({ secrets.restore_env(url, nil, getenv_none, { "DB" }) }, { nil, "DB" }, "a stripped URL, gone: missing")
  tap.is(secrets.restore_env(url, nil, function() return "pg://u:p@h/x" end, { "DB" }), { DB = "pg://u:p@h/x" },
    "from the environment when it is that URL")
  tap.is({ secrets.restore_env(url, nil, function() return "pg://u:p@other/x" end, { "DB" }) }, { nil, "DB" },
    "not another one")
  tap.is(secrets.restore_env(url, { DB = "pg://u:p@h/x" }, getenv_none, { "DB" }), { DB = "pg://u:p@h/x" },
    "from the suite")
end)

tap.test("user:password dropped from URLs, the original kept in memory", function()
  tap.is({ secrets.strip_urls("http://admin:pw@host:46580/x") }, { "http://host:46580/x", true }, "user:password")
  tap.is({ secrets.strip_urls("https://tok3n@github.com/o/r.git") }, { "https://github.com/o/r.git", true }, "token@")
  tap.is(secrets.strip_urls("a http://u:p@h1 and s3://k:s@h2/b"), "a http://h1 and s3://h2/b", "every URL in a text")
  tap.is({ secrets.strip_urls("http://host/a@b") }, { "http://host/a@b", false }, "an @ in the path is not userinfo")
  tap.is({ secrets.strip_urls("user@host") }, { "user@host", false }, "no scheme, no URL")
  tap.is({ secrets.strip_urls(42) }, { 42, false }, "not a string")
  tap.is(secrets.reveal("http://host:46580/x"), "http://admin:pw@host:46580/x", "reveal gives the original back")
  tap.is(secrets.reveal("http://other"), "http://other", "reveal of what was never stripped")
end)

tap.test("redact_env and options", function()
  tap.is(secrets.redact_env({ API_TOKEN = "t", URL = "http://u:p@h", N = 3, PLAIN = "x" }),
    { API_TOKEN = "<redacted>", URL = "http://h", N = 3, PLAIN = "x" }, "redact_env")
  local plain = { endpoint = "http://h", resources = { cloud = "aws" } }
  tap.ok(secrets.options(plain) == plain, "options without credentials: the same table")
  local mt = { __name = "marker" }
  local with = { endpoint = "http://a:b@h", resources = setmetatable({ x = "git+https://t@g/r" }, mt), n = 1 }
  local out = secrets.options(with)
  tap.is(out, { endpoint = "http://h", resources = { x = "git+https://g/r" }, n = 1 }, "a stripped copy")
  tap.ok(getmetatable(out.resources) == mt, "metatables kept")
  tap.is(with.endpoint, "http://a:b@h", "the original untouched")
end)

return tap.done()
