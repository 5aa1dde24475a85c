-- jobrun.secrets: the rule for credentials in what is shown or stored.
local tap = require "tap"
local secrets = require "jobrun.secrets"

tap.test("names like credentials", function()
  for _, name in ipairs({ "API_TOKEN", "db_password", "AWS_SECRET_ACCESS_KEY", "MY_API_KEY", "Passwd" }) do
    tap.ok(secrets.is_secret_name(name), name .. " is secret")
  end
  for _, name in ipairs({ "PATH", "METTA_RUN_ID", "NODES" }) do
    tap.ok(not secrets.is_secret_name(name), name .. " is not")
  end
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
